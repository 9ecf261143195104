"""The GitHub workflows' own commands, run in order in a scratch repository.

No runner for GitHub Actions runs here, so ``actionlint`` checks the workflows' structure
(tests/unit/test_ci_templates.py) and this runs their shell steps, extracted with their ``env``,
in the order and under the conditions the workflows give them (``github_steps``): the
``mlops-setup`` action's default install (offline, from the wheels of this checkout), every gate
stage, the report, the deploy, and the monitor with its workflow dispatch. One project as in the
GitLab test, with the embedded registry in a directory outside the checkout.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci_project import BETTER, PRODUCTION, WORSE, commit_model, create, deploy_first_model, git
from github_steps import Job, StepRunner
from gitlab_runner import RunnerImage

pytestmark = pytest.mark.pipeline

GATES = "data", "quality", "fairness", "drift", "latency"
WORKFLOW = ".github/workflows/mlops-gates.yml"


class Dispatches:
    """GitHub's workflow-dispatch endpoint on 127.0.0.1: records requests, answers 204."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        calls = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
                headers = {k.lower(): v for k, v in self.headers.items()}
                calls.append(
                    {"path": self.path, "headers": headers, "body": self.rfile.read(length)}
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Repo:
    path: Path
    name: str
    registry: Path
    env: dict[str, str]
    api: Dispatches

    def runner(self, event: str, ref: str, **inputs: Any) -> StepRunner:
        """The steps of an *event* on *ref*, with mlops.yml's inputs (and *inputs*)."""
        git(self.path, "clean", "-q", "-fdx", "-e", ".venv")  # each run starts from a checkout
        caller = yaml.safe_load((self.path / ".github/workflows/mlops.yml").read_text())
        given = {**caller["jobs"]["gates"]["with"], **inputs}
        github = {
            "event_name": event,
            "ref_name": ref,
            "sha": git(self.path, "rev-parse", "HEAD"),
            "run_id": "4242",
            "api_url": self.api.url,
            "repository": "acme/credit-risk",
            "event": {"repository": {"default_branch": "main"}},
        }
        return StepRunner(
            self.path, self.env, github, given, secrets={"GITHUB_TOKEN": "ghs-test-token"}
        )

    def stages(self) -> dict[str, Any]:
        from pytest_mlops.deploy.registries import open_registry
        from pytest_mlops.deploy.settings import deploy_settings

        config = _config(self.path)
        registry = open_registry(deploy_settings(config))
        return {s: registry.stage(self.name, s) for s in ("staging", "production")}


def _config(path: Path) -> Any:
    from pytest_mlops.config import find_config_file, load_config

    return load_config(find_config_file(path), base_dir=path)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, runner_image: RunnerImage) -> Iterator[Repo]:
    root = tmp_path_factory.mktemp("github")
    name = f"credit-risk-{uuid.uuid4().hex[:8]}"
    registry = root / "registry"
    path = create(
        root / "credit-risk",
        name=name,
        features=PRODUCTION,
        platform="github",
        registry=str(registry),
    )
    deploy_first_model(path, root / "first-deploy", name, str(registry))
    env = {
        "PATH": f"{runner_image.bin}:/usr/bin:/bin",
        "HOME": str(root / "home"),
        # the runner's pip: offline, from the wheels of this checkout and its dependencies
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": f"{runner_image.wheel_dir} {runner_image.deps}",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    api = Dispatches()
    yield Repo(path, name, registry, env, api)
    api.close()


def _statuses(jobs: dict[str, Job]) -> dict[str, str]:
    return {job_id: job.status for job_id, job in jobs.items()}


def _explain(jobs: dict[str, Job]) -> str:
    return "\n".join(f"== {j.name}: {j.status}{j.log[-3000:]}" for j in jobs.values())


def test_pull_request_with_a_worse_model(repo: Repo) -> None:
    commit_model(repo.path, "fewer-features", WORSE, "Keep capital gains, drop education")
    runner = repo.runner("pull_request", "fewer-features")

    jobs = runner.run_workflow(WORKFLOW)

    assert _statuses(jobs) == {
        **dict.fromkeys(GATES, "success"),
        "quality": "failure",  # the champion gate: worse than production
        "latency-gpu": "skipped",  # no GPU runner
        "report": "success",
        "package": "skipped",
        "staging": "skipped",
        "production": "skipped",
    }, _explain(jobs)
    # the mlops-setup action's steps ran in each job; its install only until the venv was cached
    assert jobs["data"].steps[:2] == ["Install", "Put the virtual environment on PATH"]
    assert jobs["quality"].steps[0] == "Put the virtual environment on PATH"
    assert "stage quality: FAILED - a gate or test failed" in jobs["quality"].log
    assert "stage fairness: PASSED - 1 declared fairness gate passed" in jobs["fairness"].log
    summary = runner.summary.read_text()
    assert summary.startswith("<!-- pytest-mlops-report -->")
    assert "FAILED" in summary
    assert "| ❌ | champion | roc_auc |" in summary
    merged = json.loads((repo.path / "build" / "mlops-report.json").read_text())
    assert {r["name"] for r in merged["results"]} == {
        "schema", "integrity", "accuracy", "champion", "fairness", "drift", "latency",
    }  # fmt: skip


def test_push_to_main_deploys_to_production(repo: Repo) -> None:
    commit_model(repo.path, "main", BETTER, "Use capital, marriage and occupation")
    before = repo.stages()
    runner = repo.runner("push", "main", deploy=True)

    jobs = runner.run_workflow(WORKFLOW)

    assert _statuses(jobs) == {
        **dict.fromkeys((*GATES, "report", "package", "staging", "production"), "success"),
        "latency-gpu": "skipped",
    }, _explain(jobs)
    after = repo.stages()
    assert after["production"].version == after["staging"].version > before["production"].version
    assert "PASSED" in runner.summary.read_text()


def test_scheduled_monitor_dispatches_the_retraining_workflow(repo: Repo) -> None:
    git(repo.path, "checkout", "-q", "main")
    runner = repo.runner("schedule", "main")

    jobs = runner.run_workflow(".github/workflows/mlops-monitor.yml")

    assert _statuses(jobs) == {"monitor": "success"}, _explain(jobs)
    assert "::warning::drift detected: retraining dispatched" in jobs["monitor"].log
    (request,) = repo.api.requests
    assert request["path"] == "/repos/acme/credit-risk/actions/workflows/retrain.yml/dispatches"
    assert request["headers"]["authorization"] == "Bearer ghs-test-token"
    assert json.loads(request["body"]) == {"ref": "main"}
    assert "drift" in runner.summary.read_text().lower()
