"""Bad input through the Python API: the exception, its key words, and nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from corpus_helpers import FEATURES, Case, edit_json, frame, snapshot, write

from pytest_mlops import (
    CheckError,
    ConfigError,
    DataError,
    DeployError,
    DriftProfile,
    ModelError,
    OutputError,
    ReportError,
    check_accuracy,
    check_drift,
    check_fairness,
    check_privacy,
    check_schema,
    export_onnx,
    infer_schema,
    load_dataset,
    load_model,
    load_schema,
)


def _model() -> Any:
    from sklearn.linear_model import LogisticRegression

    data = frame()
    return LogisticRegression().fit(data[FEATURES], data["y"])


def _accuracy(change: Any = None, **kwargs: Any) -> Any:
    def run(root: Path) -> Any:
        from pytest_mlops import Dataset

        data = frame()
        if change is not None:
            data = change(data)
        settings = {"metric": "roc_auc", "min": 0.8, "n_resamples": 20, **kwargs}
        return check_accuracy(_model(), Dataset(data, target="y", name="current"), **settings)

    return run


def _with(column: str, row: int, value: Any) -> Any:
    def change(data: pd.DataFrame) -> pd.DataFrame:
        data = data.astype({column: object}) if isinstance(value, str) else data.copy()
        data.loc[row, column] = value
        return data

    return change


def _labels(values: tuple[Any, Any]) -> Any:
    return lambda data: data.assign(y=np.where(data["y"] == 1, values[1], values[0]))


def _config() -> Any:
    from pytest_mlops.config import load_config

    return load_config(Path("mlops.toml"))


def _registry() -> Any:
    from pytest_mlops.deploy.registry import LocalRegistry

    return LocalRegistry(Path("registry"))


def _flip_digest(root: Path) -> None:
    """Change one hex digit of model.onnx's digest in the manifest, far into the digest."""
    import json

    from pytest_mlops.deploy.bundle import canonical_json

    path = root / "bundle" / "manifest.json"
    manifest = json.loads(path.read_bytes())
    digest = manifest["files"]["model.onnx"]
    flipped = digest[:40] + ("0" if digest[40] != "0" else "1") + digest[41:]
    manifest["files"]["model.onnx"] = flipped
    path.write_bytes(canonical_json(manifest))


def _edit_profile(root: Path) -> None:
    import json

    with np.load(root / "profile.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(bytes(arrays["header"]).decode())
    header["n_rows"] = 6
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(root / "profile.npz", **arrays)


def _promote(**kwargs: Any) -> Any:
    from pytest_mlops.deploy.promote import promote

    return lambda root: promote(_registry(), "tiny", **kwargs)


def _bundle(output: str, report: str | None = "report.json") -> Any:
    from pytest_mlops.deploy.bundle import build_bundle

    return lambda root: build_bundle(_config(), root / output, report=report)


def _drop_last_field(root: Path) -> None:
    lines = (root / "data.csv").read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0]
    (root / "data.csv").write_text("\n".join(lines) + "\n")


# fmt: off
CASES = [
    # --- datasets ---
    Case("dataset-missing", lambda r: load_dataset("nope.csv"), DataError, ("nope.csv", "does not exist")),
    Case("dataset-directory", lambda r: load_dataset("bundle"), DataError, ("bundle", "is a directory")),
    Case("dataset-suffix", lambda r: load_dataset("model.onnx"), DataError, ("model.onnx", "unknown file type", ".csv")),
    Case("dataset-empty", lambda r: load_dataset("empty.csv"), DataError, ("empty.csv", "is empty"), write("empty.csv", "")),
    Case("dataset-header-only", lambda r: load_dataset("h.csv"), DataError, ("h.csv", "header but no rows"), write("h.csv", "a,b,y\n")),
    Case("dataset-encoding", lambda r: load_dataset("l.csv"), DataError, ("l.csv", "cannot decode", "'encoding'"), write("l.csv", "name,y\ncaf\xe9,1\n".encode("latin-1"))),
    Case("dataset-row-cut-short", lambda r: load_dataset("data.csv", target="y"), DataError, ("data.csv", "fewer fields than its header", "data rows [4]", "'group'"), _drop_last_field),
    Case("dataset-no-target", lambda r: load_dataset("data.csv", target="label"), DataError, ("'label'",)),
    Case("dataset-no-sensitive", lambda r: load_dataset("data.csv", target="y", sensitive=["sex"]), DataError, ("'sex'",)),
    # --- models ---
    Case("model-pickle", lambda r: load_model("model.pkl"), ModelError, ("model.pkl", "pickle"), write("model.pkl", b"\x80\x04K\x01.")),
    Case("model-no-module", lambda r: load_model("nosuch_module_xyz:make"), ModelError, ("nosuch_module_xyz",)),
    Case("model-no-factory", lambda r: load_model("toy:nothing"), ModelError, ("toy", "nothing")),
    Case("model-onnx-missing", lambda r: load_model("gone.onnx"), ModelError, ("gone.onnx", "does not exist")),
    Case("model-onnx-corrupt", lambda r: load_model("bad.onnx"), ModelError, ("bad.onnx",), write("bad.onnx", b"not a protobuf")),
    # --- accuracy ---
    Case("accuracy-unknown-metric", _accuracy(metric="roc"), CheckError, ("'roc'", "did you mean 'roc_auc'")),
    Case("accuracy-bound-above-range", _accuracy(min=2), CheckError, ("roc_auc lies in [0, 1]", "min = 2 can never hold")),
    Case("accuracy-bound-below-range", _accuracy(metric="accuracy", min=None, max=-1), CheckError, ("accuracy lies in [0, 1]", "max = -1")),
    Case("accuracy-r2-above-one", _accuracy(metric="r2", min=1.5), CheckError, ("r2 lies in [-inf, 1]",)),
    Case("accuracy-min-above-max", _accuracy(min=0.9, max=0.8), CheckError, ("min (0.9) is greater than max (0.8)",)),
    Case("accuracy-confidence", _accuracy(confidence=1.5), CheckError, ("confidence must be between 0 and 1",)),
    Case("accuracy-yes-no-labels", _accuracy(_labels(("no", "yes"))), DataError, ("target column 'y'", "labels 'no', 'yes'", "classes (0, 1)", "map or convert")),
    Case("accuracy-text-01-labels", _accuracy(_labels(("0", "1"))), DataError, ("labels '0', '1'", "the labels are text")),
    Case("accuracy-missing-labels", _accuracy(_with("y", 7, np.nan)), DataError, ("target column 'y'", "1 missing label(s)", "rows [7]")),
    Case("accuracy-nan-feature", _accuracy(_with("a", 3, np.nan)), ModelError, ("LogisticRegression", "'a' has 1 missing value(s) (e.g. row 3)")),
    Case("accuracy-inf-feature", _accuracy(_with("b", 5, np.inf)), ModelError, ("'b' has 1 infinite value(s) (e.g. row 5)",)),
    Case("accuracy-text-feature", _accuracy(_with("c", 9, "oops")), ModelError, ("'c' holds text such as 'oops' (row 9)",)),
    Case("accuracy-missing-column", _accuracy(lambda d: d.drop(columns="d")), DataError, ("'d'",)),
    # --- fairness, privacy, drift ---
    Case("fairness-unknown-sensitive", lambda r: check_fairness(_model(), load_dataset("data.csv", target="y"), sensitive="sex"), (CheckError, DataError), ("'sex'",)),
    Case("fairness-unknown-metric", lambda r: check_fairness(_model(), load_dataset("data.csv", target="y"), sensitive="group", metric="parity"), CheckError, ("'parity'",)),
    Case("privacy-unknown-kind", lambda r: check_privacy(frame(), identifiers=["passport"]), CheckError, ("'passport'", "valid kinds are")),
    Case("privacy-k", lambda r: check_privacy(frame(), k=0), CheckError, ("'k' must be >= 1",)),
    Case("privacy-no-column", lambda r: check_privacy(frame(), columns=["notes"]), DataError, ("'notes'",)),
    Case("drift-unknown-correction", lambda r: check_drift(frame(), frame(), correction="bonf"), CheckError, ("'bonf'", "'bonferroni'")),
    Case("drift-unknown-column", lambda r: check_drift(frame(), frame(), columns=["age"]), DataError, ("'age'",)),
    Case("profile-missing", lambda r: DriftProfile.load("gone.npz"), DataError, ("gone.npz", "does not exist")),
    Case("profile-is-csv", lambda r: DriftProfile.load("data.npz"), DataError, ("data.npz", "not a drift profile (CSV text)", "DriftProfile.fit(reference).save(path)"), write("data.npz", "a,b\n1,2\n")),
    Case("profile-edited", lambda r: DriftProfile.load("profile.npz"), DataError, ("profile.npz", "does not match its checksum", "fit and save it again"), _edit_profile),
    Case("profile-save-blocked", lambda r: DriftProfile.fit(frame()[FEATURES]).save("blocker/p.npz"), OutputError, ("cannot write the drift profile", "blocker", "is a file, not a directory")),
    # --- schema ---
    Case("schema-invalid-json", lambda r: load_schema("s.json"), ConfigError, ("s.json", "not valid JSON at line 1"), write("s.json", "{oops")),
    Case("schema-unknown-key", lambda r: load_schema("s.json"), ConfigError, ("s.json", "'colums'"), write("s.json", '{"colums": {}}')),
    Case("schema-save-blocked", lambda r: infer_schema(frame()).save("blocker/s.json"), OutputError, ("cannot write the schema", "blocker")),
    Case("schema-mostly", lambda r: check_schema(frame(), "schema.json", mostly=2.0), (CheckError, ConfigError), ("mostly",)),
    # --- reports ---
    Case("report-missing", lambda r: _load_report("gone.json"), ReportError, ("gone.json", "does not exist")),
    Case("report-old", lambda r: _load_report("old.json"), ReportError, ("old.json", "older pytest-mlops", "re-run pytest with --mlops-report")),
    Case("report-results-not-objects", lambda r: _load_report("report.json"), ReportError, ("report.json", "is malformed", "results[0] must be a JSON object, got str"), edit_json("report.json", lambda d: d.update(results=["x"]))),
    Case("report-edited-verdict", lambda r: _load_report("failed.json"), ReportError, ("failed.json", "says verdict 'passed'", "was it edited?"), edit_json("failed.json", lambda d: d["summary"].update(verdict="passed"))),
    Case("report-write-blocked", lambda r: _write_report("blocker/r.json"), OutputError, ("cannot write the report", "blocker")),
    # --- bundles, registry, promotion, export ---
    Case("bundle-flipped-manifest", lambda r: _verify("bundle"), DeployError, ("model.onnx", "the artifact or the manifest was modified"), _flip_digest),
    Case("bundle-missing-file", lambda r: _verify("bundle"), DeployError, ("lacks 'smoke.json'",), lambda r: (r / "bundle" / "smoke.json").unlink()),
    Case("bundle-over-other-files", _bundle("not-a-bundle"), DeployError, ("not-a-bundle", "is not a bundle", "nothing was deleted")),
    Case("bundle-failed-evidence", _bundle("new-bundle", "failed.json"), DeployError, ("refusing to package", "'accuracy' error")),
    Case("bundle-corrupt-evidence", _bundle("new-bundle", "cut.json"), DeployError, ("cannot package with this evidence", "cut.json", "not valid JSON"), write("cut.json", '{"format": "pytest-mlops-rep')),
    Case("registry-empty-database", lambda r: _registry().history("tiny"), DeployError, ("registry.db", "is empty (0 bytes)", "restore it from a backup"), write("registry/registry.db", b"")),
    Case("promote-unknown-stage", _promote(to="prod"), DeployError, ("unknown stage 'prod'", "stages are 'production' or 'staging'")),
    Case("promote-unknown-version", _promote(version=9), DeployError, ("no version 9 of 'tiny'",)),
    Case("export-not-a-model", lambda r: export_onnx(object(), frame()[FEATURES], "out.onnx"), ModelError, ("object",)),
]
# fmt: on


def _load_report(path: str) -> Any:
    from pytest_mlops.report.json import load_report

    return load_report(path)


def _write_report(path: str) -> Any:
    from pytest_mlops.report.json import build_report, write_report

    return write_report(Path(path), build_report([]))


def _verify(path: str) -> Any:
    from pytest_mlops.deploy.bundle import verify_bundle

    return verify_bundle(path)


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_input_through_the_api(case: Case, project: Path) -> None:
    if case.setup is not None:
        case.setup(project)
    before = snapshot(project)
    with pytest.raises(case.expect) as caught:
        case.run(project)
    message = str(caught.value)
    for words in case.words:
        assert words in message, f"{words!r} not in {message!r}"
    assert "Traceback" not in message
    assert snapshot(project) == before, "the failed call wrote, removed or moved something"


def test_a_flipped_digest_is_shown_where_it_differs(project: Path) -> None:
    _flip_digest(project)
    with pytest.raises(DeployError) as caught:
        _verify("bundle")
    message = str(caught.value)
    mine = message.split("has sha256 ")[1].split(",")[0]
    theirs = message.split("its manifest says ")[1].split(":")[0]
    assert mine.rstrip(".") != theirs.rstrip(".")  # shown as far as the flipped digit
