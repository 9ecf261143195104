"""The deploy bundle: the ONNX model, its lineage manifest, the serving app and a Dockerfile.

A bundle is a directory whose ``manifest.json`` lists every other file with its sha256 and
records the lineage that ties code, data, model and evidence together::

    manifest.json        {"format", "version", "name", "files": {path: "sha256:..."}, "lineage"}
    model.onnx           the model (ONNX only: nothing is ever unpickled)
    serving/             the Open Inference Protocol v2 server (a package: python -m serving)
    Dockerfile           the serving image (base image configurable, non-root, HEALTHCHECK)
    smoke.json           rows of the current data as an inference request, and expected outputs
    evidence/report.json the JSON test report the model passed (when one was given)

The bundle's digest is the sha256 of ``manifest.json`` (written canonically), so it covers every
file: changing one byte anywhere changes the digest or fails :func:`verify_bundle`.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops._files import file_sha256
from pytest_mlops.errors import DeployError, ReportError

if TYPE_CHECKING:
    from pytest_mlops.config import ProjectConfig
    from pytest_mlops.deploy.settings import DeploySettings
    from pytest_mlops.project import GateContext

__all__ = [
    "BUNDLE_FORMAT",
    "Bundle",
    "build_bundle",
    "canonical_json",
    "digest_pair",
    "file_sha256",
    "utc_now",
    "verify_bundle",
    "who",
]

BUNDLE_FORMAT = "pytest-mlops-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
_PACKAGES = (
    "pytest-mlops",
    "numpy",
    "onnx",
    "onnxruntime",
    "scikit-learn",
    "skl2onnx",
    "torch",
    "pandas",
)


@dataclass(frozen=True)
class Bundle:
    """A verified bundle directory."""

    path: Path
    manifest: Mapping[str, Any]
    digest: str

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def lineage(self) -> Mapping[str, Any]:
        return dict(self.manifest.get("lineage", {}))

    @property
    def model_sha256(self) -> str:
        return str(self.manifest["files"]["model.onnx"])

    @property
    def model_path(self) -> Path:
        return self.path / "model.onnx"

    @property
    def verdict(self) -> str:
        """The verdict of the report the bundle carries: ``passed``, ``failed`` or ``none``."""
        return str(self.lineage.get("evidence", {}).get("verdict", "none"))

    @property
    def short(self) -> str:
        return self.digest.split(":", 1)[1][:12]


def digest_pair(a: str, b: str, shown: int = 12) -> tuple[str, str]:
    """Two digests shortened as far as they still tell apart (``"3f2a9c1d0b7e..."``)."""
    ha, hb = a.partition(":")[2] or a, b.partition(":")[2] or b
    differ = next((i for i, (x, y) in enumerate(zip(ha, hb, strict=False)) if x != y), None)
    keep = max(shown, (differ if differ is not None else min(len(ha), len(hb))) + 4)
    return tuple(h if len(h) <= keep else h[:keep] + "..." for h in (ha, hb))  # type: ignore[return-value]


def canonical_json(data: Any) -> bytes:
    """The one byte form a manifest is hashed in."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def who() -> str:
    """Who is acting: ``MLOPS_ACTOR``, the CI's user, else the login name."""
    for var in ("MLOPS_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_REQUESTEDFOR"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no passwd entry in some containers
        return f"uid-{os.getuid()}"


def utc_now() -> str:
    """The time now in UTC, ISO 8601 to the second: when a bundle, version or event was made."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --- building ------------------------------------------------------------------------------


def build_bundle(
    config: ProjectConfig,
    output: str | os.PathLike[str],
    *,
    report: str | os.PathLike[str] | None = None,
    settings: DeploySettings | None = None,
    context: GateContext | None = None,
) -> Bundle:
    """Package the configured model into a bundle directory at *output*.

    Parameters
    ----------
    config:
        The project: its model (an ``.onnx`` file, or a model exported here with
        :func:`~pytest_mlops.export.export_onnx`), its reference and current data.
    output:
        The bundle directory (replaced if it exists).
    report:
        The JSON report written by ``--mlops-report``: copied in as evidence, its sha256 and
        verdicts recorded in the manifest. Without one the bundle carries no evidence and can
        never be promoted to production.
    settings, context:
        Deploy settings and an already loaded gate context (both derived from *config* if omitted).
    """
    from pytest_mlops._files import atomic_dir
    from pytest_mlops.deploy.settings import deploy_settings
    from pytest_mlops.project import GateContext

    settings = settings or deploy_settings(config)
    ctx = context or GateContext(config)
    out = Path(output)
    _check_replaceable(out)
    with atomic_dir(out, what="the bundle") as tmp:
        _fill(tmp, config, ctx, settings, report)
    return verify_bundle(out)


def _fill(
    out: Path,
    config: ProjectConfig,
    ctx: GateContext,
    settings: DeploySettings,
    report: str | os.PathLike[str] | None,
) -> None:
    """Write every file of a bundle into the empty directory *out* (the evidence first)."""
    from pytest_mlops.deploy.dockerfile import render_dockerfile

    (out / "evidence").mkdir()
    evidence = _evidence(report, out / "evidence" / "report.json", config)
    data = _data_lineage(ctx)
    sample = data.pop("_sample")
    export = _export(ctx, config, sample, out / "model.onnx")
    _copy_server(out / "serving")
    (out / "smoke.json").write_bytes(canonical_json(_smoke_set(out / "model.onnx", sample)))
    lineage = {
        "code": _git(config.base_dir),
        "data": data,
        "model": {
            "file": "model.onnx",
            "sha256": file_sha256(out / "model.onnx"),
            "source": config.settings.model,
            "source_sha256": _source_sha256(config),
            "signature": export.signature.to_dict(),
            "output": export.output,
            "exported_from": export.source,
        },
        "evidence": evidence,
        "metrics": _metrics(evidence),
        "packages": _packages(),
        "created": {"by": who(), "at": utc_now(), "host": platform.node()},
    }
    (out / "Dockerfile").write_text(render_dockerfile(settings, lineage), encoding="utf-8")
    files = {
        p.relative_to(out).as_posix(): file_sha256(p)
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "name": settings.name,
        "files": files,
        "lineage": lineage,
    }
    (out / MANIFEST).write_bytes(canonical_json(manifest))
    verify_bundle(out)


def _check_replaceable(out: Path) -> None:
    """An earlier bundle at *out* may be replaced; refuse to replace anything else."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    try:
        read_manifest(out)
    except DeployError:
        raise DeployError(
            f"the bundle output {str(out)!r} exists and is not a bundle: choose an empty or new "
            "directory (nothing was deleted)"
        ) from None


def _copy_server(dest: Path) -> None:
    """The serving package's sources (nothing compiled, nothing else of pytest-mlops)."""
    source = Path(__file__).with_name("serving")
    dest.mkdir()
    for file in sorted(source.glob("*.py")):
        shutil.copyfile(file, dest / file.name)


def _export(ctx: GateContext, config: ProjectConfig, sample: Any, path: Path) -> Any:
    from pytest_mlops.export import export_onnx

    spec = config.settings.model
    source: Any = (
        config.resolve_path(spec) if spec and spec.lower().endswith(".onnx") else ctx.model
    )
    return export_onnx(source, sample, path)


def _source_sha256(config: ProjectConfig) -> str | None:
    """The configured .onnx file's own digest (the bundle's copy is re-stamped with metadata)."""
    spec = config.settings.model
    if spec and spec.lower().endswith(".onnx"):
        return file_sha256(config.resolve_path(spec))
    return None


def _data_lineage(ctx: GateContext) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sample = None
    for which in ("reference", "current"):
        try:
            dataset = ctx.dataset(which)
        except Exception:  # noqa: S112 - an unset split is simply not part of the lineage
            continue
        out[which] = {
            "source": dataset.source,
            "fingerprint": dataset.fingerprint(),
            "rows": dataset.n_rows,
            "columns": {str(c): str(t) for c, t in dataset.frame.dtypes.items()},
            "target": dataset.target,
        }
        sample = dataset.X.head(_smoke_rows(ctx))
    if sample is None:
        raise DeployError(
            "packaging needs data to export and smoke-test the model: set 'current' or "
            f"'reference' in {ctx.config.source}"
        )
    out["_sample"] = sample
    return out


def _smoke_rows(ctx: GateContext) -> int:
    from pytest_mlops.deploy.settings import deploy_settings

    return deploy_settings(ctx.config).smoke_rows


def _smoke_set(model_path: Path, sample: Any) -> dict[str, Any]:
    """An inference request of *sample* rows and the outputs ONNX Runtime gives in-process."""
    from pytest_mlops.deploy.client import feeds_to_request, outputs_to_json
    from pytest_mlops.models.onnx import OnnxModel

    model = OnnxModel(model_path)
    feeds = model.feeds(sample)
    outputs = model.session.run(None, feeds)
    names = [o.name for o in model.session.get_outputs()]
    return {"request": feeds_to_request(feeds), "expected": outputs_to_json(names, outputs)}


def _same_inputs(data: Mapping[str, Any], report: Path, config: ProjectConfig) -> None:
    """Refuse a report made on other model or data files than the ones being packaged."""
    from pytest_mlops.report.json import input_digests, stale_inputs

    try:
        stale = stale_inputs(data, input_digests(config))
    except ReportError as exc:
        raise DeployError(f"cannot package: {exc}") from None
    if stale:
        raise DeployError(
            f"refusing to package: {str(report)!r} is the evidence of other files than these: "
            + "; ".join(stale)
            + ". Re-run pytest with --mlops-report on what you package"
        )


def _evidence(
    report: str | os.PathLike[str] | None, dest: Path, config: ProjectConfig
) -> dict[str, Any]:
    if report is None:
        return {"verdict": "none", "report": None}
    from pytest_mlops.deploy.evidence import passing_evidence

    try:
        data, entries = passing_evidence(
            Path(report), action="package", required=[g.name for g in config.gates]
        )
    except ReportError as exc:
        raise DeployError(f"cannot package with this evidence: {exc}") from None
    _same_inputs(data, Path(report), config)
    shutil.copyfile(report, dest)
    return {
        "report": "evidence/report.json",
        "report_sha256": file_sha256(dest),
        "verdict": data["summary"]["verdict"],
        "summary": data["summary"],
        "created": data.get("created"),
        "gates": [
            {
                "name": e.result.name,
                "kind": e.result.kind,
                "status": e.result.status,
                "metric": e.result.metric,
                "value": e.result.value,
                "bound": e.result.bound_text,
            }
            for e in entries
        ],
    }


def _metrics(evidence: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for gate in evidence.get("gates", []):
        if gate["metric"] and isinstance(gate["value"], int | float):
            out[f"{gate['name']}.{gate['metric']}"] = float(gate["value"])
    return out


def _git(where: Path) -> dict[str, Any]:
    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(  # noqa: S603 - an argument list, no shell
                ["git", *args],  # noqa: S607 - git from PATH
                cwd=where,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = run("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "dirty": bool(status),
        "branch": run("rev-parse", "--abbrev-ref", "HEAD"),
    }


def _packages() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


# --- verifying -----------------------------------------------------------------------------


def read_manifest(path: Path) -> tuple[dict[str, Any], str]:
    """The manifest of the bundle at *path* and its digest; a DeployError if unreadable."""
    file = path / MANIFEST
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise DeployError(
            f"{str(path)!r} is not a bundle: cannot read {MANIFEST}: {exc.strerror}"
        ) from None
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise DeployError(
            f"the bundle manifest {str(file)!r} is not valid JSON (corrupted?)"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise DeployError(f"{str(file)!r} is not a pytest-mlops bundle manifest")
    if manifest.get("version") != BUNDLE_VERSION:
        raise DeployError(
            f"the bundle {str(path)!r} has format version {manifest.get('version')!r}; "
            f"this pytest-mlops reads version {BUNDLE_VERSION}"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or "model.onnx" not in files:
        raise DeployError(f"the bundle manifest {str(file)!r} lists no model.onnx")
    return manifest, "sha256:" + hashlib.sha256(raw).hexdigest()


def verify_bundle(path: str | os.PathLike[str], digest: str | None = None) -> Bundle:
    """Check every file of a bundle against its manifest (and the manifest against *digest*).

    Raises
    ------
    DeployError
        Naming the file whose bytes differ from what the manifest recorded, or that is missing.
    """
    root = Path(path)
    manifest, actual = read_manifest(root)
    if digest is not None and actual != digest:
        raise DeployError(
            f"the bundle {str(root)!r} has digest {actual}, expected {digest}: refusing it"
        )
    for rel, expected in manifest["files"].items():
        file = root / rel
        if not file.is_file():
            raise DeployError(f"the bundle {str(root)!r} lacks {rel!r}, which its manifest lists")
        got = file_sha256(file)
        if got != expected:
            mine, theirs = digest_pair(got, str(expected))
            raise DeployError(
                f"the bundle file {str(file)!r} has sha256 {mine}, its manifest says "
                f"{theirs}: the artifact or the manifest was modified or corrupted; refusing it"
            )
    return Bundle(path=root, manifest=manifest, digest=actual)
