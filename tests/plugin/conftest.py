"""A tiny project for pytester runs: synthetic data, a factory model, a config with two gates."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

# Imported here so in-process pytester runs find them already loaded: C extensions cannot be
# loaded twice in one process, and pytester drops modules first imported during a run.
import sklearn.linear_model
import sklearn.metrics  # noqa: F401

from pytest_mlops._gpu import cuda_available

cuda_available()  # loads torch (when installed) once, outside the in-process runs

MODEL_MODULE = textwrap.dedent(
    """
    import pandas as pd
    from pathlib import Path
    from sklearn.linear_model import LogisticRegression

    def make():
        frame = pd.read_csv(Path(__file__).parent / "train.csv")
        return LogisticRegression().fit(frame[["x1", "x2"]], frame["y"])
    """
)

CONFIG = textwrap.dedent(
    """
    [tool.pytest_mlops]
    model = "toy_model:make"
    reference = "train.csv"
    current = "test.csv"
    target = "y"
    sensitive = ["group"]

    [tool.pytest_mlops.gates]
    schema = {}
    accuracy = { metric = "roc_auc", min = 0.8 }
    """
)


def toy_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = (x1 + 0.5 * x2 + rng.normal(scale=0.5, size=n) > 0).astype(int)
    group = rng.choice(["a", "b"], size=n)
    return pd.DataFrame({"x1": x1, "x2": x2, "group": group, "y": y})


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project whose model scores roc_auc ~0.95 on its current data."""
    toy_frame(400, 1).to_csv(pytester.path / "train.csv", index=False)
    toy_frame(300, 2).to_csv(pytester.path / "test.csv", index=False)
    pytester.makepyfile(toy_model=MODEL_MODULE)
    pytester.makefile(".toml", pyproject=CONFIG)
    pytester.syspathinsert()
    return pytester
