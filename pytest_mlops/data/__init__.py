"""Datasets: features, target and sensitive features; loaders; validation."""

from __future__ import annotations

from pytest_mlops.data.dataset import Dataset
from pytest_mlops.data.loaders import load_dataset, read_frame

__all__ = ["Dataset", "load_dataset", "read_frame"]
