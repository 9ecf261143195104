"""Which converter exports which model: a table the converters are registered in.

:func:`~pytest_mlops.export.export_onnx` looks the model up here (:func:`find_converter`); the
built-in converters (PyTorch, scikit-learn) are registered below, in the order they are tried, and
another one can be added with :func:`register_converter`. The converters import only
:mod:`~pytest_mlops.export.types`, so nothing here imports the module that uses the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_mlops.export.sklearn import convert_sklearn
from pytest_mlops.export.torch import convert_torch
from pytest_mlops.export.types import Converter

__all__ = ["ConverterEntry", "class_names", "find_converter", "register_converter"]


@dataclass(frozen=True)
class ConverterEntry:
    """A converter, the kind of model it takes and the test that recognises one."""

    name: str
    matches: Callable[[Any], bool]
    convert: Converter


_CONVERTERS: list[ConverterEntry] = []


def register_converter(name: str, matches: Callable[[Any], bool], convert: Converter) -> None:
    """Try *convert* on models *matches* accepts, after the converters registered before."""
    _CONVERTERS.append(ConverterEntry(name, matches, convert))


def find_converter(model: Any) -> ConverterEntry | None:
    """The first registered converter whose test accepts *model*, or None."""
    for entry in _CONVERTERS:
        if entry.matches(model):
            return entry
    return None


def class_names(model: Any) -> list[str]:
    """``module.QualifiedName`` of the model's class and of every class it derives from."""
    return [f"{c.__module__}.{c.__qualname__}" for c in type(model).__mro__]


def _is_torch(model: Any) -> bool:
    return "torch.nn.modules.module.Module" in class_names(model)


def _is_sklearn(model: Any) -> bool:
    return any(m.startswith("sklearn.") for m in class_names(model)) or hasattr(model, "fit")


register_converter("pytorch", _is_torch, convert_torch)
register_converter("scikit-learn", _is_sklearn, convert_sklearn)
