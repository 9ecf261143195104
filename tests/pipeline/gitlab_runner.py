"""Run a repository's ``.gitlab-ci.yml`` with gitlab-ci-local, each job as on its own runner.

``--force-shell-executor --shell-isolation``: every job starts in a fresh copy of the repository's
tracked files (``.gitlab-ci-local/builds/<job>``, rsync'ed anew for each job) with only what GitLab
would give it: the artifacts of the jobs it depends on and the cache. The jobs run on this machine
with a ``python`` on PATH standing in for the ``python:3.11-slim`` image.

One difference from GitLab is corrected here, not in the template: gitlab-ci-local sets
``CI_PROJECT_DIR`` to ``/builds/<group>/<project>`` for any job that names an image, even under
``--force-shell-executor`` where the job runs elsewhere; it is set to the job's own directory, as a
runner does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: the summary gitlab-ci-local prints last: " PASS  [ 12 s] data", " FAIL  [ 9 s] quality"...
STATUS = re.compile(r"^ (PASS|WARN|FAIL) +(?:\[[^\]]*\] +)?(\S+)", re.MULTILINE)
WORDS = {"PASS": "passed", "WARN": "warning", "FAIL": "failed"}


@dataclass(frozen=True)
class RunnerImage:
    """What the jobs' image provides: ``python`` (bin) with the project's dependencies (site).

    Teams run their model pipelines on an image with the scientific stack installed; here that
    is this interpreter's base Python and the dependencies of pytest-mlops[onnxruntime,sklearn-onnx,deploy] installed from
    wheels into one directory (on the jobs' PYTHONPATH), once, kept outside the clone. The jobs
    then install pytest-mlops itself, built from this checkout, into the template's cached venv.
    """

    bin: Path
    site: Path
    wheel_dir: Path  # pytest-mlops, built from this checkout
    deps: Path  # the wheels of its dependencies


@dataclass(frozen=True)
class PipelineRun:
    """What one gitlab-ci-local invocation did."""

    repo: Path
    returncode: int
    output: str
    jobs: dict[str, str]
    seconds: float

    @property
    def state(self) -> Path:
        return self.repo / ".gitlab-ci-local"

    def artifact(self, job: str, path: str) -> Path:
        """A file among *job*'s artifacts (as gitlab-ci-local keeps them)."""
        return self.state / "artifacts" / job / path

    def log(self, job: str) -> str:
        """The job's log."""
        return (self.state / "output" / f"{job}.log").read_text(encoding="utf-8", errors="replace")

    def explain(self) -> str:
        """The end of the output, for assertion messages."""
        return f"gitlab-ci-local exited {self.returncode}; jobs {self.jobs}\n{self.output[-6000:]}"


@dataclass(frozen=True)
class GitlabCiLocal:
    """gitlab-ci-local on one repository, with the CI/CD variables every pipeline gets."""

    executable: Path
    repo: Path
    image_bin: Path
    variables: Mapping[str, str]

    def run(
        self,
        *jobs: str,
        variables: Mapping[str, str] | None = None,
        unset: Sequence[str] = (),
        timeout: float = 600,
    ) -> PipelineRun:
        """Run the pipeline (or only *jobs*) with extra *variables*; *unset* predefined ones."""
        project_dir = f"{self.repo}/.gitlab-ci-local/builds/$CI_JOB_NAME"
        merged = {"CI_PROJECT_DIR": project_dir, **self.variables, **(variables or {})}
        args = [
            str(self.executable),
            "--force-shell-executor",
            "--shell-isolation",
            "--no-color",
            "--timestamps",
            # a job's artifacts go to the jobs that depend on it, not into the working tree
            "--no-artifacts-to-source",
        ]
        for name, value in merged.items():
            args += ["--variable", f"{name}={value}"]
        for name in unset:
            args += ["--unset-variable", name]
        start = time.monotonic()
        done = subprocess.run(
            [*args, *jobs],
            cwd=self.repo,
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        # the summary is the last block of stdout, after an empty line
        summary = done.stdout[done.stdout.rfind("\n\n") :]
        statuses = {name: WORDS[word] for word, name in STATUS.findall(summary)}
        output = done.stdout + done.stderr
        run = PipelineRun(self.repo, done.returncode, output, statuses, time.monotonic() - start)
        trace = os.environ.get("MLOPS_PIPELINE_TRACE")
        if trace:  # keep every run's output, and the report it rendered, to look at afterwards
            self._keep(Path(trace), run, " ".join([*jobs, *(variables or {}).values()]))
        return run

    @staticmethod
    def _keep(trace: Path, run: PipelineRun, label: str) -> None:
        trace.mkdir(parents=True, exist_ok=True)
        n = len(list(trace.glob("*.log"))) + 1
        name = f"{n:02d}-{re.sub(r'[^A-Za-z0-9]+', '-', label)[:60].strip('-') or 'pipeline'}"
        (trace / f"{name}.log").write_text(run.output, encoding="utf-8")
        for job, path in (
            ("mlops-report", "build/mlops-report.md"),
            ("monitor", "build/monitor-report.md"),
        ):
            if run.jobs.get(job) and run.artifact(job, path).is_file():
                (trace / f"{name}-{job}.md").write_bytes(run.artifact(job, path).read_bytes())

    def _env(self) -> dict[str, str]:
        """What a runner's shell has: the image's python, git, rsync; no trace of this venv."""
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("gitlab-ci-local needs node on PATH")
        keep = ("HOME", "LANG", "LC_ALL", "TMPDIR", "USER")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        path = [str(self.image_bin), str(Path(node).parent), "/usr/bin", "/bin"]
        env["PATH"] = os.pathsep.join(dict.fromkeys(path))
        return env
