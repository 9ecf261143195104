"""Fixtures of the pipeline tests: gitlab-ci-local, the jobs' image, the MLflow server.

The real parts come from the project's scripts: ``scripts/install-gitlab-ci-local.sh`` (npm,
pinned; ``scripts/test.sh`` runs it and exports ``MLOPS_GITLAB_CI_LOCAL``) and
``scripts/services.sh`` (``MLOPS_TEST_MLFLOW``). Without them the tests fail in CI (``CI=true``)
and skip elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitlab_runner import RunnerImage

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = "onnxruntime,sklearn-onnx,deploy"


def require(what: str, reason: str | None) -> None:
    """A real part is missing (*reason*): fail in CI (CI=true), skip elsewhere."""
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the pipeline tests must run in CI: {reason}", pytrace=False)
    pytest.skip(f"no {what}: {reason}")


@pytest.fixture(scope="session")
def gitlab_ci_local() -> Path:
    """The gitlab-ci-local executable (installed by scripts/install-gitlab-ci-local.sh)."""
    given = os.environ.get("MLOPS_GITLAB_CI_LOCAL")
    if given:
        require("gitlab-ci-local", None if Path(given).is_file() else f"{given} does not exist")
        return Path(given)
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-gitlab-ci-local.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    require("gitlab-ci-local", None if done.returncode == 0 else done.stderr[-2000:])
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def mlflow_url() -> str:
    """The MLflow tracking server of scripts/services.sh."""
    url = os.environ.get("MLOPS_TEST_MLFLOW")
    require("MLflow server", None if url else "MLOPS_TEST_MLFLOW is not set (scripts/services.sh)")
    assert url is not None
    return url


def _cache_key() -> str:
    """What the dependency wheels depend on: the declared dependencies and this Python."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = {e: project["optional-dependencies"][e] for e in EXTRAS.split(",")}
    text = json.dumps([project["dependencies"], extras, sys.version_info[:2]], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One writer at a time (the xdist workers share the cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _dependency_wheels(wheel: Path) -> Path:
    """The wheels pytest-mlops[EXTRAS] depends on, downloaded once (pip's cache) and kept."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    target = cache / "pytest-mlops" / "pipeline-wheels" / _cache_key()
    with _locked(target.with_name(target.name + ".lock")):
        if not (target / ".complete").is_file():
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            done = subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                 "-d", str(partial), f"pytest-mlops[{EXTRAS}] @ {wheel.as_uri()}"],
                capture_output=True, text=True, timeout=900, check=False,
            )  # fmt: skip
            require("dependency wheels", None if done.returncode == 0 else done.stderr[-2000:])
            for own in partial.glob("pytest_mlops-*.whl"):
                own.unlink()
            (partial / ".complete").touch()
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
        return target


def _image_site(deps: Path) -> Path:
    """The dependencies installed from their wheels into one directory, once, and kept."""
    site = deps.with_name(deps.name + "-site")
    with _locked(site.with_name(site.name + ".lock")):
        if not (site / ".complete").is_file():
            partial = site.with_name(site.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            wheels = sorted(str(w) for w in deps.glob("*.whl"))
            done = subprocess.run(
                [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                 "--no-index", "--no-deps", "--target", str(partial), *wheels],
                capture_output=True, text=True, timeout=900, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            (partial / ".complete").touch()
            shutil.rmtree(site, ignore_errors=True)
            partial.rename(site)
        return site


@pytest.fixture(scope="session")
def runner_image(tmp_path_factory: pytest.TempPathFactory) -> RunnerImage:
    """The jobs' image (see RunnerImage) and pytest-mlops built from this checkout."""
    own = tmp_path_factory.mktemp("wheel")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pytest-mlops"
    with _locked(
        cache / "pipeline-wheels" / "checkout-build.lock"
    ):  # setuptools builds in ROOT/build
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
             "-w", str(own), str(ROOT)],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (wheel,) = own.glob("pytest_mlops-*.whl")
    deps = _dependency_wheels(wheel)
    site = _image_site(deps)
    bin_dir = tmp_path_factory.mktemp("image-bin")
    base = Path(getattr(sys, "_base_executable", sys.executable))
    for name in ("python", "python3"):
        (bin_dir / name).symlink_to(base)
    return RunnerImage(bin=bin_dir, site=site, wheel_dir=own, deps=deps)
