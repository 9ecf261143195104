"""Schema files: JSON, or YAML for a ``.yaml``/``.yml`` path (PyYAML is optional).

These functions turn text into a document (a mapping) and back; what the document must hold is
checked by :meth:`~pytest_mlops.data.schema.Schema.from_dict`.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from pytest_mlops.errors import ConfigError

__all__ = ["YAML_SUFFIXES", "is_yaml_path", "json_text", "read_document", "yaml_text"]

YAML_SUFFIXES = (".yaml", ".yml")


def is_yaml_path(path: str | Path) -> bool:
    """Whether a schema file at *path* is written as YAML (by its suffix) rather than JSON."""
    return Path(path).suffix.lower() in YAML_SUFFIXES


def read_document(path: str | Path) -> Any:
    """The parsed contents of a schema file, not yet checked as a schema.

    Raises
    ------
    ConfigError
        When the file is missing, not UTF-8, or not valid JSON (YAML); the message names the file
        and, for a syntax error, the line and column.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"the schema file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{str(path)!r}: a schema file must be UTF-8 text") from None
    if is_yaml_path(path):
        return _read_yaml(path, text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{str(path)!r}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


def json_text(document: Any) -> str:
    """*document* as indented JSON that reads well in a merge request (strict: no NaN)."""
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def yaml_text(document: Any) -> str:
    """*document* as block-style YAML, keys in their order (needs PyYAML)."""
    yaml = _yaml("writing a YAML schema")
    return str(
        yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)
    )


def _yaml(what: str) -> Any:
    try:
        return importlib.import_module("yaml")
    except ImportError:
        raise ConfigError(
            f"{what} needs PyYAML: pip install 'pytest-mlops[yaml]' (or use a .json schema file)"
        ) from None


def _read_yaml(path: Path, text: str) -> Any:
    yaml = _yaml(f"reading {str(path)!r}")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{str(path)!r}: not valid YAML{where}: {problem}") from None
