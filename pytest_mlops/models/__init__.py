"""Model adapters: scikit-learn, PyTorch, ONNX and plain callables behind one ``Model`` protocol.

The names below load on first use (the plugin imports :mod:`pytest_mlops.models.load` at start-up,
which must not load NumPy).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_LAZY = {
    "BaseModel": "pytest_mlops.models.base",
    "Model": "pytest_mlops.models.base",
    "Signature": "pytest_mlops.models.base",
    "TensorSpec": "pytest_mlops.models.base",
    "CallableModel": "pytest_mlops.models.callable",
    "adapt": "pytest_mlops.models.load",
    "load_model": "pytest_mlops.models.load",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_mlops.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
