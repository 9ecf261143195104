"""A gate kind: its settings and the function that runs it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_mlops.errors import ConfigError
from pytest_mlops.params import Param, validate_params
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    from pytest_mlops.project import GateContext

__all__ = ["GateKind", "Runner"]

Runner = Callable[["GateContext", Mapping[str, Any]], CheckResult]


@dataclass(frozen=True)
class GateKind:
    """A family of gate: its settings and the function that runs it.

    Parameters
    ----------
    name:
        The kind's name, as ``kind = ...`` (or the gate's own name) in a config file.
    marker:
        The pytest marker of its family (``data``, ``accuracy``, ``fairness``...).
    help:
        One line on what it checks.
    params:
        Its settings.
    run:
        ``run(ctx, params)`` -> :class:`~pytest_mlops.results.CheckResult`.
    """

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
