"""The bundle: lineage that ties code, data, model and evidence; content addressing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from deploy_helpers import project_config

from pytest_mlops.data.loaders import load_dataset
from pytest_mlops.deploy.bundle import Bundle, build_bundle, verify_bundle
from pytest_mlops.deploy.client import http_call
from pytest_mlops.errors import DeployError

SERVING = Path(__file__).resolve().parents[2] / "pytest_mlops" / "deploy" / "serving"


def sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_ties_code_data_model_and_evidence(
    tiny_bundle: Bundle, tiny_template: Path
) -> None:
    lineage = tiny_bundle.lineage
    assert tiny_bundle.digest == sha(tiny_bundle.path / "manifest.json")
    assert lineage["model"]["sha256"] == sha(tiny_bundle.path / "model.onnx")
    assert lineage["model"]["source_sha256"] == sha(tiny_template / "model.onnx")
    data = load_dataset(tiny_template / "data.csv", target="y", name="current")
    assert lineage["data"]["current"]["fingerprint"] == data.fingerprint()
    assert lineage["data"]["current"]["rows"] == 400
    assert lineage["evidence"]["report_sha256"] == sha(tiny_template / "report.json")
    assert lineage["evidence"]["verdict"] == "passed"
    assert lineage["metrics"] == {"accuracy.roc_auc": 0.97}
    assert lineage["packages"]["onnxruntime"] == ort.__version__
    assert set(lineage["code"]) >= {"commit", "dirty"}
    assert lineage["created"]["by"]
    assert lineage["created"]["at"]
    files = json.loads((tiny_bundle.path / "manifest.json").read_text())["files"]
    server = sorted(f"serving/{p.name}" for p in SERVING.glob("*.py"))
    assert "serving/__main__.py" in server
    assert "serving/http.py" in server
    assert sorted(files) == sorted(
        ["Dockerfile", "evidence/report.json", "model.onnx", "smoke.json", *server]
    )


def test_dockerfile_is_hermetic_non_root_and_labelled(tiny_bundle: Bundle) -> None:
    text = (tiny_bundle.path / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in text
    assert "FROM ${BASE_IMAGE}" in text
    assert "--no-index" in text
    assert "RUN --mount" not in text
    assert "USER 10001:10001" in text
    assert "HEALTHCHECK" in text
    assert f'io.pytest-mlops.model.sha256="{tiny_bundle.model_sha256}"' in text


def test_smoke_set_holds_what_onnxruntime_predicts(
    tiny_bundle: Bundle, tiny_template: Path
) -> None:
    smoke = json.loads((tiny_bundle.path / "smoke.json").read_text())
    session = ort.InferenceSession(str(tiny_template / "model.onnx"))
    request = smoke["request"]["inputs"][0]
    X = np.asarray(request["data"], dtype=np.float32).reshape(request["shape"])
    assert X.shape == (8, 4)
    expected = session.run(None, {request["name"]: X})
    for got, want in zip(smoke["expected"], expected, strict=True):
        np.testing.assert_allclose(np.asarray(got["data"]).reshape(got["shape"]), want, rtol=1e-6)


def test_a_bad_report_is_named(tiny_template: Path, tmp_path: Path) -> None:
    bad = tmp_path / "report.json"
    bad.write_text('{"format": "pytest-mlops-report", "version": 1, "summ')
    with pytest.raises(
        DeployError,
        match=r"cannot package with this evidence: the report .*report\.json.* is not valid JSON",
    ):
        build_bundle(project_config(tiny_template), tmp_path / "b", report=bad)


def test_a_missing_file_is_named(tiny_bundle: Bundle, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle.path, copy)
    (copy / "smoke.json").unlink()
    with pytest.raises(DeployError, match=r"lacks 'smoke\.json', which its manifest lists"):
        verify_bundle(copy)
    with pytest.raises(DeployError, match=r"has digest .*, expected sha256:0"):
        verify_bundle(tiny_bundle.path, "sha256:" + "0" * 64)


def test_cli_serve_serves_the_production_version(tiny_project: Path) -> None:
    from deploy_helpers import fresh_bundle

    from pytest_mlops.deploy.promote import deploy_to_staging, promote
    from pytest_mlops.deploy.registry import LocalRegistry

    registry = LocalRegistry(tiny_project / "registry")
    deploy_to_staging(registry, fresh_bundle(tiny_project, 1))
    promote(registry, "tiny")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "pytest_mlops.cli", "serve", "--port", str(port)], cwd=tiny_project
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                meta = http_call(f"http://127.0.0.1:{port}/v2/models/tiny").json()
                break
            except DeployError:
                time.sleep(0.2)
        assert meta["versions"] == ["1"]
    finally:
        server.terminate()
        server.wait(10)


def test_packaging_never_deletes_a_directory_that_is_not_a_bundle(
    tiny_template: Path, tmp_path: Path
) -> None:
    precious = tmp_path / "src"
    precious.mkdir()
    (precious / "train.py").write_text("print('hello')\n")
    with pytest.raises(DeployError, match=r"exists and is not a bundle: .*\(nothing was deleted\)"):
        build_bundle(project_config(tiny_template), precious, report=tiny_template / "report.json")
    assert (precious / "train.py").is_file()
    first = build_bundle(
        project_config(tiny_template), tmp_path / "b", report=tiny_template / "report.json"
    )
    again = build_bundle(
        project_config(tiny_template), tmp_path / "b", report=tiny_template / "report.json"
    )
    assert first.path == again.path
    assert verify_bundle(again.path).digest == again.digest
