"""Fixtures of the bad-input corpus (see corpus_helpers.py for what a case asserts)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from corpus_helpers import build_project


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus-template")
    build_project(root)
    return root


@pytest.fixture
def project(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the project; the current directory while the case runs."""
    root = tmp_path / "project"
    shutil.copytree(template, root)
    monkeypatch.chdir(root)
    return root
