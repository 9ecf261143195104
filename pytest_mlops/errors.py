"""The exceptions pytest-mlops raises.

Every error a user can cause derives from :class:`MlopsError` and carries a message that names the
file, column, setting or gate involved and what was expected::

    MlopsError
     +-- ConfigError        a setting in pyproject.toml / mlops.toml / the command line / a marker
     +-- DataError          a dataset file or frame: missing, unreadable, empty, missing columns
     +-- ModelError         a model that cannot be loaded or called, or refuses the data
     +-- CheckError         a check asked for something impossible (unknown metric, bad bound)
     +-- ReportError        a report file that is missing, truncated or of another version
     +-- DeployError        a bundle, registry entry or promotion that fails verification or policy
     +-- OutputError        a file or directory that cannot be written (read-only, not a directory)

The pytest plugin turns an ``MlopsError`` into a usage error or a failing gate item whose report is
the message alone, never a traceback from our internals.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "CheckError",
    "ConfigError",
    "DataError",
    "DeployError",
    "MlopsError",
    "ModelError",
    "OutputError",
    "ReportError",
    "choices_text",
    "did_you_mean",
]


class MlopsError(Exception):
    """Base class of every error pytest-mlops raises on purpose."""


class ConfigError(MlopsError, ValueError):
    """A setting is unknown, misspelled, of the wrong type or out of range."""


class DataError(MlopsError, ValueError):
    """A dataset cannot be read or does not have what the check needs."""


class ModelError(MlopsError):
    """A model cannot be loaded, or fails when called on the data."""


class CheckError(MlopsError, ValueError):
    """A check was asked for something it cannot do (unknown metric, contradictory bounds)."""


class ReportError(MlopsError, ValueError):
    """A report file cannot be read: missing, truncated, or written by another format version."""


class DeployError(MlopsError):
    """A bundle, registry entry, image or promotion is refused: corrupt, unverified or unproven."""


class OutputError(MlopsError):
    """An output cannot be written where it was asked for; nothing was written there."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" - did you mean 'x'?"`` for the closest of *choices*, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" - did you mean {close[0]!r}?" if close else ""


def choices_text(choices: Iterable[str]) -> str:
    """Render valid choices as ``'a', 'b' or 'c'``."""
    items = [repr(c) for c in sorted(choices)]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]
