"""Importing the plugin must not import the heavy libraries (start-up cost of every pytest run)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "numpy",
    "pandas",
    "scipy",
    "sklearn",
    "torch",
    "onnxruntime",
    "onnx",
    "fairlearn",
    "docker",
    "hypothesis",
)


def test_plugin_import_is_light():
    code = (
        "import sys, pytest_mlops, pytest_mlops.plugin, pytest_mlops.config, pytest_mlops.gates\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at plugin start-up: {out.stdout.strip()}"


def test_every_public_name_resolves():
    import pytest_mlops

    missing = [name for name in pytest_mlops.__all__ if not hasattr(pytest_mlops, name)]
    assert missing == []
    assert set(pytest_mlops._LAZY) <= set(pytest_mlops.__all__)
