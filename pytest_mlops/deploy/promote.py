"""Promotion through stages, gated on evidence; rollback; the audit history.

The rules:

* **staging** takes a bundle whose test report passed; its smoke test (the server running the
  bundle, checked for health and for the expected predictions) must pass before the stage moves.
* **production** takes a version that has a passing report whose sha256 is the one the bundle
  was packaged with (the evidence belongs to this model) and a passing staging smoke test.
* **rollback** re-points a stage to the version it pointed at before the current one was promoted.

Every move verifies the version's artifacts byte for byte first and appends an audit event (who,
when, why, evidence) in the same transaction that moves the pointer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mlops.deploy.bundle import Bundle, digest_pair, file_sha256
from pytest_mlops.deploy.registry import STAGES, Event, RegistryBackend, Version
from pytest_mlops.errors import DeployError, ReportError
from pytest_mlops.results import CheckResult

__all__ = ["Deployment", "deploy_to_staging", "promote", "rollback"]


@dataclass(frozen=True)
class Deployment:
    """What a move of a stage did."""

    version: Version
    stage: str
    event: Event | None
    smoke: CheckResult | None = None

    @property
    def changed(self) -> bool:
        return self.event is not None

    def describe(self) -> str:
        v = self.version
        if self.event is None:
            return f"{self.stage} already points at {v.label} ({v.digest[:19]}...)"
        before = self.event.previous_version
        was = f" (was v{before})" if before is not None else ""
        return f"{self.stage} -> {v.label}{was}, digest {v.digest[:19]}..., by {self.event.who}"


def deploy_to_staging(
    registry: RegistryBackend,
    bundle: Bundle,
    *,
    why: str = "",
    before: Callable[[Version, CheckResult], None] | None = None,
) -> Deployment:
    """Push *bundle*, smoke-test it, and point staging at it if the smoke test passes.

    *before* (the ``pytest_mlops_deploy`` hook) runs after a passing smoke test, before the
    pointer moves; an ``MlopsError`` it raises stops the deployment.

    Raises
    ------
    DeployError
        The bundle carries no passing report, or the smoke test failed (staging is unchanged).
    """
    _check_bundle_evidence(bundle)
    version = registry.push(bundle)
    smoke = registry.smoke(version, "staging")
    registry.record_smoke(version, "staging", smoke)
    if not smoke.passed:
        current = registry.stage(version.name, "staging")
        still = f"staging still points at {current.label}" if current else "staging is empty"
        raise DeployError(f"{smoke.message}; {still}")
    if before is not None:
        before(version, smoke)
    with registry.lock():
        current = registry.stage(version.name, "staging")
        if current is not None and current.version == version.version:
            return Deployment(version, "staging", None, smoke)
        event = registry.set_stage(
            version.name,
            "staging",
            version.version,
            action="deploy",
            why=why or "deployed after a passing test session",
            evidence=_evidence(version, smoke),
        )
    return Deployment(version, "staging", event, smoke)


def promote(
    registry: RegistryBackend,
    name: str,
    *,
    to: str = "production",
    version: int | None = None,
    report: str | Path | None = None,
    why: str = "",
) -> Deployment:
    """Point *to* at *version* (default: what staging points at), once the evidence holds.

    The evidence: a passing JSON report whose sha256 matches the one the version was packaged
    with (``report`` if given, else the copy inside the bundle) and a passing smoke test of this
    version at staging. The artifacts are verified before the pointer moves.
    """
    _check_stage(to)
    with registry.lock():
        target = _target(registry, name, version)
        registry.verify(target)
        proof = _check_report(registry, target, report)
        smoke = _passing_smoke(registry, target)
        current = registry.stage(name, to)
        if current is not None and current.version == target.version:
            return Deployment(target, to, None)
        event = registry.set_stage(
            name,
            to,
            target.version,
            action="promote",
            why=why or f"promoted from staging to {to}",
            evidence={**proof, "smoke": smoke},
        )
    return Deployment(target, to, event)


def rollback(
    registry: RegistryBackend,
    name: str,
    *,
    stage: str = "production",
    to_version: int | None = None,
    why: str = "",
) -> Deployment:
    """Re-point *stage* to the version it pointed at before the current one (or *to_version*)."""
    _check_stage(stage)
    with registry.lock():
        current = registry.stage(name, stage)
        if current is None:
            raise DeployError(
                f"cannot roll back {name!r} in {stage}: nothing was ever deployed there"
            )
        target_number = (
            to_version if to_version is not None else _previous(registry, name, stage, current)
        )
        if target_number == current.version:
            raise DeployError(f"{stage} already points at {current.label}: nothing to roll back to")
        target = registry.get(name, target_number)
        registry.verify(target)
        event = registry.set_stage(
            name,
            stage,
            target.version,
            action="rollback",
            why=why or f"rolled back from v{current.version}",
            evidence={"rolled_back": current.version, "rolled_back_digest": current.digest},
        )
    return Deployment(target, stage, event)


def _check_bundle_evidence(bundle: Bundle) -> None:
    """The report inside the bundle, judged again by this version's rules."""
    from pytest_mlops.deploy.evidence import passing_evidence

    if bundle.verdict != "passed" or not bundle.lineage.get("evidence", {}).get("report"):
        raise DeployError(
            f"refusing to deploy {bundle.name} ({bundle.digest[:19]}...) to staging: its test "
            f"report verdict is {bundle.verdict!r}; package it with a passing report "
            "(pytest --mlops-report=PATH, then pytest-mlops package --report PATH)"
        )
    path = bundle.path / str(bundle.lineage["evidence"]["report"])
    try:
        passing_evidence(path, action=f"deploy {bundle.name} to staging")
    except ReportError as exc:
        raise DeployError(
            f"cannot deploy {bundle.name} ({bundle.digest[:19]}...): the evidence it was packaged "
            f"with cannot be used: {exc}; then package it again"
        ) from None


def _check_stage(stage: str) -> None:
    if stage not in STAGES:
        from pytest_mlops.errors import choices_text, did_you_mean

        raise DeployError(
            f"unknown stage {stage!r}{did_you_mean(stage, STAGES)}; stages are {choices_text(STAGES)}"
        )


def _target(registry: RegistryBackend, name: str, version: int | None) -> Version:
    if version is not None:
        return registry.get(name, version)
    staged = registry.stage(name, "staging")
    if staged is None:
        raise DeployError(
            f"nothing of {name!r} is in staging: deploy it there first "
            "(pytest --mlops-deploy=staging, or pytest-mlops push --to staging)"
        )
    return staged


def _check_report(
    registry: RegistryBackend, target: Version, report: str | Path | None
) -> dict[str, Any]:
    import tempfile

    from pytest_mlops.deploy.evidence import passing_evidence
    from pytest_mlops.report.json import load_report

    evidence = target.evidence
    expected = evidence.get("report_sha256")
    if not expected:
        raise DeployError(
            f"refusing to promote {target.label}: it was packaged without a test report, so "
            "there is no evidence it passed its gates"
        )
    with tempfile.TemporaryDirectory(prefix="mlops-evidence-") as tmp:
        if report is None:
            bundle = registry.checkout(target, Path(tmp) / "bundle")
            path = bundle.path / str(evidence["report"])
        else:
            path = Path(report)
        try:
            load_report(path)  # unreadable, malformed or of an older format: bad input
            digest = file_sha256(path)
            if digest != expected:
                mine, theirs = digest_pair(digest, str(expected))
                raise DeployError(
                    f"refusing to promote {target.label}: the report {str(report)!r} (sha256 "
                    f"{mine}) is not the evidence this version was packaged with ({theirs}): "
                    "it describes another run or another model"
                )
            data, _ = passing_evidence(path, action=f"promote {target.label}")
        except ReportError as exc:
            if report is not None:
                raise
            raise ReportError(
                f"the evidence {target.label} was packaged with cannot be used: {exc}; then "
                "package and deploy it again"
            ) from None
    return {
        "report_sha256": expected,
        "verdict": data["summary"]["verdict"],
        "model_sha256": target.model_sha256,
        "summary": dict(data["summary"]),
    }


def _passing_smoke(registry: RegistryBackend, target: Version) -> dict[str, Any]:
    records = [
        r
        for r in registry.smoke_records(target.name, target.version)
        if r.stage == "staging" and r.digest == target.digest
    ]
    if not records or records[-1].status != "passed":
        last = f" (last: {records[-1].message})" if records else ""
        raise DeployError(
            f"refusing to promote {target.label}: it has no passing staging smoke test{last}; "
            "deploy it to staging first"
        )
    return {"status": records[-1].status, "at": records[-1].at, "message": records[-1].message}


def _previous(registry: RegistryBackend, name: str, stage: str, current: Version) -> int:
    """The version *stage* pointed at before *current* was last moved there by a promotion."""
    for event in reversed(registry.history(name)):
        if event.stage != stage or event.version != current.version:
            continue
        if event.action in ("promote", "deploy") and event.previous_version is not None:
            return event.previous_version
        if event.action in ("promote", "deploy"):
            break
    raise DeployError(
        f"cannot roll back {name!r} in {stage}: {current.label} is the first version it ever "
        "had; pass --to-version to choose one"
    )


def _evidence(version: Version, smoke: CheckResult) -> Mapping[str, Any]:
    return {
        "report_sha256": version.evidence.get("report_sha256"),
        "verdict": version.evidence.get("verdict"),
        "model_sha256": version.model_sha256,
        "smoke": {"status": smoke.status, "message": smoke.message},
    }
