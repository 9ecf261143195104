"""``pytest --mlops-deploy=staging`` and the deploy CLI, end to end on the embedded registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_mlops.cli import main
from pytest_mlops.deploy.registry import LocalRegistry


@pytest.fixture
def project(pytester: pytest.Pytester, tiny_template: Path) -> Path:
    for name in ("model.onnx", "data.csv", "mlops.toml"):
        shutil.copy(tiny_template / name, pytester.path / name)
    return pytester.path


def test_a_passing_session_deploys_to_staging(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest("--mlops-deploy=staging", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= mlops deploy =*",
            "bundle sha256:* (*bundle)",
            "smoke test of tiny at staging passed: health ok, 8 predictions match",
            "staging -> tiny v1, digest sha256:*",
        ]
    )
    registry = LocalRegistry(project / "registry")
    staged = registry.stage("tiny", "staging")
    assert staged is not None
    assert staged.evidence["verdict"] == "passed"
    assert registry.history("tiny")[0].why == "pytest --mlops-deploy after a passing session"


def test_a_failing_gate_never_deploys(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest(
        "--mlops-deploy=staging",
        "--mlops-set",
        "gates.accuracy.min=0.999",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["not deployed to staging: the session's verdict is 'failed': pytest exited with status 1*"]
    )
    assert (
        not (project / "registry").exists()
        or LocalRegistry(project / "registry").versions("tiny") == []
    )


def test_a_deselected_gate_means_no_deployment(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makepyfile(test_other="def test_nothing():\n    assert True\n")
    result = pytester.runpytest("--mlops-deploy=staging", "-k", "nothing", "-p", "no:cacheprovider")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "not deployed to staging: the session's verdict is 'incomplete': declared gate(s) did "
            "not run: 'accuracy' (deselected with -m/-k*"
        ]
    )


def test_a_deploy_hook_can_stop_the_deployment(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makeconftest(
        """
        from pytest_mlops.errors import DeployError

        def pytest_mlops_deploy(config, stage, version, smoke, registry):
            assert smoke.passed and version.version == 1
            raise DeployError(f"change freeze: {stage} is closed")
        """
    )
    result = pytester.runpytest("--mlops-deploy=staging", "-p", "no:cacheprovider")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["deploy to staging FAILED: change freeze: staging is closed"])
    registry = LocalRegistry(project / "registry")
    assert registry.stage("tiny", "staging") is None
    assert len(registry.versions("tiny")) == 1  # pushed and smoke-tested, never staged


def test_production_is_not_a_pytest_deploy_target(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest("--mlops-deploy=production", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest deploys to 'staging' only; promote to production with*"])


def test_cli_package_push_promote_rollback_history(
    tiny_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tiny_project)
    assert main(["promote", "--to", "production"]) == 2  # nothing in staging yet
    assert "nothing of 'tiny' is in staging" in capsys.readouterr().err
    assert main(["package", "--output", "b1"]) == 0  # no report: no evidence
    assert main(["push", "b1"]) == 1
    assert "report verdict is 'none'" in capsys.readouterr().err
    for n in (1, 2):
        assert main(["package", "--report", "report.json", "--output", f"v{n}"]) == 0
        (tiny_project / "report.json").write_text(
            (tiny_project / "report.json").read_text().replace('"created"', '"created" ', 1)
        )  # the next run's report: another file, another digest
        assert main(["push", f"v{n}", "--why", f"candidate {n}"]) == 0
        assert main(["promote", "--to", "production"]) == 0
    assert main(["rollback", "--why", "regression"]) == 0
    out = capsys.readouterr().out
    assert "production -> tiny v1 (was v2)" in out
    assert main(["history", "--json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert [(e["stage"], e["action"], e["version"]) for e in events] == [
        ("staging", "deploy", 1),
        ("production", "promote", 1),
        ("staging", "deploy", 2),
        ("production", "promote", 2),
        ("production", "rollback", 1),
    ]
    assert events[2]["why"] == "candidate 2"
    assert events[-1]["why"] == "regression"
    assert main(["history"]) == 0
    assert "production tiny v1" in capsys.readouterr().out


def test_under_xdist_only_the_controller_deploys(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makepyfile(test_more="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-n", "2", "--mlops-deploy=staging", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["staging -> tiny v1, digest sha256:*"])
    registry = LocalRegistry(project / "registry")
    assert [v.version for v in registry.versions("tiny")] == [1]
    assert [e.action for e in registry.history("tiny")] == ["deploy"]
