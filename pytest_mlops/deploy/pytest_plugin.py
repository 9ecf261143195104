"""``pytest --mlops-deploy=staging``: deploy after a session in which every mlops gate passed.

Registered by ``plugin.py`` only when the option is given, so a plain run never loads it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mlops.errors import MlopsError

if TYPE_CHECKING:
    from pytest_mlops.session import SessionState

__all__ = ["DEPLOY_STAGES", "DeployPlugin", "deploy_refusal"]

DEPLOY_STAGES = ("staging",)


def deploy_refusal(state: SessionState, exitstatus: int) -> str | None:
    """Why the session does not earn a deployment, or ``None`` when it does.

    The same judgement as the report's verdict: pytest passed, every declared gate ran and
    passed, no mlops test errored or failed (see :mod:`pytest_mlops.report.evidence`).
    """
    from pytest_mlops.session import session_report

    summary = session_report(state, exitstatus, inputs=False)["summary"]
    if summary["verdict"] == "passed":
        return None
    return f"the session's verdict is {summary['verdict']!r}: " + "; ".join(summary["reasons"])


class DeployPlugin:
    """Packages and deploys at the end of the session, after the report is written."""

    def __init__(self, state: SessionState, stage: str) -> None:
        if stage not in DEPLOY_STAGES:
            raise pytest.UsageError(
                f"pytest-mlops: --mlops-deploy={stage!r}: pytest deploys to 'staging' only; "
                "promote to production with `pytest-mlops promote --to production`, which "
                "checks the staging evidence"
            )
        self.state = state
        self.stage = stage
        self.lines: list[str] = []

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        config = session.config
        if hasattr(config, "workerinput"):
            return
        why_not = deploy_refusal(self.state, int(session.exitstatus))
        if why_not is not None:
            self.lines.append(f"not deployed to {self.stage}: {why_not}")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        try:
            self.lines += self._deploy(config)
        except MlopsError as exc:
            self.lines.append(f"deploy to {self.stage} FAILED: {exc}")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _deploy(self, config: pytest.Config) -> list[str]:
        from pytest_mlops.deploy.bundle import build_bundle
        from pytest_mlops.deploy.promote import deploy_to_staging
        from pytest_mlops.deploy.registries import open_registry
        from pytest_mlops.deploy.settings import deploy_settings
        from pytest_mlops.report.json import write_report
        from pytest_mlops.session import session_report

        project = self.state.project
        settings = deploy_settings(project)
        with tempfile.TemporaryDirectory(prefix="mlops-deploy-") as tmp:
            report = project.settings.report
            if not report or not Path(report).is_file():
                report = str(Path(tmp) / "mlops-report.json")
                write_report(Path(report), session_report(self.state, 0))
            bundle = build_bundle(
                project,
                project.base_dir / "build" / "bundle",
                report=report,
                settings=settings,
                context=self.state.context,
            )
        registry = open_registry(settings)

        def own_steps(version: Any, smoke: Any) -> None:
            config.hook.pytest_mlops_deploy(
                config=config, stage=self.stage, version=version, smoke=smoke, registry=registry
            )

        deployment = deploy_to_staging(
            registry, bundle, why="pytest --mlops-deploy after a passing session", before=own_steps
        )
        lines = [f"bundle {bundle.digest} ({bundle.path})"]
        if deployment.smoke is not None:
            lines.append(deployment.smoke.message)
        lines.append(deployment.describe())
        return lines

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.lines:
            return
        terminalreporter.section("mlops deploy")
        for line in self.lines:
            terminalreporter.write_line(line)
