"""The CI templates' deploy jobs use the CI's own container registry, with the job's token."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from pytest_mlops.config import load_config
from pytest_mlops.deploy.credentials import registry_credentials
from pytest_mlops.deploy.settings import deploy_settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "ci-templates"


def _registry_step(job: dict[str, object]) -> str:
    steps = job["steps"]
    assert isinstance(steps, list)
    return str(next(s["run"] for s in steps if "MLOPS_DEFAULT_REGISTRY" in s.get("run", "")))


@pytest.mark.parametrize("job", ["staging", "production"])
def test_github_deploy_jobs_default_to_ghcr_with_the_job_token(job: str, tmp_path: Path) -> None:
    gates = yaml.safe_load((TEMPLATES / "github/workflows/mlops-gates.yml").read_text())
    spec = gates["jobs"][job]
    assert spec["permissions"] == {"contents": "read", "packages": "write"}
    assert spec["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
    step = _registry_step(spec)
    # no `docker login`: the job token reaches ghcr.io through pytest-mlops's own credentials
    assert "docker login" not in step
    found = registry_credentials("ghcr.io", {"GITHUB_TOKEN": "t", "GITHUB_ACTOR": "octo"})
    assert (found.username, found.password, found.source) == ("octo", "t", "GITHUB_TOKEN")
    # the caller grants what the reusable workflow's jobs ask for
    caller = yaml.safe_load((TEMPLATES / "github/workflows/mlops.yml").read_text())
    assert caller["permissions"]["packages"] == "write"
    # the default registry line, run as the runner's bash runs it
    github_env = tmp_path / "github-env"
    line = next(x for x in step.splitlines() if "GITHUB_ENV" in x)
    subprocess.run(
        ["bash", "-e", "-c", line],
        env={"PATH": os.environ["PATH"], "GITHUB_REPOSITORY": "Acme/Credit-Model",
             "GITHUB_ENV": str(github_env)},
        check=True,
    )  # fmt: skip
    assert (
        github_env.read_text() == "MLOPS_DEFAULT_REGISTRY=oci://ghcr.io/acme/credit-model/mlops\n"
    )


@pytest.mark.parametrize("job", ["staging", "production"])
def test_gitlab_deploy_jobs_use_the_project_registry(job: str) -> None:
    ci = yaml.safe_load((TEMPLATES / "gitlab/mlops.gitlab-ci.yml").read_text())
    assert ci[job]["variables"]["MLOPS_DEFAULT_REGISTRY"] == "oci://$CI_REGISTRY_IMAGE/mlops"


def test_the_default_registry_yields_to_the_config_and_the_job_token_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mlops.toml").write_text('model = "m.onnx"\n[deploy]\nname = "credit"\n')
    monkeypatch.delenv("MLOPS_REGISTRY", raising=False)
    default = "oci://registry.gitlab.example/acme/credit/mlops"  # $CI_REGISTRY_IMAGE/mlops
    monkeypatch.setenv("MLOPS_DEFAULT_REGISTRY", default)
    assert deploy_settings(load_config(tmp_path / "mlops.toml")).registry == default
    (tmp_path / "mlops.toml").write_text(
        'model = "m.onnx"\n[deploy]\nname = "credit"\nregistry = "mlflow+https://mlflow.example"\n'
    )
    assert deploy_settings(load_config(tmp_path / "mlops.toml")).registry.startswith("mlflow+")
    monkeypatch.setenv("MLOPS_REGISTRY", "oci://other.example/credit")
    assert (
        deploy_settings(load_config(tmp_path / "mlops.toml")).registry
        == "oci://other.example/credit"
    )
    gitlab = {
        "CI_REGISTRY": "registry.gitlab.example",
        "CI_REGISTRY_USER": "gitlab-ci-token",
        "CI_REGISTRY_PASSWORD": "job-token",
    }
    found = registry_credentials("registry.gitlab.example", gitlab)
    assert (found.username, found.password, found.source) == (
        "gitlab-ci-token", "job-token", "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD",
    )  # fmt: skip
