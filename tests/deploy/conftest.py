"""Fixtures of the deploy tests: a tiny project (ONNX model, data, config, passing report)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deploy_helpers import CONFIG, FEATURES, project_config, write_report_file
from sklearn.linear_model import LogisticRegression

from pytest_mlops.deploy.bundle import Bundle, build_bundle
from pytest_mlops.export import export_onnx


@pytest.fixture(scope="session")
def tiny_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project directory: model.onnx (logistic regression), data.csv, mlops.toml, report.json."""
    root = tmp_path_factory.mktemp("tiny-project")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(400, 4)), columns=FEATURES)
    frame["y"] = (frame.a + 0.5 * frame.b + rng.normal(scale=0.3, size=400) > 0).astype(int)
    frame.to_csv(root / "data.csv", index=False)
    model = LogisticRegression().fit(frame[FEATURES].to_numpy(np.float32), frame.y)
    export_onnx(model, frame[FEATURES].to_numpy(np.float32)[:5], root / "model.onnx")
    (root / "mlops.toml").write_text(CONFIG, encoding="utf-8")
    write_report_file(root / "report.json")
    return root


@pytest.fixture
def tiny_project(tiny_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the project (its registry starts empty)."""
    root = tmp_path / "project"
    shutil.copytree(tiny_template, root)
    return root


@pytest.fixture(scope="session")
def tiny_bundle(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """A bundle of the tiny project with its passing report (do not modify: copy it first)."""
    out = tmp_path_factory.mktemp("tiny-bundle") / "bundle"
    return build_bundle(project_config(tiny_template), out, report=tiny_template / "report.json")
