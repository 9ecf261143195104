"""Every deploy step judges the evidence again, and refuses reports of the older format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from deploy_helpers import project_config

from pytest_mlops.cli import main
from pytest_mlops.deploy.bundle import MANIFEST, canonical_json, file_sha256
from pytest_mlops.deploy.registry import LocalRegistry

OLD_REPORT = {
    "format": "pytest-mlops-report",
    "version": 1,
    "exitstatus": 0,
    "summary": {"total": 1, "passed": 1, "failed": 0, "inconclusive": 0, "verdict": "passed"},
    "results": [
        {
            "nodeid": "mlops.toml::accuracy",
            "outcome": "passed",
            "name": "accuracy",
            "kind": "accuracy",
            "status": "passed",
            "message": "roc_auc measured 0.97",
        }
    ],
}


def _old_bundle(bundle: Path, dest: Path) -> Path:
    """A bundle as the previous format packaged it: its evidence is a version-1 report."""
    shutil.copytree(bundle, dest)
    report = dest / "evidence" / "report.json"
    report.write_text(json.dumps(OLD_REPORT), encoding="utf-8")
    manifest = json.loads((dest / MANIFEST).read_bytes())
    manifest["files"]["evidence/report.json"] = file_sha256(report)
    manifest["lineage"]["evidence"]["report_sha256"] = file_sha256(report)
    (dest / MANIFEST).write_bytes(canonical_json(manifest))
    return dest


def test_an_old_report_is_refused_by_package(tiny_project, monkeypatch, capsys):
    (tiny_project / "old.json").write_text(json.dumps(OLD_REPORT), encoding="utf-8")
    monkeypatch.chdir(tiny_project)
    assert main(["package", "--report", "old.json", "--output", "b"]) == 2
    err = capsys.readouterr().err
    assert "written by an older pytest-mlops" in err
    assert "re-run pytest with --mlops-report=PATH" in err
    assert not (tiny_project / "b").exists()


def test_a_bundle_with_old_evidence_is_refused_by_push(
    tiny_project, tiny_bundle, monkeypatch, capsys
):
    _old_bundle(tiny_bundle.path, tiny_project / "old")
    monkeypatch.chdir(tiny_project)
    assert main(["push", "old", "--to", "staging"]) == 2
    err = capsys.readouterr().err
    assert "the evidence it was packaged with cannot be used" in err
    assert "older pytest-mlops" in err
    assert "package it again" in err
    assert LocalRegistry(tiny_project / "registry").versions("tiny") == []


def test_a_version_with_old_evidence_is_refused_by_promote(
    tiny_project, tiny_bundle, monkeypatch, capsys
):
    _old_bundle(tiny_bundle.path, tiny_project / "old")
    monkeypatch.chdir(tiny_project)
    assert main(["push", "old", "--to", "none"]) == 0
    assert main(["promote", "--version", "1", "--to", "production"]) == 2
    err = capsys.readouterr().err
    assert "the evidence tiny v1 was packaged with cannot be used" in err
    assert "older pytest-mlops" in err
    assert LocalRegistry(tiny_project / "registry").stage("tiny", "production") is None


@pytest.mark.parametrize("content", ["{not json", "[]", '{"format": "pytest-mlops-report"}'])
def test_promote_with_a_corrupt_report_is_bad_input(
    tiny_project, tiny_bundle, monkeypatch, capsys, content
):
    from pytest_mlops.deploy.promote import deploy_to_staging

    registry = LocalRegistry(tiny_project / "registry")
    deploy_to_staging(registry, tiny_bundle)
    (tiny_project / "bad.json").write_text(content, encoding="utf-8")
    monkeypatch.chdir(tiny_project)
    assert main(["promote", "--report", "bad.json"]) == 2
    assert "bad.json" in capsys.readouterr().err
    assert registry.stage("tiny", "production") is None


def test_a_report_of_another_config_is_refused(tiny_project, monkeypatch, capsys):
    config = project_config(tiny_project)
    assert [g.name for g in config.gates] == ["accuracy"]
    text = (tiny_project / "mlops.toml").read_text()
    (tiny_project / "mlops.toml").write_text(
        text.replace("[gates]\n", "[gates]\ndrift = { max_drifted_share = 0.5 }\n")
    )
    monkeypatch.chdir(tiny_project)
    assert main(["package", "--report", "report.json", "--output", "b"]) == 1
    assert "does not show the declared gate(s) ['drift'] passing" in capsys.readouterr().err
    assert not (tiny_project / "b").exists()
