"""The bad-input corpus's helpers: a small complete project, cases, snapshots.

The project is copied fresh for every case.

Every case damages or misuses something, runs one call (API), one command (CLI) or one pytest
session, and asserts three things: the exception type or exit status, the key words of the
message (the file, column, setting or gate, and what to do), and that nothing in the project
was written, removed or moved (:func:`snapshot` before and after).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

FEATURES = ["a", "b", "c", "d"]

CONFIG = """\
model = "model.onnx"
reference = "data.csv"
current = "data.csv"
target = "y"
sensitive = ["group"]

[gates]
accuracy = { metric = "roc_auc", min = 0.8 }

[deploy]
name = "tiny"
registry = "registry"
smoke_rows = 8
"""

MODELS = """\
import pandas as pd
from pathlib import Path
from sklearn.linear_model import LogisticRegression

FEATURES = ["a", "b", "c", "d"]


def make():
    frame = pd.read_csv(Path(__file__).parent / "data.csv")
    return LogisticRegression().fit(frame[FEATURES], frame["y"])


def shifted():
    model = make()
    model.intercept_ = model.intercept_ + 3.0
    return model
"""


def frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(n, 4)), columns=FEATURES)
    data["y"] = (data.a + 0.5 * data.b + rng.normal(scale=0.3, size=n) > 0).astype(int)
    data["group"] = rng.choice(["g1", "g2"], size=n)
    return data


def _passing_report(root: Path) -> None:
    from pytest_mlops.config import load_config
    from pytest_mlops.report.evidence import TestRecord
    from pytest_mlops.report.json import ReportEntry, build_report, write_report
    from pytest_mlops.results import CheckResult

    result = CheckResult.threshold(
        name="accuracy", kind="accuracy", metric="roc_auc", value=0.97, min=0.8
    )
    entry = ReportEntry("mlops.toml::accuracy", "passed", result)
    test = TestRecord("mlops.toml::accuracy", "passed", gate="accuracy")
    report = build_report(
        [entry], project=load_config(root / "mlops.toml"), exitstatus=0, tests=[test]
    )
    write_report(root / "report.json", report)
    failed = json.loads(json.dumps(report))
    failed["exitstatus"] = 1
    failed["tests"][0]["outcome"] = "error"
    failed["gates"][0].update(outcome="error", passed=False)
    failed["summary"]["verdict"] = "failed"
    failed["summary"]["reasons"] = [
        "pytest exited with status 1 (tests failed)",
        "declared gate(s) did not pass: 'accuracy' error",
    ]
    failed["summary"]["tests"] = {**failed["summary"]["tests"], "passed": 0, "error": 1}
    (root / "failed.json").write_text(json.dumps(failed), encoding="utf-8")
    old = {k: v for k, v in report.items() if k not in ("gates", "tests", "collection_errors")}
    old["version"] = 1
    (root / "old.json").write_text(json.dumps(old), encoding="utf-8")


def build_project(root: Path) -> None:
    """Data, an ONNX model, a config, reports, a profile, a schema, a bundle in staging."""
    from pytest_mlops.checks.drift import DriftProfile
    from pytest_mlops.config import load_config
    from pytest_mlops.data.schema import infer_schema
    from pytest_mlops.deploy.bundle import build_bundle
    from pytest_mlops.deploy.promote import deploy_to_staging
    from pytest_mlops.deploy.registry import LocalRegistry
    from pytest_mlops.export import export_onnx

    data = frame()
    data.to_csv(root / "data.csv", index=False)
    model = LogisticRegression().fit(data[FEATURES], data["y"])
    export_onnx(model, data[FEATURES].head(5), root / "model.onnx")
    (root / "mlops.toml").write_text(CONFIG, encoding="utf-8")
    (root / "toy.py").write_text(MODELS, encoding="utf-8")
    _passing_report(root)
    DriftProfile.fit(data[FEATURES]).save(root / "profile.npz")
    infer_schema(data).save(root / "schema.json")
    bundle = build_bundle(
        load_config(root / "mlops.toml"), root / "bundle", report=root / "report.json"
    )
    deploy_to_staging(LocalRegistry(root / "registry"), bundle)
    (root / "blocker").write_text("a file where a directory is expected\n", encoding="utf-8")
    (root / "not-a-bundle").mkdir()
    (root / "not-a-bundle" / "notes.txt").write_text("keep me\n", encoding="utf-8")


def snapshot(root: Path) -> dict[str, str]:
    """Every file and directory under *root* with its content's sha256 (caches left out)."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if "__pycache__" in rel:
            continue
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def unwritable() -> Path | None:
    """A directory in which this process cannot create files (None if there is none here)."""
    if os.geteuid() != 0:
        folder = Path(tempfile.mkdtemp(prefix="corpus-ro-"))
        folder.chmod(0o555)
        return folder
    try:
        fd, name = tempfile.mkstemp(dir="/sys")
    except OSError:
        return Path("/sys")
    os.close(fd)
    os.unlink(name)
    return None


@dataclass(frozen=True)
class Case:
    """One bad input: *setup* damages the copy, *run* misuses it; *expect* is an exception type
    (API) or an exit status (CLI, pytest); every one of *words* must appear in the message."""

    id: str
    run: Callable[[Path], Any]
    expect: Any
    words: tuple[str, ...]
    setup: Callable[[Path], None] | None = None
    marks: tuple[Any, ...] = field(default=())

    def param(self) -> Any:
        return pytest.param(self, id=self.id, marks=self.marks)


def write(rel: str, text: str | bytes) -> Callable[[Path], None]:
    """A setup that writes *text* to *rel* in the project."""

    def setup(root: Path) -> None:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text, encoding="utf-8")

    return setup


def edit_json(rel: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        data = json.loads((root / rel).read_text(encoding="utf-8"))
        change(data)
        (root / rel).write_text(json.dumps(data), encoding="utf-8")

    return setup


def both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        for step in setups:
            step(root)

    return setup
