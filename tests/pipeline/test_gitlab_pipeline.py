"""The GitLab template, run end to end by gitlab-ci-local on a new user's repository.

One project (``ci_project``: an income model on columns of UCI Adult) and its GitLab: the
repository written by ``pytest-mlops init-ci gitlab``, the MLflow server of ``scripts/services.sh``
as the model registry, and a stand-in for GitLab's API (``fake_gitlab``) that receives the
merge-request notes and the pipeline triggers. Each job runs as on its own runner: a fresh copy of
the repository, the artifacts of the jobs it depends on, the cache, nothing else.

Before the pipelines run, the project's first model is deployed to production by hand (the
champion gate of every pipeline compares with it). Then, as they happen on a real project: a
merge request with a better model, one with a worse model, the default branch deploying through
staging to production behind the manual job, and the scheduled monitor triggering a retraining.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from ci_project import (
    BETTER,
    PRODUCTION,
    WORSE,
    cli,
    commit_model,
    create,
    deploy_first_model,
    git,
    model_code,
)
from fake_gitlab import FakeGitlab
from gitlab_runner import GitlabCiLocal, PipelineRun, RunnerImage

pytestmark = pytest.mark.pipeline

GATE_JOBS = ("data", "quality", "fairness", "drift", "latency-cpu")
MARKER = "<!-- pytest-mlops-report -->"
NOTES_TOKEN = "glpat-notes-3f9a"
TRIGGER_TOKEN = "glptt-trigger-77c1"
PROJECT_ID = "1217"  # gitlab-ci-local's CI_PROJECT_ID


@dataclass(frozen=True)
class Project:
    """The repository, its registry's model name and GitLab."""

    repo: Path
    name: str
    registry: str
    gitlab: FakeGitlab
    runner: GitlabCiLocal
    observer: Path  # a directory whose config reads the registry, for the assertions

    def merge_request(self, iid: int, branch: str, *jobs: str) -> PipelineRun:
        """A merge-request pipeline (GitLab sets no CI_COMMIT_BRANCH in those)."""
        return self.runner.run(
            *jobs,
            variables={
                "CI_PIPELINE_SOURCE": "merge_request_event",
                "CI_MERGE_REQUEST_IID": str(iid),
                "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": branch,
                "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            },
            unset=("CI_COMMIT_BRANCH",),
        )

    def _registry(self):
        from pytest_mlops.config import find_config_file, load_config
        from pytest_mlops.deploy.registries import open_registry
        from pytest_mlops.deploy.settings import deploy_settings

        config = load_config(find_config_file(self.observer), base_dir=self.observer)
        return open_registry(deploy_settings(config, {"registry": self.registry}))

    def registry_state(self) -> dict[str, Any]:
        """The registry's stages, versions and audit log (the log as `history --json` prints it)."""
        env = {**os.environ, "MLOPS_REGISTRY": self.registry}
        events = json.loads(cli("history", "--json", cwd=self.observer, env=env).stdout)
        registry = self._registry()
        return {
            "events": events,
            "versions": [v.version for v in registry.versions(self.name)],
            "staging": registry.stage(self.name, "staging"),
            "production": registry.stage(self.name, "production"),
        }

    def model_bytes(self, stage: str) -> bytes:
        """The ONNX model a stage points at, verified against its digest."""
        registry = self._registry()
        version = registry.stage(self.name, stage)
        assert version is not None, f"nothing in {stage}"
        return bytes(registry.model_bytes(version))


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory,
    gitlab_ci_local: Path,
    mlflow_url: str,
    runner_image: RunnerImage,
) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("gitlab")
    name = f"credit-risk-{uuid.uuid4().hex[:8]}"
    registry = "mlflow+" + mlflow_url
    repo = create(root / "credit-risk", name=name, features=PRODUCTION)
    deploy_first_model(repo, root / "first-deploy", name, registry)
    observer = root / "observer"
    observer.mkdir()
    (observer / "mlops.toml").write_text(f'[deploy]\nname = "{name}"\n', encoding="utf-8")
    gitlab = FakeGitlab(PROJECT_ID, NOTES_TOKEN, TRIGGER_TOKEN).start()
    install = (
        f"pip install -q --no-index --no-deps --find-links {runner_image.wheel_dir} pytest-mlops"
    )
    runner = GitlabCiLocal(
        executable=gitlab_ci_local,
        repo=repo,
        image_bin=runner_image.bin,
        variables={
            # the image's Python packages (see RunnerImage)
            "PYTHONPATH": str(runner_image.site),
            # the project's CI/CD variables (Settings > CI/CD > Variables)
            "MLOPS_INSTALL": install,
            "MLOPS_REGISTRY": registry,
            "MLOPS_NOTES_TOKEN": NOTES_TOKEN,
            "MLOPS_TRIGGER_TOKEN": TRIGGER_TOKEN,
            "MLOPS_RETRAIN_COMMAND": "python model.py",
            # this GitLab's API
            "CI_API_V4_URL": gitlab.url,
        },
    )
    yield Project(repo, name, registry, gitlab, runner, observer)
    gitlab.close()


def _note_requests(project: Project, iid: int) -> list[Any]:
    path = f"/api/v4/projects/{PROJECT_ID}/merge_requests/{iid}/notes"
    return [r for r in project.gitlab.requests if r.path.startswith(path)]


def _merged_report(run: PipelineRun) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(
        run.artifact("mlops-report", "build/mlops-report.json").read_text()
    )
    return report


def test_merge_request_with_a_better_model_passes_and_posts_the_report(project: Project) -> None:
    before = project.registry_state()
    commit_model(project.repo, "more-features", BETTER, "Use capital, marriage and occupation")

    run = project.merge_request(21, "more-features")

    assert run.jobs == {**dict.fromkeys(GATE_JOBS, "passed"), "mlops-report": "passed"}, (
        run.explain()
    )
    report = _merged_report(run)
    assert report["summary"]["verdict"] == "passed"
    gates = {r["name"]: r for r in report["results"]}
    assert set(gates) == {
        "schema",
        "integrity",
        "accuracy",
        "champion",
        "fairness",
        "drift",
        "latency",
    }
    assert gates["champion"]["status"] == "passed"
    markdown = run.artifact("mlops-report", "build/mlops-report.md").read_text()
    html = run.artifact("mlops-report", "build/mlops-report.html").read_text()
    assert markdown.startswith(MARKER)
    assert "PASSED" in markdown
    assert "<html" in html
    assert "champion" in html
    # the note: listed first, then created, with the project access token
    calls = _note_requests(project, 21)
    notes = f"/api/v4/projects/{PROJECT_ID}/merge_requests/21/notes"
    assert [(c.method, c.path, c.query) for c in calls] == [
        ("GET", notes, "sort=asc&order_by=created_at&per_page=100"),
        ("POST", notes, ""),
    ]
    assert all(c.headers["private-token"] == NOTES_TOKEN for c in calls)
    assert calls[1].headers["content-type"] == "application/json"
    assert calls[1].body == {"body": markdown}
    # an MR pipeline deploys nothing
    assert project.registry_state()["versions"] == before["versions"]

    # the report job retried (or a later pipeline of the same MR) updates its note
    again = project.merge_request(21, "more-features", "mlops-report")
    assert again.jobs == {"mlops-report": "passed"}, again.explain()
    calls = _note_requests(project, 21)
    (note_id,) = [n["id"] for n in project.gitlab.notes.values() if n["noteable_iid"] == 21]
    assert [(c.method, c.path) for c in calls[2:]] == [
        ("GET", notes),
        ("PUT", f"{notes}/{note_id}"),
    ]
    assert calls[3].body == {
        "body": again.artifact("mlops-report", "build/mlops-report.md").read_text()
    }
    assert "7 checks (7 passed)" in calls[3].body["body"]

    # a stage run outside the project (a wrong MLOPS_DIR) finds no configuration: it fails
    lost = project.runner.run("data", variables={"MLOPS_DIR": "service"})
    assert lost.jobs == {"data": "failed"}, lost.explain()
    assert "stage data: ERROR - no pytest-mlops configuration" in lost.log("data")


def _auc_of_onnx(model: bytes, frame: pd.DataFrame) -> float:
    """roc_auc of an ONNX classifier on *frame*, scored by ONNX Runtime itself."""
    import onnxruntime as ort
    from sklearn.metrics import roc_auc_score

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    types = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}
    feeds = {}
    for spec in session.get_inputs():
        column = frame[spec.name]
        values = (
            column.astype(str) if spec.type == "tensor(string)" else column.astype(types[spec.type])
        )
        feeds[spec.name] = values.to_numpy().reshape(-1, 1)
    probabilities = next(o for o in session.run(None, feeds) if getattr(o, "ndim", 0) == 2)
    return float(roc_auc_score(frame["income"], probabilities[:, 1]))


def _auc_of(features: tuple[list[str], list[str]], repo: Path) -> float:
    """roc_auc of a model version trained here as the job trains it (scikit-learn)."""
    from sklearn.metrics import roc_auc_score

    namespace: dict[str, object] = {"__file__": str(repo / "model.py")}
    exec(compile(model_code(features), "model.py", "exec"), namespace)  # noqa: S102 - our own generated code
    pipeline = namespace["model"]()  # type: ignore[operator]
    current = pd.read_csv(repo / "data" / "current.csv")
    columns = features[0] + features[1]
    return float(roc_auc_score(current["income"], pipeline.predict_proba(current[columns])[:, 1]))


def test_merge_request_with_a_worse_model_fails_quality_and_still_reports(project: Project) -> None:
    before = project.registry_state()
    production_model = project.model_bytes("production")
    commit_model(project.repo, "fewer-features", WORSE, "Keep capital gains, drop education")

    run = project.merge_request(22, "fewer-features")

    assert run.jobs == {
        **dict.fromkeys(GATE_JOBS, "passed"),
        "quality": "failed",
        "mlops-report": "passed",  # after the failure: the merge request still gets its report
    }, run.explain()
    assert run.returncode != 0
    quality = run.log("quality")
    assert "champion gate 'champion' FAILED" in quality
    assert "stage quality: FAILED - a gate or test failed" in quality
    report = _merged_report(run)
    assert report["summary"]["verdict"] == "failed"
    gates = {r["name"]: r for r in report["results"]}
    assert gates["accuracy"]["status"] == "passed"  # good enough on its own, worse than production
    champion = gates["champion"]
    assert champion["status"] == "failed"
    # the difference is the one scikit-learn and ONNX Runtime give on the same rows
    current = pd.read_csv(project.repo / "data" / "current.csv")
    expected = _auc_of(WORSE, project.repo) - _auc_of_onnx(production_model, current)
    metrics = champion["metrics"]
    assert metrics["difference"] == pytest.approx(expected, abs=1e-4)
    assert metrics["ci_low"] < metrics["difference"] < metrics["ci_high"] < -0.005
    # the note says so, with the difference and its interval
    calls = _note_requests(project, 22)
    assert [c.method for c in calls] == ["GET", "POST"]
    body = calls[1].body["body"]
    assert body == run.artifact("mlops-report", "build/mlops-report.md").read_text()
    assert body.startswith(MARKER)
    assert "FAILED" in body
    (row,) = champion["tables"]["comparison"]
    for value in (row["difference"], row["ci_low"], row["ci_high"]):
        assert f"{value:.4g}" in body, f"{value:.4g} is not in the note"
    # nothing was packaged or pushed
    assert "package" not in run.jobs
    assert project.registry_state()["versions"] == before["versions"]


def _merge_into_main(repo: Path, features: tuple[list[str], list[str]], message: str) -> str:
    git(repo, "checkout", "-q", "main")
    (repo / "model.py").write_text(model_code(features), encoding="utf-8")
    git(repo, "commit", "-q", "--allow-empty", "-am", message)
    return git(repo, "rev-parse", "HEAD")


def test_default_branch_deploys_through_staging_to_production(project: Project) -> None:
    before = project.registry_state()
    commit = _merge_into_main(project.repo, BETTER, "Merge branch 'more-features'")

    run = project.runner.run(variables={"MLOPS_DEPLOY": "true"})

    # every gate, the report, the package and staging; production waits for its manual job
    assert run.jobs == {
        **dict.fromkeys((*GATE_JOBS, "mlops-report", "package", "staging"), "passed")
    }, run.explain()
    (digest,) = re.findall(r"bundle (sha256:[0-9a-f]{64}) at", run.log("package"))
    manifest = json.loads(run.artifact("package", "build/bundle/manifest.json").read_text())
    assert manifest["lineage"]["code"]["commit"] == commit
    staged = project.registry_state()
    assert staged["staging"].digest == digest
    assert staged["staging"].version == max(staged["versions"]) > max(before["versions"])
    assert staged["production"].version == before["production"].version
    smoke = rf"smoke test of {project.name} at staging passed: health ok, 10 predictions match"
    assert re.search(smoke, run.log("staging")), run.log("staging")

    # someone allowed to deploy runs the manual job: on a fresh runner, from the registry alone
    approved = project.runner.run("production", variables={"MLOPS_DEPLOY": "true"})

    assert approved.jobs == {"production": "passed"}, approved.explain()
    build = project.repo / ".gitlab-ci-local" / "builds" / "production"
    assert not (build / "build").exists(), "the production job got files it should not have"
    after = project.registry_state()
    assert after["production"].version == staged["staging"].version
    assert after["production"].digest == digest
    promote = after["events"][-1]
    assert (promote["stage"], promote["action"], promote["version"]) == (
        "production",
        "promote",
        staged["staging"].version,
    )
    assert promote["why"].startswith("approved by ")


def test_schedule_runs_the_monitor_whose_trigger_runs_only_retrain(project: Project) -> None:
    _merge_into_main(project.repo, BETTER, "Merge branch 'more-features'")
    seen = len(project.gitlab.triggers)

    run = project.runner.run(variables={"CI_PIPELINE_SOURCE": "schedule"})

    # drift: exit 1, an allowed failure (a warning)
    assert run.jobs == {"monitor": "warning"}, run.explain()
    report = json.loads(run.artifact("monitor", "build/monitor-report.json").read_text())
    (result,) = report["results"]
    assert result["status"] == "failed"
    drifted = {c["column"] for c in result["tables"]["columns"] if c["drifted"] in (True, "yes")}
    assert "age" in drifted
    assert "# " in run.artifact("monitor", "build/monitor-report.md").read_text()
    assert "<html" in run.artifact("monitor", "build/monitor-report.html").read_text()
    (trigger,) = project.gitlab.triggers[seen:]
    (request,) = [r for r in project.gitlab.calls("POST", "/trigger/pipeline")][-1:]
    assert request.path == f"/api/v4/projects/{PROJECT_ID}/trigger/pipeline"
    assert request.body["token"] == TRIGGER_TOKEN
    assert request.body["ref"] == "main"
    variables = trigger["variables"]
    assert variables["MLOPS_RETRAIN"] == "1"
    assert "age" in variables["MLOPS_DRIFT_SUMMARY"]

    # GitLab starts the triggered pipeline with the request's variables
    triggered = project.runner.run(variables={"CI_PIPELINE_SOURCE": "trigger", **variables})

    assert triggered.jobs == {"retrain": "passed"}, triggered.explain()
    log = triggered.log("retrain")
    assert "retraining after drift" in log
    assert re.search(r"retrained: roc_auc 0\.\d+ on 2000 rows", log)
