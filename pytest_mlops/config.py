"""Settings from ``pyproject.toml`` / ``mlops.toml``, the command line and markers.

One precedence rule, applied everywhere by :func:`layered`::

    marker kwargs  >  command line  >  config file  >  defaults

The config file is ``mlops.toml`` (top-level keys) or the ``[tool.pytest_mlops]`` table of
``pyproject.toml``. Declared gates live under ``gates``; each entry becomes one test item.
Relative paths are resolved against the directory of the file that declares them.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from pytest_mlops.errors import ConfigError, choices_text, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "GateSpec",
    "Param",
    "ProjectConfig",
    "Settings",
    "find_config_file",
    "layered",
    "load_config",
    "parse_cli_value",
]

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
        """Check *value* against this parameter; return it normalised or raise ConfigError."""
        bad = ConfigError(
            f"{where}: {self.name!r} must be {_TYPE_WORDS[self.type]}"
            + (f" ({choices_text(self.choices)})" if self.choices else "")
            + f", got {_describe(value)}"
        )
        if self.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad
            value = float(value)
            if math.isnan(value):
                raise bad
        elif self.type == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad
        elif self.type == "bool":
            if not isinstance(value, bool):
                raise bad
        elif self.type == "str":
            if not isinstance(value, str):
                raise bad
        elif self.type in ("list[str]", "str|list[str]"):
            if isinstance(value, str) and self.type == "str|list[str]":
                value = (value,)
            elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                value = tuple(value)
            else:
                raise bad
        elif self.type == "list[number]":
            if not isinstance(value, list | tuple) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value
            ):
                raise bad
            value = tuple(float(v) for v in value)
        elif self.type == "table" and not isinstance(value, Mapping):
            raise bad
        if self.choices is not None:
            for item in value if isinstance(value, tuple) else (value,):
                if item not in self.choices:
                    raise ConfigError(
                        f"{where}: {self.name!r} must be {choices_text(self.choices)}, "
                        f"got {item!r}{did_you_mean(str(item), self.choices)}"
                    )
        if self.minimum is not None and isinstance(value, int | float) and value < self.minimum:
            raise ConfigError(f"{where}: {self.name!r} must be >= {self.minimum:g}, got {value!r}")
        if self.maximum is not None and isinstance(value, int | float) and value > self.maximum:
            raise ConfigError(f"{where}: {self.name!r} must be <= {self.maximum:g}, got {value!r}")
        return value


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return f"the list {list(value)!r}"
    return f"{type(value).__name__} {value!r}"


InconclusivePolicy = Literal["fail", "skip", "pass"]

SETTINGS: tuple[Param, ...] = (
    Param("model", "str", "the model: a path to an .onnx file or 'package.module:factory'"),
    Param(
        "model_output",
        "str",
        "what a single-output ONNX or PyTorch model returns",
        default="auto",
        choices=("auto", "labels", "probabilities", "logits", "values"),
    ),
    Param("reference", "str", "the reference (training) dataset: CSV or Parquet"),
    Param("current", "str", "the current (holdout or production) dataset: CSV or Parquet"),
    Param("target", "str", "the target column"),
    Param("sensitive", "str|list[str]", "sensitive feature columns", default=()),
    Param("features", "list[str]", "model input columns (default: all but the target)"),
    Param("encoding", "str", "text encoding of CSV files", default="utf-8"),
    Param(
        "inconclusive",
        "str",
        "how an inconclusive verdict maps to pytest",
        default="fail",
        choices=("fail", "skip", "pass"),
    ),
    Param("seed", "int", "seed of every resampling and random split", default=0, minimum=0),
    Param(
        "require_gpu", "bool", "fail GPU tests instead of skipping them when no GPU", default=False
    ),
    Param("report", "str", "write the JSON report to this path"),
    Param("gates", "table", "declared gates, one test item each", default={}),
    Param(
        "deploy",
        "table",
        "deploy settings: registry, name, base_image, smoke_rows... (see docs/deploy.md)",
        default={},
    ),
    Param(
        "monitor",
        "table",
        "`pytest-mlops monitor` settings: profile, current, on_drift_run... (see docs/monitor.md)",
        default={},
    ),
)
SETTING_NAMES = tuple(p.name for p in SETTINGS)
_PATH_SETTINGS = ("reference", "current", "report")


@dataclass(frozen=True)
class Settings:
    """Resolved top-level settings."""

    model: str | None = None
    model_output: str = "auto"
    reference: str | None = None
    current: str | None = None
    target: str | None = None
    sensitive: tuple[str, ...] = ()
    features: tuple[str, ...] | None = None
    encoding: str = "utf-8"
    inconclusive: InconclusivePolicy = "fail"
    seed: int = 0
    require_gpu: bool = False
    report: str | None = None
    deploy: Mapping[str, Any] = field(default_factory=dict)
    monitor: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GateSpec:
    """One declared gate: ``[tool.pytest_mlops.gates.<name>]``."""

    name: str
    kind: str
    params: Mapping[str, Any]
    source: str


@dataclass(frozen=True)
class ProjectConfig:
    """Everything the config file and command line declare, validated."""

    settings: Settings = field(default_factory=Settings)
    gates: tuple[GateSpec, ...] = ()
    path: Path | None = None
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def source(self) -> str:
        return _source_name(self.path)

    def resolve_path(self, value: str) -> Path:
        """Resolve a path setting against the directory of the config file."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def gate(self, name: str) -> GateSpec | None:
        return next((g for g in self.gates if g.name == name), None)


def _source_name(path: Path | None) -> str:
    if path is None:
        return "the command line"
    return "pyproject.toml [tool.pytest_mlops]" if path.name == "pyproject.toml" else path.name


def layered(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge settings, later layers winning: ``layered(defaults, file, cli, marker)``.

    ``None`` values in a layer mean "not given" and never override.
    """
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if value is not None:
                out[key] = value
    return out


def find_config_file(rootdir: Path, explicit: str | None = None) -> Path | None:
    """``explicit`` if given, else ``mlops.toml``, else a pyproject.toml with our table."""
    if explicit:
        path = Path(explicit)
        path = path if path.is_absolute() else rootdir / path
        if not path.is_file():
            raise ConfigError(f"--mlops-config: the file {str(path)!r} does not exist")
        return path
    candidate = rootdir / "mlops.toml"
    if candidate.is_file():
        return candidate
    candidate = rootdir / "pyproject.toml"
    if candidate.is_file() and "pytest_mlops" in candidate.read_text(encoding="utf-8"):
        return candidate
    return None


def read_table(path: Path) -> dict[str, Any]:
    """The raw settings table of a config file (empty if it declares none)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid UTF-8 text") from None
    if path.name == "pyproject.toml" or "tool" in data:
        table = data.get("tool", {}).get("pytest_mlops", {})
    else:
        table = data
    if not isinstance(table, dict):
        raise ConfigError(f"{_source_name(path)} must be a table")
    return table


def load_config(
    path: Path | None,
    cli: Mapping[str, Any] | None = None,
    *,
    base_dir: Path | None = None,
) -> ProjectConfig:
    """Validate the config file at *path* (or none) with command-line overrides *cli*.

    *cli* holds top-level keys (``model``, ``seed``...) and ``gates`` overrides as
    ``{"gates": {"accuracy": {"min": 0.9}}}``.
    """
    raw = read_table(path) if path is not None else {}
    source = _source_name(path)
    base = base_dir or (path.parent if path is not None else Path.cwd())
    cli = dict(cli or {})
    cli_gates = cli.pop("gates", {}) or {}
    values = _validate_settings(raw, source)
    values.update(_validate_settings(cli, "the command line"))
    gates_raw = values.pop("gates", {})
    for name, overrides in cli_gates.items():
        if name not in gates_raw:
            raise ConfigError(
                f"--mlops-set: no gate named {name!r} is declared in {source}"
                + did_you_mean(name, gates_raw)
            )
        gates_raw[name] = layered(gates_raw[name], overrides)
    for key in _PATH_SETTINGS:
        if values.get(key):
            values[key] = str(_resolve(base, values[key]))
    settings = Settings(**values)
    gates = tuple(_parse_gate(name, spec, source) for name, spec in gates_raw.items())
    return ProjectConfig(settings=settings, gates=gates, path=path, base_dir=base)


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def validate_params(
    params: Iterable[Param], raw: Mapping[str, Any], where: str, *, what: str = "setting"
) -> dict[str, Any]:
    """Check each key of *raw* against *params*: unknown keys and bad values raise ConfigError.

    Returns only the keys given (``None`` values are skipped as "not given"); callers add
    defaults where they want them. *what* names the kind of setting in messages.
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


def _validate_settings(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    out = validate_params(SETTINGS, raw, source)
    if "gates" in out:
        out["gates"] = {
            name: dict(spec) if isinstance(spec, Mapping) else spec
            for name, spec in out["gates"].items()
        }
    return out


def _parse_gate(name: str, spec: Any, source: str) -> GateSpec:
    from pytest_mlops.gates import GATE_KINDS

    where = f"{source} gate {name!r}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: must be a table of settings, got {_describe(spec)}")
    params = dict(spec)
    kind = params.pop("kind", name)
    if not isinstance(kind, str) or kind not in GATE_KINDS:
        hint = "" if "kind" in spec else " (set 'kind' to name the gate freely)"
        raise ConfigError(
            f"{where}: unknown gate kind {kind!r}{did_you_mean(str(kind), GATE_KINDS)}{hint}; "
            f"valid kinds are {choices_text(GATE_KINDS)}"
        )
    return GateSpec(
        name=name, kind=kind, params=GATE_KINDS[kind].validate(params, where), source=source
    )


def parse_cli_value(text: str) -> Any:
    """Parse a ``--mlops-set`` value as TOML (``0.9``, ``true``, ``["a","b"]``), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_cli_sets(items: Iterable[str]) -> dict[str, Any]:
    """``["seed=3", "gates.accuracy.min=0.9"]`` -> ``{"seed": 3, "gates": {"accuracy": {"min": 0.9}}}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"--mlops-set {item!r}: expected KEY=VALUE, e.g. seed=3 or gates.accuracy.min=0.9"
            )
        parts = key.strip().split(".")
        if parts[0] == "gates":
            if len(parts) != 3:
                raise ConfigError(
                    f"--mlops-set {item!r}: a gate setting is gates.<gate>.<setting>, "
                    "e.g. gates.accuracy.min=0.9"
                )
            out.setdefault("gates", {}).setdefault(parts[1], {})[parts[2]] = parse_cli_value(value)
        elif len(parts) == 1:
            out[parts[0]] = parse_cli_value(value)
        else:
            raise ConfigError(f"--mlops-set {item!r}: unknown key {key!r}")
    return out


SETTINGS_FIELDS = tuple(f.name for f in fields(Settings))
