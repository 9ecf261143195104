"""The extension point for engines past one machine (Spark, Dask): a registry, nothing more.

Checks look an engine up here when they are handed data that lives in one (a Spark or Dask
DataFrame); the engines themselves live in :mod:`pytest_mlops.engines`, above the checks, and are
registered from the top of the package. Registering costs nothing: an engine's module, and the
library it drives, are imported the first time it is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_mlops.errors import ConfigError, choices_text, did_you_mean

__all__ = ["DriftEngine", "EngineEntry", "engine_for", "get_engine", "register_engine"]


class DriftEngine(Protocol):
    """What an engine does for drift profiles (see :mod:`pytest_mlops.engines`)."""

    name: str

    def fit_profile(
        self,
        data: Any,
        *,
        columns: Any = None,
        categorical: Any = (),
        bins: int = 4096,
        grid: Any = None,
    ) -> Any:
        """A :class:`~pytest_mlops.checks.drift.DriftProfile` of *data* (on *grid* if given)."""
        ...


@dataclass(frozen=True)
class EngineEntry:
    """A registered engine: its name, the modules its frames come from, and how to load it."""

    name: str
    modules: tuple[str, ...]
    loader: Callable[[], DriftEngine]


_ENGINES: dict[str, EngineEntry] = {}


def register_engine(entry: EngineEntry) -> None:
    """Register (or replace) an engine; called from above the checks."""
    _ENGINES[entry.name] = entry


def get_engine(name: str) -> DriftEngine:
    """The engine called *name*, loaded; a ConfigError naming the choices otherwise."""
    entry = _ENGINES.get(name)
    if entry is None:
        raise ConfigError(
            f"unknown engine {name!r}{did_you_mean(name, _ENGINES)}; engines are "
            f"{choices_text(_ENGINES)}"
        )
    return entry.loader()


def engine_for(data: Any) -> DriftEngine | None:
    """The engine whose DataFrames *data* is one of, or None for in-memory data."""
    module = type(data).__module__
    for entry in _ENGINES.values():
        if any(module == m or module.startswith(m + ".") for m in entry.modules):
            return entry.loader()
    return None


def lazy(module: str, attribute: str) -> Callable[[], Any]:
    """A loader that imports ``module.attribute`` on first call."""

    def load() -> Any:
        return getattr(importlib.import_module(module), attribute)

    return load
