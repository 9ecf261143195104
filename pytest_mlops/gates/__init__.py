"""Gate kinds: what a ``[tool.pytest_mlops.gates.<name>]`` entry can ask for.

A :class:`GateKind` names its settings (validated when the config is read, so a typo is a usage
error before any test runs) and a runner that turns a :class:`GateContext` and the settings into a
:class:`~pytest_mlops.results.CheckResult`. The runners call the same library functions a user
calls by hand; the modules here import nothing heavy at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_mlops.config import Param, ProjectConfig, validate_params
from pytest_mlops.errors import ConfigError
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    from pytest_mlops.data.dataset import Dataset
    from pytest_mlops.models.base import Model

__all__ = ["GATE_KINDS", "GateContext", "GateKind", "register"]

Runner = Callable[["GateContext", Mapping[str, Any]], CheckResult]


@dataclass(frozen=True)
class GateKind:
    """A family of gate: its settings and the function that runs it."""

    name: str
    marker: str
    help: str
    params: tuple[Param, ...]
    run: Runner

    def validate(self, params: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Check a gate's settings; fill in defaults. Raises ConfigError naming the gate."""
        out = validate_params(self.params, params, where)
        for param in self.params:
            if param.required and param.name not in out:
                raise ConfigError(f"{where}: the setting {param.name!r} is required ({param.help})")
        return {**{p.name: p.default for p in self.params}, **out}

    def execute(self, ctx: GateContext, name: str, params: Mapping[str, Any]) -> CheckResult:
        """Run the gate called *name* with validated *params* (``params["name"]`` is set)."""
        return self.run(ctx, {**params, "name": name})


GATE_KINDS: dict[str, GateKind] = {}


def register(kind: GateKind) -> GateKind:
    """Make a gate kind available to config files, markers and the ``mlops`` fixture."""
    GATE_KINDS[kind.name] = kind
    return kind


class GateContext:
    """What a gate runner may use: the settings, the model and the datasets, loaded once."""

    def __init__(self, config: ProjectConfig) -> None:
        self.config = config
        self._model: Model | None = None
        self._models: dict[str, Model] = {}
        self._datasets: dict[str, Dataset] = {}

    @property
    def settings(self) -> Any:
        return self.config.settings

    @property
    def seed(self) -> int:
        return self.config.settings.seed

    @property
    def model(self) -> Model:
        if self._model is None:
            from pytest_mlops.models import load_model

            spec = self.config.settings.model
            if spec is None:
                raise ConfigError(
                    f"no model is configured: set 'model' in {self.config.source} "
                    "(a path to an .onnx file or 'package.module:factory') or pass --mlops-model"
                )
            self._model = load_model(
                spec, output=self.config.settings.model_output, base_dir=self.config.base_dir
            )
        return self._model

    def load_model(self, spec: str) -> Model:
        """Another model (e.g. a gate's ``baseline``), resolved like ``model`` and loaded once.

        ``spec`` is an ``.onnx`` path (relative to the config file), ``"package.module:factory"``,
        or ``"registry:<stage>"`` for the version a registry stage points at.
        """
        if spec not in self._models:
            from pytest_mlops.models import load_model

            if spec.startswith("registry:"):
                from pytest_mlops.deploy.registry import resolve_model_reference

                self._models[spec] = resolve_model_reference(spec, self.config)
            else:
                self._models[spec] = load_model(
                    spec, output=self.config.settings.model_output, base_dir=self.config.base_dir
                )
        return self._models[spec]

    def dataset(self, which: str) -> Dataset:
        """The ``reference`` or ``current`` dataset, as configured."""
        if which not in self._datasets:
            from pytest_mlops.data import load_dataset

            settings = self.config.settings
            path = getattr(settings, which, None) if which in ("reference", "current") else None
            if path is None:
                raise ConfigError(
                    f"no {which!r} dataset is configured: set {which!r} in {self.config.source} "
                    f"or pass --mlops-{which}"
                )
            self._datasets[which] = load_dataset(
                path,
                target=settings.target,
                sensitive=settings.sensitive,
                features=settings.features,
                name=which,
                encoding=settings.encoding,
            )
        return self._datasets[which]


def _load_builtin_kinds() -> None:
    # Each module registers its kinds on import; all of them are light.
    from pytest_mlops.gates import (  # noqa: F401
        accuracy,
        champion,
        data,
        drift,
        fairness,
        latency,
        parity,
        schema,
    )


_load_builtin_kinds()
