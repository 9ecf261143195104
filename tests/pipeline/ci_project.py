"""A small model project for the pipeline tests, as a new user would have it.

A scikit-learn pipeline predicting income > 50K on other columns of the UCI Adult copy than the
example uses, trained on a seeded sample of the training split and gated on a sample of the test
split; its model code, declared gates and data live in a git repository whose CI file is what
``pytest-mlops init-ci gitlab`` writes. The feature sets below are the model versions the scenarios
use: the one in production before the pipeline runs, a better and a worse candidate.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
ADULT = ROOT / "examples" / "credit_scoring" / "data"

#: model version -> (numeric columns, categorical columns); roc_auc on current.csv, measured:
#: production 0.803, better 0.897, worse 0.772
PRODUCTION: tuple[list[str], list[str]] = (["age", "education_num", "hours_per_week"], [])
BETTER = (
    ["age", "education_num", "hours_per_week", "capital_gain", "capital_loss"],
    ["marital_status", "occupation", "relationship"],
)
WORSE: tuple[list[str], list[str]] = (["age", "hours_per_week", "capital_gain"], [])
COLUMNS = [
    "age",
    "education_num",
    "hours_per_week",
    "capital_gain",
    "capital_loss",
    "marital_status",
    "occupation",
    "relationship",
    "sex",
    "income",
]

MODEL = '''\
"""Income > 50K: a scikit-learn pipeline trained on data/reference.csv (seeded, deterministic)."""

import functools
from pathlib import Path

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = Path(__file__).parent
NUMERIC = {numeric!r}
CATEGORICAL = {categorical!r}


def build() -> Pipeline:
    steps = [("numeric", StandardScaler(), NUMERIC)]
    if CATEGORICAL:
        categorical = make_pipeline(
            SimpleImputer(strategy="constant", fill_value="missing"),
            OneHotEncoder(handle_unknown="ignore"),
        )
        steps.append(("categorical", categorical, CATEGORICAL))
    return Pipeline([("encode", ColumnTransformer(steps)), ("classify", LogisticRegression(max_iter=1000))])


@functools.lru_cache(maxsize=1)
def model() -> Pipeline:
    frame = pd.read_csv(HERE / "data" / "reference.csv")
    return build().fit(frame[NUMERIC + CATEGORICAL], frame["income"])


if __name__ == "__main__":  # the retraining job: train and say how well it does
    from sklearn.metrics import roc_auc_score

    current = pd.read_csv(HERE / "data" / "current.csv")
    scores = model().predict_proba(current[NUMERIC + CATEGORICAL])[:, 1]
    print(f"retrained: roc_auc {{roc_auc_score(current['income'], scores):.4f}} on {{len(current)}} rows")
'''

GATES = """\
# Declared gates: `pytest` collects one test item per gate; the CI stages select them by family.
model = "model:model"
reference = "data/reference.csv"
current = "data/current.csv"
target = "income"
sensitive = ["sex"]

[gates]
schema = {{ path = "schema.json" }}
# nine coarse census columns: people alike in all of them are common, in one split and across both
integrity = {{ dataset = "current", max_conflicting_share = 0.05, max_overlap_share = 0.15 }}
accuracy = {{ metric = "roc_auc", min = 0.72 }}
champion = {{ baseline = "{baseline}", metric = "roc_auc", margin = 0.005 }}
fairness = {{ sensitive = "sex", metric = "equalized_odds_difference", max = 0.25 }}
drift = {{}}
latency = {{ batch_size = 1, p50_ms = 250, min_runs = 20, min_duration_s = 0.3 }}

[deploy]
name = "{name}"
smoke_rows = 10

[monitor]
profile = "data/reference-profile.npz"
current = "data/production.csv"
report = "build/monitor-report.json"
retries = 1
backoff_s = 0.5
"""

PYPROJECT = """\
[tool.pytest.ini_options]
addopts = ["--strict-markers", "-p", "no:cacheprovider"]
"""

SERVICE = """\
[project]
name = "credit-risk-service"
version = "0.1.0"

[tool.pytest.ini_options]
testpaths = ["tests"]
"""


def model_code(features: tuple[list[str], list[str]]) -> str:
    """model.py of one model version."""
    numeric, categorical = features
    return MODEL.format(numeric=numeric, categorical=categorical)


def write_data(root: Path) -> None:
    """Reference and current samples of Adult, a drifted production extract and its profile."""
    from pytest_mlops import load_dataset
    from pytest_mlops.checks.drift import DriftProfile
    from pytest_mlops.data.schema import infer_schema

    data = root / "data"
    data.mkdir(parents=True)
    train = pd.read_csv(ADULT / "train.csv.gz", usecols=COLUMNS)
    holdout = pd.read_csv(ADULT / "holdout.csv.gz", usecols=COLUMNS)
    train.sample(n=4000, random_state=7).to_csv(data / "reference.csv", index=False)
    holdout.sample(n=2000, random_state=7).to_csv(data / "current.csv", index=False)
    # production after a change of population: only people aged 45 and over apply
    older = holdout[holdout["age"] >= 45].sample(n=800, random_state=11)
    older.drop(columns="income").to_csv(data / "production.csv", index=False)
    reference = load_dataset(data / "reference.csv", target="income")
    DriftProfile.fit(reference).save(data / "reference-profile.npz")
    infer_schema(reference).save(root / "schema.json")


def git(root: Path, *args: str) -> str:
    """Run git in *root*; its output."""
    done = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


def create(
    root: Path,
    *,
    name: str,
    features: tuple[list[str], list[str]],
    platform: str = "gitlab",
    registry: str | None = None,
) -> Path:
    """A git repository with the project on ``main`` and the CI files from ``init-ci PLATFORM``.

    *registry* goes into ``[deploy]`` (the GitLab tests set it as a CI/CD variable instead).
    """
    from pytest_mlops.ci import init_ci

    root.mkdir(parents=True)
    write_data(root)
    (root / "model.py").write_text(model_code(features), encoding="utf-8")
    # another package of the repository, with tests of its own (a wrong MLOPS_DIR for the gates)
    (root / "service").mkdir()
    (root / "service" / "pyproject.toml").write_text(SERVICE, encoding="utf-8")
    gates = GATES.format(baseline="registry:production", name=name)
    if registry is not None:
        gates = gates.replace("[deploy]\n", f"[deploy]\nregistry = {registry!r}\n")
    (root / "mlops.toml").write_text(gates, encoding="utf-8")
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (root / ".gitignore").write_text("build/\n.mlops/\n.venv/\n.cache/\n.gitlab-ci-local/\n")
    init_ci(platform, root)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Ada Lovelace")
    git(root, "config", "user.email", "ada@example.com")
    git(root, "remote", "add", "origin", "https://gitlab.example.com/acme/credit-risk.git")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Income model with its gates and the pytest-mlops pipeline")
    return root


def commit_model(
    root: Path, branch: str, features: tuple[list[str], list[str]], message: str
) -> str:
    """Check out a new *branch* from main with model.py changed to *features*; its commit."""
    git(root, "checkout", "-q", "-B", branch, "main")
    (root / "model.py").write_text(model_code(features), encoding="utf-8")
    git(root, "commit", "-q", "--allow-empty", "-am", message)
    return git(root, "rev-parse", "HEAD")


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``pytest-mlops ARGS`` in *cwd*; it must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest_mlops.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"pytest-mlops {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


SEED = """\
model = "model:model"
reference = "data/reference.csv"
current = "data/current.csv"
target = "income"

[gates]
accuracy = {{ metric = "roc_auc", min = 0.72 }}

[deploy]
name = "{name}"
smoke_rows = 10
"""


def deploy_first_model(repo: Path, seed: Path, name: str, registry: str) -> None:
    """The project's first model, deployed by hand before it had a pipeline: production v1."""
    seed.mkdir()
    shutil.copytree(repo / "data", seed / "data")
    shutil.copy(repo / "model.py", seed / "model.py")
    (seed / "mlops.toml").write_text(SEED.format(name=name), encoding="utf-8")
    env = {**os.environ, "MLOPS_REGISTRY": registry}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--mlops-report=build/report.json", "mlops.toml"],
        cwd=seed, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    cli("package", "--report", "build/report.json", "--output", "build/bundle", cwd=seed, env=env)
    cli("push", "build/bundle", "--to", "staging", "--why", "first model", cwd=seed, env=env)
    cli("promote", "--to", "production", "--why", "first model", cwd=seed, env=env)
