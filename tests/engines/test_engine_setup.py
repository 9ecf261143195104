"""Engines that cannot start say what to install; a bad setting names itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_mlops import ConfigError, DriftProfile
from pytest_mlops._engines import engine_for, get_engine
from pytest_mlops.engines.spark import parse_conf

pytest.importorskip("pyspark")


def _without_java(tmp_path: Path) -> dict[str, str]:
    """The environment with no java on PATH and no JAVA_HOME (Python stays reachable)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(sys.executable, bin_dir / "python3")
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PYSPARK_PYTHON")}
    env["PATH"] = str(bin_dir)
    return env


def test_spark_without_java_says_what_to_install(tmp_path):
    code = (
        "from pytest_mlops.engines.spark import spark_session\n"
        "from pytest_mlops import ConfigError\n"
        "try:\n    spark_session(master='local[1]')\n"
        "except ConfigError as exc:\n    print('ConfigError:', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_without_java(tmp_path), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert "ConfigError: Spark needs a Java runtime" in done.stdout, done.stdout + done.stderr
    assert "apt-get install default-jre-headless" in done.stdout


def test_monitor_with_spark_and_no_java_exits_2_and_writes_nothing(tmp_path, adult_train):
    profile = tmp_path / "profile.npz"
    DriftProfile.fit(adult_train[["age"]], bins=64).save(profile)
    (tmp_path / "lake").mkdir()
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest_mlops.cli", "monitor", "--engine", "spark",
         "--profile", str(profile), "--current", str(tmp_path / "lake"),
         "--report", str(report), "--state", str(tmp_path / "state")],
        env=_without_java(tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "default-jre-headless" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert not report.exists()


def test_settings_and_engine_names():
    assert parse_conf(["spark.master=local[2]", "a.b=x=y"]) == {
        "spark.master": "local[2]",
        "a.b": "x=y",
    }
    with pytest.raises(ConfigError, match=re.escape("expected key=value, got 'spark.master'")):
        parse_conf(["spark.master"])
    with pytest.raises(ConfigError, match="unknown engine 'sprak' - did you mean 'spark'"):
        get_engine("sprak")
    assert engine_for([1, 2]) is None
