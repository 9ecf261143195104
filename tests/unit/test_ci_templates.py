"""The CI templates: written by init-ci, validated by actionlint and the published JSON schemas."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_mlops.ci import TEMPLATES, init_ci, template_files
from pytest_mlops.cli import main
from pytest_mlops.errors import MlopsError

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is needed to validate the CI templates: pip install -e '.[dev]'")
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _actionlint(repo: Path) -> subprocess.CompletedProcess[str]:
    actionlint = _tool("actionlint")
    if not (repo / ".git").exists():
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return _run(actionlint, "-no-color", cwd=repo)


def _schema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return _run(_tool("check-jsonschema"), "--builtin-schema", schema, *map(str, files))


@pytest.fixture
def github_repo(tmp_path: Path) -> Path:
    init_ci("github", tmp_path)
    return tmp_path


def test_packaged_templates_are_the_ones_in_ci_templates():
    for platform, mapping in TEMPLATES.items():
        files = template_files(platform)
        for source, target in mapping.items():
            assert files[target] == (ROOT / "ci-templates" / source).read_text(encoding="utf-8")


def test_github_templates_pass_actionlint(github_repo):
    done = _actionlint(github_repo)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(github_repo):
    gates = github_repo / ".github" / "workflows" / "mlops-gates.yml"
    gates.write_text(gates.read_text().replace("needs: drift\n", "needs: drfit\n", 1))
    done = _actionlint(github_repo)
    assert done.returncode == 1
    assert "drfit" in done.stdout


def test_github_templates_match_the_published_schemas(github_repo):
    workflows = sorted((github_repo / ".github" / "workflows").glob("*.yml"))
    assert len(workflows) == 3
    done = _schema("vendor.github-workflows", *workflows)
    assert done.returncode == 0, done.stdout + done.stderr
    action = github_repo / ".github" / "actions" / "mlops-setup" / "action.yml"
    done = _schema("vendor.github-actions", action)
    assert done.returncode == 0, done.stdout + done.stderr


def test_gitlab_template_matches_the_published_schema(tmp_path):
    (written,) = init_ci("gitlab", tmp_path)
    assert written == tmp_path / ".gitlab-ci.yml"
    done = _schema("vendor.gitlab-ci", written)
    assert done.returncode == 0, done.stdout + done.stderr
    written.write_text(written.read_text().replace("when: manual", "when: sometimes"))
    broken = _schema("vendor.gitlab-ci", written)
    assert broken.returncode == 1, "the schema check must catch an invalid 'when'"


def _github(repo: Path, name: str) -> dict[Any, Any]:
    workflow: dict[Any, Any] = yaml.safe_load((repo / ".github" / "workflows" / name).read_text())
    return workflow


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_github_pipeline_stages_order_markers_and_approval(github_repo):
    gates = _github(github_repo, "mlops-gates.yml")
    assert "workflow_call" in gates[True]  # YAML 1.1 reads the key `on` as True
    jobs = gates["jobs"]
    chain = [
        ("quality", "data"),
        ("fairness", "quality"),
        ("drift", "fairness"),
        ("latency", "drift"),
        ("latency-gpu", "drift"),
        ("staging", "package"),
        ("production", "staging"),
    ]
    for job, needs in chain:
        assert jobs[job]["needs"] == needs, job
    for job, stage in [
        ("data", "data"),
        ("quality", "quality"),
        ("fairness", "fairness"),
        ("drift", "drift"),
        ("latency", "latency-cpu"),
        ("latency-gpu", "latency-gpu"),
    ]:
        assert f"pytest-mlops stage {stage} --report" in _runs(jobs[job]), job
        assert '--pytest-args="$PYTEST_ARGS"' in _runs(jobs[job]), job
        # each stage runs whatever the stages before it did, so the report shows every gate
        if job != "data":
            assert jobs[job]["if"].startswith("${{ !cancelled()"), job
    assert jobs["latency-gpu"]["if"] == "${{ !cancelled() && inputs.gpu-runner != '' }}"
    assert "!failure()" in jobs["package"]["if"]
    assert jobs["latency-gpu"]["runs-on"] == "${{ inputs.gpu-runner }}"
    assert jobs["production"]["environment"] == "production"
    assert "GITHUB_STEP_SUMMARY" in _runs(jobs["report"])
    comment = next(
        s for s in jobs["report"]["steps"] if s.get("uses", "").startswith("actions/github-script")
    )
    assert "<!-- pytest-mlops-report -->" in comment["with"]["script"]
    assert "pytest-mlops report" in _runs(jobs["report"])
    caller = _github(github_repo, "mlops.yml")
    assert caller["jobs"]["gates"]["uses"] == "./.github/workflows/mlops-gates.yml"
    monitor = _github(github_repo, "mlops-monitor.yml")
    assert monitor[True]["schedule"][0]["cron"]
    assert "pytest-mlops monitor" in _runs(monitor["jobs"]["monitor"])
    setup = yaml.safe_load((github_repo / ".github/actions/mlops-setup/action.yml").read_text())
    assert any(s.get("uses", "").startswith("actions/cache") for s in setup["runs"]["steps"])


def test_gitlab_pipeline_stages_rules_and_manual_production(tmp_path):
    (path,) = init_ci("gitlab", tmp_path)
    ci = yaml.safe_load(path.read_text())
    assert ci["stages"][:9] == [
        "data",
        "quality",
        "fairness",
        "drift",
        "latency",
        "report",
        "package",
        "staging",
        "production",
    ]
    rules = [r["if"] for r in ci["workflow"]["rules"]]
    assert '$CI_PIPELINE_SOURCE == "merge_request_event"' in rules
    stage_jobs = ("data", "quality", "fairness", "drift", "latency-cpu", "latency-gpu")
    for job in stage_jobs:
        assert ci[job]["variables"]["MLOPS_STAGE"] == job
        assert ci[job]["extends"] == ".mlops-stage"
    assert ci[".mlops-stage"]["script"][0].startswith('pytest-mlops stage "$MLOPS_STAGE"')
    assert ci[".mlops-stage"]["rules"][-1] == {"when": "always"}
    assert ci[".mlops-stage"]["dependencies"] == []
    needs = {n["job"]: n for n in ci["mlops-report"]["needs"]}
    assert set(needs) == set(stage_jobs)
    assert all(n["artifacts"] for n in needs.values())
    assert needs["latency-gpu"]["optional"] is True
    assert "needs" not in ci["package"], "package must wait for every earlier stage to pass"
    assert ci["latency-gpu"]["tags"] == ["$MLOPS_GPU_TAG"]
    production_rule = ci["production"]["rules"][-1]
    assert production_rule["when"] == "manual"
    assert production_rule["allow_failure"] is False
    assert ci["production"]["environment"]["name"] == "production"
    assert ".venv/" in ci[".mlops-venv"]["cache"]["paths"]
    report = "\n".join(ci["mlops-report"]["script"])
    assert "merge_requests" in report
    assert "/notes" in report
    assert "MLOPS_NOTES_TOKEN" in report
    assert ci["monitor"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert "pytest-mlops monitor" in ci["monitor"]["script"][0]


@pytest.mark.parametrize("platform", sorted(TEMPLATES))
def test_no_template_turns_an_empty_stage_into_a_pass(platform):
    # `|| test $? -eq 5` made a stage that collected nothing (wrong directory, no config) pass
    for target, text in template_files(platform).items():
        assert "-eq 5" not in text, target


def test_init_ci_refuses_to_overwrite_and_names_the_file(tmp_path, capsys):
    target = tmp_path / ".gitlab-ci.yml"
    target.write_text("stages: [mine]\n")
    assert main(["init-ci", "gitlab", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{str(target)!r} already exists: not overwritten (pass --force" in err
    assert target.read_text() == "stages: [mine]\n"
    assert main(["init-ci", "gitlab", "--dir", str(tmp_path), "--force"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert target.read_text().startswith("# Model gates on GitLab CI")


def test_init_ci_writes_nothing_when_one_file_exists(tmp_path):
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "mlops.yml").write_text("mine")
    with pytest.raises(MlopsError, match=r"mlops\.yml' already exists"):
        init_ci("github", tmp_path)
    assert not (tmp_path / ".github" / "workflows" / "mlops-gates.yml").exists()


def test_init_ci_unknown_platform_suggests_the_right_one(tmp_path):
    with pytest.raises(MlopsError, match="unknown CI platform 'gitlabb' - did you mean 'gitlab'"):
        init_ci("gitlabb", tmp_path)


class _NotesApi:
    """GitLab's merge-request notes API, as much as the template uses, on 127.0.0.1."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.notes: dict[int, str] = {}
        self.calls: list[tuple[str, str, str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, payload: object) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> str:
                return str(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["body"])

            def do_GET(self) -> None:
                api.calls.append(("GET", self.path, self.headers["PRIVATE-TOKEN"]))
                self._answer([{"id": i, "body": b} for i, b in api.notes.items()])

            def do_POST(self) -> None:
                api.calls.append(("POST", self.path, self.headers["PRIVATE-TOKEN"]))
                note = len(api.notes) + 1
                api.notes[note] = self._body()
                self._answer({"id": note})

            def do_PUT(self) -> None:
                api.calls.append(("PUT", self.path, self.headers["PRIVATE-TOKEN"]))
                api.notes[int(self.path.rsplit("/", 1)[1])] = self._body()
                self._answer({})

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v4"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_gitlab_report_job_posts_then_updates_its_merge_request_note(tmp_path):
    ci = yaml.safe_load(template_files("gitlab")[".gitlab-ci.yml"])
    block = next(s for s in ci["mlops-report"]["script"] if "python - <<'PY'" in s)
    code = block.split("python - <<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
    (tmp_path / "build").mkdir()
    api = _NotesApi()
    env = {
        **os.environ,
        "CI_PROJECT_ID": "7",
        "CI_MERGE_REQUEST_IID": "3",
        "MLOPS_NOTES_TOKEN": "glpat-x",
        "CI_API_V4_URL": api.url,
    }
    try:
        for text in ("<!-- pytest-mlops-report -->\nfirst", "<!-- pytest-mlops-report -->\nsecond"):
            (tmp_path / "build" / "mlops-report.md").write_text(text)
            done = subprocess.run(
                [sys.executable, "-c", code],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
    finally:
        api.close()
    notes = "/api/v4/projects/7/merge_requests/3/notes"
    assert [(m, p) for m, p, _ in api.calls] == [
        ("GET", f"{notes}?sort=asc&order_by=created_at&per_page=100"),
        ("POST", notes),
        ("GET", f"{notes}?sort=asc&order_by=created_at&per_page=100"),
        ("PUT", f"{notes}/1"),
    ]
    assert {token for *_, token in api.calls} == {"glpat-x"}
    assert api.notes == {1: "<!-- pytest-mlops-report -->\nsecond"}
