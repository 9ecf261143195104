"""Bad input through the ``pytest-mlops`` command line: exit status, message, nothing written.

Exit statuses: 0 done, 1 a gate, verdict or policy said no, 2 bad input or cannot proceed (the
monitor adds 3 and 4, see docs/errors.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from corpus_helpers import Case, both, edit_json, snapshot, unwritable, write

from pytest_mlops.cli import main

READ_ONLY = unwritable()
NEEDS_READ_ONLY = (
    pytest.mark.skipif(READ_ONLY is None, reason="no directory here refuses this user's writes"),
)
RO = str(READ_ONLY or "/nonexistent-read-only")


def cli(*argv: str):
    return lambda root: main(list(argv))


def _old_bundle(root: Path) -> None:
    from pytest_mlops.deploy.bundle import MANIFEST, canonical_json, file_sha256

    shutil.copytree(root / "bundle", root / "old-bundle")
    report = root / "old-bundle" / "evidence" / "report.json"
    report.write_bytes((root / "old.json").read_bytes())
    manifest = json.loads((root / "old-bundle" / MANIFEST).read_bytes())
    manifest["files"]["evidence/report.json"] = file_sha256(report)
    manifest["lineage"]["evidence"]["report_sha256"] = file_sha256(report)
    (root / "old-bundle" / MANIFEST).write_bytes(canonical_json(manifest))


def _tamper(root: Path) -> None:
    model = root / "bundle" / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))


def _drop_database(root: Path) -> None:
    for name in ("registry.db", "registry.db-wal", "registry.db-shm"):
        (root / "registry" / name).unlink(missing_ok=True)


def _shift_data(root: Path) -> None:
    import pandas as pd

    data = pd.read_csv(root / "data.csv")
    data["a"] = data["a"] + 3.0
    data.to_csv(root / "shifted.csv", index=False)


# fmt: off
CASES = [
    # --- report ---
    Case("report-missing", cli("report", "gone.json"), 2, ("gone.json", "does not exist")),
    Case("report-old-format", cli("report", "old.json"), 2, ("old.json", "older pytest-mlops", "re-run pytest with --mlops-report")),
    Case("report-truncated", cli("report", "cut.json"), 2, ("cut.json", "not valid JSON (truncated or corrupted?)"), write("cut.json", '{"format": "pyt')),
    Case("report-not-a-report", cli("report", "data.csv"), 2, ("data.csv", "not valid JSON")),
    Case("report-foreign-json", cli("report", "f.json"), 2, ("f.json", "is not a pytest-mlops report"), write("f.json", '{"a": 1}')),
    Case("report-malformed-result", cli("report", "report.json"), 2, ("report.json", "results[0]: a check result needs the key 'name'"), edit_json("report.json", lambda d: d["results"][0].pop("name"))),
    Case("report-edited-verdict", cli("report", "failed.json"), 2, ("failed.json", "says verdict 'passed'"), edit_json("failed.json", lambda d: d["summary"].update(verdict="passed"))),
    Case("report-a-directory", cli("report", "bundle"), 2, ("bundle", "is a directory")),
    Case("report-json-blocked", cli("report", "report.json", "--json", "blocker/m.json"), 2, ("cannot write the rendering", "blocker/m.json", "is a file, not a directory")),
    Case("report-html-read-only", cli("report", "report.json", "--html", f"{RO}/r.html"), 2, ("cannot write the rendering", f"{RO}/r.html"), marks=NEEDS_READ_ONLY),
    # --- schema ---
    Case("schema-infer-missing-data", cli("schema", "infer", "gone.csv"), 2, ("gone.csv", "does not exist")),
    Case("schema-infer-blocked", cli("schema", "infer", "data.csv", "-o", "blocker/s.json"), 2, ("cannot write the schema", "blocker/s.json")),
    Case("schema-infer-read-only", cli("schema", "infer", "data.csv", "-o", f"{RO}/s.json"), 2, ("cannot write the schema", f"{RO}/s.json"), marks=NEEDS_READ_ONLY),
    Case("schema-check-without-schema", cli("schema", "check", "data.csv"), 2, ("give the schema file", "--schema")),
    Case("schema-check-missing-schema", cli("schema", "check", "data.csv", "--schema", "gone.json"), 2, ("gone.json", "does not exist")),
    Case("schema-check-bad-schema", cli("schema", "check", "data.csv", "--schema", "s.json"), 2, ("s.json", "not valid JSON"), write("s.json", "{")),
    Case("schema-bad-action", cli("schema", "guess", "data.csv"), 2, ("invalid choice: 'guess'",)),
    # --- package ---
    Case("package-corrupt-report", cli("package", "--report", "cut.json", "--output", "b"), 2, ("cannot package with this evidence", "cut.json"), write("cut.json", "{")),
    Case("package-old-report", cli("package", "--report", "old.json", "--output", "b"), 2, ("old.json", "older pytest-mlops")),
    Case("package-failed-report", cli("package", "--report", "failed.json", "--output", "b"), 1, ("refusing to package", "failed.json", "verdict is 'failed'")),
    Case("package-missing-report", cli("package", "--report", "gone.json", "--output", "b"), 2, ("gone.json", "does not exist")),
    Case("package-over-a-file", cli("package", "--report", "report.json", "--output", "blocker"), 2, ("blocker", "is not a bundle", "nothing was deleted")),
    Case("package-over-other-files", cli("package", "--report", "report.json", "--output", "not-a-bundle"), 2, ("not-a-bundle", "is not a bundle")),
    Case("package-under-a-file", cli("package", "--report", "report.json", "--output", "blocker/b"), 2, ("cannot write the bundle", "blocker/b", "is a file, not a directory")),
    Case("package-read-only", cli("package", "--report", "report.json", "--output", f"{RO}/b"), 2, ("cannot write the bundle", f"{RO}/b"), marks=NEEDS_READ_ONLY),
    Case("package-unknown-config", cli("package", "--config", "gone.toml"), 2, ("gone.toml",)),
    # --- push, promote, rollback, history, manifests ---
    Case("push-not-a-bundle", cli("push", "not-a-bundle"), 2, ("not-a-bundle", "is not a bundle", "manifest.json")),
    Case("push-tampered", cli("push", "bundle"), 2, ("model.onnx", "modified or corrupted"), _tamper),
    Case("push-old-evidence", cli("push", "old-bundle"), 2, ("the evidence it was packaged with cannot be used", "older pytest-mlops"), _old_bundle),
    Case("promote-corrupt-report", cli("promote", "--report", "cut.json"), 2, ("cut.json", "not valid JSON"), write("cut.json", "{")),
    Case("promote-other-report", cli("promote", "--report", "failed.json"), 1, ("refusing to promote tiny v1", "not the evidence this version was packaged with")),
    Case("promote-unknown-version", cli("promote", "--version", "9"), 2, ("no version 9 of 'tiny'", "it has versions [1]")),
    Case("promote-bad-stage", cli("promote", "--to", "prod"), 2, ("invalid choice: 'prod'",)),
    Case("rollback-nothing-before", cli("rollback", "--stage", "staging"), 2, ("first version it ever had", "--to-version")),
    Case("rollback-never-deployed", cli("rollback"), 2, ("nothing was ever deployed",)),
    Case("history-empty-database", cli("history"), 2, ("registry.db", "is empty (0 bytes)", "restore it from a backup"), write("registry/registry.db", b"")),
    Case("history-lost-database", cli("history"), 2, ("registry.db", "is missing, but", "artifact(s) are stored"), _drop_database),
    Case("history-foreign-database", cli("history"), 2, ("registry.db", "unreadable or corrupt"), both(_drop_database, write("registry/registry.db", b"not sqlite" * 200))),
    Case("manifests-nothing-in-production", cli("manifests"), 2, ("nothing of 'tiny' is in production",)),
    Case("manifests-no-image", cli("manifests", "--stage", "staging"), 2, ("has no image", "--image")),
    Case("manifests-blocked", cli("manifests", "--stage", "staging", "--image", "img:1", "--output", "blocker/k.yaml"), 2, ("cannot write the manifests", "blocker/k.yaml")),
    # --- export ---
    Case("export-parity-fails", cli("export", "toy:make", "--native", "toy:shifted", "--data", "data.csv", "--target", "y", "-o", "out.onnx", "--random-rows", "0"), 1, ("parity FAILED", "not written: out.onnx", "--no-parity")),
    Case("export-blocked", cli("export", "toy:make", "--data", "data.csv", "--target", "y", "-o", "blocker/m.onnx", "--no-parity"), 2, ("cannot write the ONNX model", "blocker/m.onnx")),
    Case("export-metadata", cli("export", "toy:make", "--data", "data.csv", "--metadata", "novalue"), 2, ("--metadata 'novalue': expected KEY=VALUE",)),
    Case("export-missing-onnx", cli("export", "gone.onnx"), 2, ("gone.onnx", "does not exist")),
    Case("export-pickle", cli("export", "model.joblib"), 2, ("model.joblib",), write("model.joblib", b"\x80\x04.")),
    # --- monitor ---
    Case("monitor-no-profile", cli("monitor", "--current", "data.csv"), 2, ("no profile", "--profile")),
    Case("monitor-profile-is-csv", cli("monitor", "--profile", "p.npz", "--current", "data.csv", "--state", "st"), 2, ("p.npz", "not a drift profile (CSV text)"), write("p.npz", "a,b\n1,2\n")),
    Case("monitor-missing-current", cli("monitor", "--profile", "profile.npz", "--current", "gone.csv", "--state", "st"), 2, ("gone.csv", "does not exist")),
    Case("monitor-report-blocked", cli("monitor", "--profile", "profile.npz", "--current", "shifted.csv", "--report", "blocker/r.json", "--state", "st", "--on-drift-run", "true"), 2, ("cannot write the monitor report (--report)", "blocker/r.json", "nothing triggered"), _shift_data),
    Case("monitor-retries", cli("monitor", "--retries", "-1", "--profile", "profile.npz", "--current", "data.csv"), 2, ("retries",)),
    # --- init-ci, latency ---
    Case("init-ci-into-a-file", cli("init-ci", "github", "--dir", "blocker"), 2, ("blocker", "is a file, not a directory")),
    Case("init-ci-existing", cli("init-ci", "gitlab"), 2, (".gitlab-ci.yml", "already exist", "--force"), write(".gitlab-ci.yml", "stages: []\n")),
    Case("init-ci-unknown-system", cli("init-ci", "jenkins"), 2, ("invalid choice: 'jenkins'",)),
    Case("latency-batch-size", cli("latency", "model.onnx", "data.csv", "--target", "y", "--batch-sizes", "0"), 2, ("batch",)),
    Case("latency-missing-model", cli("latency", "gone.onnx", "data.csv"), 2, ("gone.onnx", "does not exist")),
    Case("latency-baseline-blocked", cli("latency", "model.onnx", "data.csv", "--target", "y", "--max-duration", "0.2", "--min-duration", "0.05", "--save-baseline", "blocker/b.json"), 2, ("cannot write the latency baseline", "blocker/b.json")),
]
# fmt: on


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_input_through_the_cli(
    case: Case, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if case.setup is not None:
        case.setup(project)
    before = snapshot(project)
    try:
        code = case.run(project)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out = capsys.readouterr()
    message = out.err + out.out
    assert code == case.expect, message
    for words in case.words:
        assert words in message, f"{words!r} not in {message!r}"
    assert "Traceback" not in message
    after = snapshot(project)
    if case.id.startswith("monitor"):  # the monitor's state directory is its own
        after = {k: v for k, v in after.items() if not k.startswith("st")}
    assert after == before, "the failed command wrote, removed or moved something"
