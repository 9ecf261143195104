"""Shared fixtures: the example's real data (UCI Adult) and a model trained on it."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "credit_scoring"


@functools.cache
def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(EXAMPLE / "data" / f"{name}.csv.gz")


@pytest.fixture(scope="session")
def adult_train() -> pd.DataFrame:
    """UCI Adult, training split (32,561 rows); target ``income`` in {0, 1}. Do not mutate."""
    return _read("train")


@pytest.fixture(scope="session")
def adult_holdout() -> pd.DataFrame:
    """UCI Adult, test split (16,281 rows). Do not mutate."""
    return _read("holdout")


@pytest.fixture(scope="session")
def credit_module():
    """The example's ``credit_model`` module (FEATURES, TARGET, build, train)."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        import credit_model
    finally:
        sys.path.remove(str(EXAMPLE))
    return credit_model


@pytest.fixture(scope="session")
def credit_pipeline(credit_module, adult_train):
    """The example's scikit-learn pipeline, fitted on the training split."""
    return credit_module.train(adult_train)


@pytest.fixture
def unwritable_dir(tmp_path: Path):
    """A directory in which this process cannot create anything: mode 0o555 for a normal user;
    for root, whom permissions do not stop, /sys (sysfs refuses new files with EACCES)."""
    import os
    import tempfile

    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    try:
        fd, name = tempfile.mkstemp(dir="/sys")
    except OSError:
        yield Path("/sys")
        return
    os.close(fd)
    os.unlink(name)
    pytest.skip("no directory here refuses root's writes")
