"""Gate kinds: what a ``[tool.pytest_mlops.gates.<name>]`` entry can ask for.

A :class:`GateKind` names its settings (validated when the config is read, so a typo is a usage
error before any test runs) and a runner that turns a :class:`~pytest_mlops.project.GateContext`
and the settings into a :class:`~pytest_mlops.results.CheckResult`. The runners call the same
library functions a user calls by hand.

:data:`GATE_KINDS` holds them: the built-in kinds are listed below by the module that defines
them, and a module is imported the first time one of its kinds is needed (a project that declares
an ``accuracy`` gate loads :mod:`pytest_mlops.gates.accuracy` only). :func:`register` adds a kind
of your own. The package hands :data:`GATE_KINDS` to :func:`pytest_mlops.config.use_gate_kinds`
when it is imported, so a config file's gates are checked against them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from pytest_mlops.errors import ConfigError, choices_text, did_you_mean
from pytest_mlops.gates.kind import GateKind, Runner

__all__ = ["BUILTIN_KINDS", "GATE_KINDS", "GateKind", "GateKinds", "Runner", "register"]

#: built-in kind -> the module whose ``KINDS`` defines it (in the order ``pytest-mlops gates`` lists)
BUILTIN_KINDS: Mapping[str, str] = {
    "accuracy": "pytest_mlops.gates.accuracy",
    "champion": "pytest_mlops.gates.champion",
    "schema": "pytest_mlops.gates.schema",
    "integrity": "pytest_mlops.gates.data",
    "privacy": "pytest_mlops.gates.data",
    "properties": "pytest_mlops.gates.data",
    "drift": "pytest_mlops.gates.drift",
    "prediction_drift": "pytest_mlops.gates.drift",
    "target_drift": "pytest_mlops.gates.drift",
    "multivariate_drift": "pytest_mlops.gates.drift",
    "fairness": "pytest_mlops.gates.fairness",
    "fairness_regression": "pytest_mlops.gates.fairness",
    "latency": "pytest_mlops.gates.latency",
    "parity": "pytest_mlops.gates.parity",
}


class GateKinds(Mapping[str, GateKind]):
    """The gate kinds a project may declare, by name; a built-in one loads on first use.

    Parameters
    ----------
    builtin:
        Kind name -> the module whose ``KINDS`` tuple defines it.
    """

    def __init__(self, builtin: Mapping[str, str]) -> None:
        self._modules = dict(builtin)
        self._kinds: dict[str, GateKind] = {}

    def register(self, kind: GateKind) -> GateKind:
        """Add (or replace) *kind*."""
        self._modules.setdefault(kind.name, "")
        self._kinds[kind.name] = kind
        return kind

    def __getitem__(self, name: str) -> GateKind:
        if name not in self._kinds:
            module = self._modules.get(name)
            if not module:
                raise KeyError(name)
            for kind in importlib.import_module(module).KINDS:
                self._kinds.setdefault(kind.name, kind)
        return self._kinds[name]

    def __contains__(self, name: object) -> bool:
        return name in self._modules

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def kind(self, name: str) -> GateKind:
        """The kind called *name*; a ConfigError listing the valid kinds otherwise."""
        if name not in self:
            raise ConfigError(
                f"unknown gate kind {name!r}{did_you_mean(name, self)}; "
                f"valid kinds are {choices_text(self)}"
            )
        return self[name]

    def validate_gate(self, kind: str, params: Mapping[str, Any], where: str) -> dict[str, Any]:
        """The settings of a declared gate of *kind*, checked, with defaults filled in.

        Parameters
        ----------
        kind:
            A registered kind's name.
        params:
            The gate's settings as declared (without ``kind``).
        where:
            Where the gate is declared, for messages.
        """
        return self[kind].validate(params, where)


#: every gate kind a project may declare
GATE_KINDS = GateKinds(BUILTIN_KINDS)


def register(kind: GateKind) -> GateKind:
    """Make a gate kind available to config files, markers and the ``mlops`` fixture.

    Parameters
    ----------
    kind:
        The kind; one of the same name is replaced.
    """
    return GATE_KINDS.register(kind)
