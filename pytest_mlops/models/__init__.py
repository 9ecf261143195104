"""Model adapters: scikit-learn, PyTorch, ONNX and plain callables behind one ``Model`` protocol."""

from __future__ import annotations

from pytest_mlops.models.base import BaseModel, Model, Signature, TensorSpec
from pytest_mlops.models.callable import CallableModel
from pytest_mlops.models.load import adapt, load_model

__all__ = [
    "BaseModel",
    "CallableModel",
    "Model",
    "Signature",
    "TensorSpec",
    "adapt",
    "load_model",
]
