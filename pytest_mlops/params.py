"""Settings validation: one setting's type, default, choices and bounds, and the check of a table.

Every table a user writes is checked with :func:`validate_params` against a tuple of
:class:`Param`: the top-level settings (:mod:`pytest_mlops.config`), each gate kind's settings
(:mod:`pytest_mlops.gates`), ``[deploy]`` and ``[monitor]``. A bad value is a
:class:`~pytest_mlops.errors.ConfigError` that names the setting, what was expected and what was
given, e.g. ``"pyproject.toml gate 'accuracy': 'min' must be a number, got the string '0.88'"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pytest_mlops.errors import ConfigError, choices_text, did_you_mean

__all__ = ["Param", "ParamType", "describe_value", "validate_params"]

ParamType = Literal[
    "number", "int", "str", "bool", "list[str]", "str|list[str]", "list[number]", "table"
]

_TYPE_WORDS: dict[str, str] = {
    "number": "a number",
    "int": "a whole number",
    "str": "a string",
    "bool": "true or false",
    "list[str]": "a list of strings",
    "str|list[str]": "a string or a list of strings",
    "list[number]": "a list of numbers",
    "table": "a table",
}


class _Bad(Exception):
    """A value of the wrong type (turned into the ConfigError that names the setting)."""


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise _Bad
    return float(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad
    return value


def _of(kind: type) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, kind):
            raise _Bad
        return value

    return check


def _strings(value: Any, *, one: bool = False) -> tuple[str, ...]:
    if one and isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _Bad


def _numbers(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise _Bad
    return tuple(float(v) for v in value)


_COERCE: dict[str, Callable[[Any], Any]] = {
    "number": _number,
    "int": _int,
    "bool": _of(bool),
    "str": _of(str),
    "list[str]": _strings,
    "str|list[str]": lambda value: _strings(value, one=True),
    "list[number]": _numbers,
    "table": _of(Mapping),
}


@dataclass(frozen=True)
class Param:
    """One setting: its type, default, valid choices and a line of help."""

    name: str
    type: ParamType
    help: str
    default: Any = None
    choices: tuple[str, ...] | None = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None

    def coerce(self, value: Any, where: str) -> Any:
        """Check *value* against this parameter; return it normalised or raise ConfigError.

        Parameters
        ----------
        value:
            The value as read from TOML, the command line or a marker.
        where:
            Where it was given, for the message (``"pyproject.toml gate 'accuracy'"``).
        """
        try:
            value = _COERCE[self.type](value)
        except _Bad:
            raise ConfigError(
                f"{where}: {self.name!r} must be {_TYPE_WORDS[self.type]}"
                + (f" ({choices_text(self.choices)})" if self.choices else "")
                + f", got {describe_value(value)}"
            ) from None
        self._check_choices(value, where)
        self._check_bounds(value, where)
        return value

    def _check_choices(self, value: Any, where: str) -> None:
        if self.choices is None:
            return
        for item in value if isinstance(value, tuple) else (value,):
            if item not in self.choices:
                raise ConfigError(
                    f"{where}: {self.name!r} must be {choices_text(self.choices)}, "
                    f"got {item!r}{did_you_mean(str(item), self.choices)}"
                )

    def _check_bounds(self, value: Any, where: str) -> None:
        if not isinstance(value, int | float):
            return
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"{where}: {self.name!r} must be >= {self.minimum:g}, got {value!r}")
        if self.maximum is not None and value > self.maximum:
            raise ConfigError(f"{where}: {self.name!r} must be <= {self.maximum:g}, got {value!r}")


def describe_value(value: Any) -> str:
    """How a value a user gave reads in a message: ``the string '0.88'``, ``a table``...

    Parameters
    ----------
    value:
        The value as read from TOML or the command line.
    """
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return f"the list {list(value)!r}"
    return f"{type(value).__name__} {value!r}"


def validate_params(
    params: Iterable[Param], raw: Mapping[str, Any], where: str, *, what: str = "setting"
) -> dict[str, Any]:
    """Check each key of *raw* against *params*: unknown keys and bad values raise ConfigError.

    Returns only the keys given (``None`` values are skipped as "not given"); callers add
    defaults where they want them.

    Parameters
    ----------
    params:
        The settings the table may hold.
    raw:
        The table as given.
    where:
        Where it was given, for messages.
    what:
        The kind of setting, for messages (``"setting"``, ``"monitor setting"``).
    """
    by_name = {p.name: p for p in params}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None:
            continue
        param = by_name.get(key)
        if param is None:
            raise ConfigError(
                f"{where}: unknown {what} {key!r}{did_you_mean(key, by_name)}; "
                f"valid settings are {choices_text(by_name)}"
            )
        out[key] = param.coerce(value, where)
    return out
