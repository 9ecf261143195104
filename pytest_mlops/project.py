"""The loaded project: the configured model and datasets, each loaded once, for gates and deploy.

A :class:`GateContext` is what a gate runner, the ``mlops`` fixture and ``pytest-mlops package``
work on. Model references with a scheme (``"registry:production"``) are resolved by the resolver
registered for that scheme with :func:`~pytest_mlops.models.load.register_model_resolver`
(deploy registers ``registry``); this module knows no registry. The plugin imports it at start-up,
so the data layer loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_mlops.config import ProjectConfig, Settings
from pytest_mlops.errors import ConfigError
from pytest_mlops.models.load import load_model, model_resolver

if TYPE_CHECKING:
    from pytest_mlops.data.dataset import Dataset
    from pytest_mlops.models.base import Model

__all__ = ["GateContext"]


class GateContext:
    """What a gate runner may use: the settings, the model and the datasets, loaded once.

    Parameters
    ----------
    config:
        The project's validated configuration.
    """

    def __init__(self, config: ProjectConfig) -> None:
        self.config = config
        self._model: Model | None = None
        self._models: dict[str, Model] = {}
        self._datasets: dict[str, Dataset] = {}

    @property
    def settings(self) -> Settings:
        """The project's top-level settings."""
        return self.config.settings

    @property
    def seed(self) -> int:
        """The seed of every resampling."""
        return self.config.settings.seed

    @property
    def model(self) -> Model:
        """The configured model, loaded on first use."""
        if self._model is None:
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

        Parameters
        ----------
        spec:
            An ``.onnx`` path (relative to the config file), ``"package.module:factory"``, or a
            reference with a registered scheme, such as ``"registry:<stage>"`` for the version
            a registry stage points at.
        """
        if spec not in self._models:
            resolver = model_resolver(spec)
            if resolver is not None:
                self._models[spec] = resolver(spec, self.config)
            else:
                self._models[spec] = load_model(
                    spec, output=self.config.settings.model_output, base_dir=self.config.base_dir
                )
        return self._models[spec]

    def dataset(self, which: str) -> Dataset:
        """The ``reference`` or ``current`` dataset, as configured, loaded on first use."""
        if which not in self._datasets:
            from pytest_mlops.data.loaders import load_dataset  # pandas: not at plugin start-up

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
