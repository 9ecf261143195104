"""Settings from ``pyproject.toml`` / ``mlops.toml``, the command line and markers.

One precedence rule, applied everywhere by :func:`layered`::

    marker kwargs  >  command line  >  config file  >  defaults

The config file is ``mlops.toml`` (top-level keys) or the ``[tool.pytest_mlops]`` table of
``pyproject.toml``. Declared gates live under ``gates``; each entry becomes one test item.
Relative paths are resolved against the directory of the file that declares them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Protocol

from pytest_mlops.errors import ConfigError, choices_text, did_you_mean
from pytest_mlops.params import Param, describe_value, validate_params

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "GateKinds",
    "GateSpec",
    "Param",
    "ProjectConfig",
    "Settings",
    "find_config_file",
    "layered",
    "load_config",
    "parse_cli_value",
    "use_gate_kinds",
    "validate_params",
]

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


def _validate_settings(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    out = validate_params(SETTINGS, raw, source)
    if "gates" in out:
        out["gates"] = {
            name: dict(spec) if isinstance(spec, Mapping) else spec
            for name, spec in out["gates"].items()
        }
    return out


class GateKinds(Protocol):
    """What reading a config needs of the gate kinds: their names and a check of a gate's settings.

    :data:`pytest_mlops.gates.GATE_KINDS` provides it; the package registers it here with
    :func:`use_gate_kinds` when it is imported, so this module knows no gate kind itself.
    """

    def __contains__(self, kind: object) -> bool: ...

    def __iter__(self) -> Iterator[str]: ...

    def validate_gate(self, kind: str, params: Mapping[str, Any], where: str) -> dict[str, Any]:
        """The settings of a gate of *kind*, checked, with defaults filled in."""
        ...


_GATE_KINDS: list[GateKinds] = []


def use_gate_kinds(kinds: GateKinds) -> None:
    """Check declared gates against *kinds* from now on (set once, from the top of the package).

    Parameters
    ----------
    kinds:
        The gate kinds a config may declare.
    """
    _GATE_KINDS[:] = [kinds]


def _gate_kinds() -> GateKinds:
    if not _GATE_KINDS:  # pragma: no cover - the package registers them on import
        raise ConfigError("no gate kinds are registered: import pytest_mlops first")
    return _GATE_KINDS[0]


def _parse_gate(name: str, spec: Any, source: str) -> GateSpec:
    kinds = _gate_kinds()
    where = f"{source} gate {name!r}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: must be a table of settings, got {describe_value(spec)}")
    params = dict(spec)
    kind = params.pop("kind", name)
    if not isinstance(kind, str) or kind not in kinds:
        hint = "" if "kind" in spec else " (set 'kind' to name the gate freely)"
        raise ConfigError(
            f"{where}: unknown gate kind {kind!r}{did_you_mean(str(kind), kinds)}{hint}; "
            f"valid kinds are {choices_text(kinds)}"
        )
    return GateSpec(
        name=name, kind=kind, params=kinds.validate_gate(kind, params, where), source=source
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
