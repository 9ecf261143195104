"""Inference requests checked against the model's signature, with a fast path for common ones.

A common request (one flat ``data`` list of the declared datatype and fixed dimensions) is checked
against what was precomputed per input; anything else goes through the detailed checks, whose
400 names the input and what was expected (``input 'X' must have shape [-1, 4], got [2, 3]``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import numpy

from .responses import HttpError
from .tensors import OIP_TO_NUMPY, Tensor

__all__ = ["RequestValidator"]

_INT: frozenset[type] = frozenset((int,))
_BOOL: frozenset[type] = frozenset((bool,))
_NUMBER: frozenset[type] = frozenset((int, float))
# the largest finite values of the narrow float types: JSON numbers beyond them would become inf
_FLOAT_MAX = {"FP32": 3.4028234663852886e38, "FP16": 65504.0}

# per input: datatype, fixed dimensions after the first, values per row, allowed value types,
# NumPy dtype, largest magnitude (0: no bound)
_Fast = tuple[str, list[int], int, frozenset[type], str, float]
Parsed = tuple[dict[str, Any], int, "list[str] | None"]


def _fast_entry(t: Tensor) -> _Fast:
    kinds = _BOOL if t.datatype == "BOOL" else _INT if "INT" in t.datatype else _NUMBER
    return (
        t.datatype,
        list(t.shape[1:]),
        math.prod(t.shape[1:]),
        kinds,
        OIP_TO_NUMPY[t.datatype],
        _FLOAT_MAX.get(t.datatype, 0.0),
    )


class RequestValidator:
    """Feeds, batch size and requested outputs from a decoded OIP inference request body."""

    def __init__(self, inputs: Sequence[Tensor], outputs: Sequence[Tensor]) -> None:

        self._np = numpy
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self._by_name = {t.name: t for t in self.inputs}
        self._fast: dict[Any, _Fast] = {
            t.name: _fast_entry(t)
            for t in self.inputs
            if t.datatype != "BYTES" and -1 not in t.shape[1:] and len(t.shape) >= 1
        }

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    def parse(self, body: Any) -> Parsed:
        """Feeds (name -> array), the batch size and the requested output names (or None)."""
        if not isinstance(body, dict):
            raise HttpError(400, "the request body must be a JSON object with an 'inputs' list")
        items = body.get("inputs")
        if not isinstance(items, list) or not items:
            raise HttpError(400, "the request needs a non-empty 'inputs' list")
        outputs = body.get("outputs")
        wanted = None if outputs is None else self._requested_outputs(outputs)
        if len(items) == 1 and len(self.inputs) == 1:  # the common case: nothing can be missing
            name, array = self._parse_input(items[0])
            return {name: array}, int(array.shape[0]), wanted
        feeds: dict[str, Any] = {}
        for item in items:
            name, array = self._parse_input(item)
            if name in feeds:
                raise HttpError(400, f"input {name!r} is given twice")
            feeds[name] = array
        missing = [t.name for t in self.inputs if t.name not in feeds]
        if missing:
            raise HttpError(400, f"missing input(s) {missing}; the model takes {self.input_names}")
        sizes = {name: int(a.shape[0]) for name, a in feeds.items()}
        if len(set(sizes.values())) != 1:
            raise HttpError(400, f"inputs must share the batch size (first dimension): {sizes}")
        return feeds, next(iter(sizes.values())), wanted

    def _parse_input(self, item: Any) -> tuple[str, Any]:
        if type(item) is dict and type(item.get("name")) is str:
            array = self._fast_array(item)
            if array is not None:
                return str(item["name"]), array
        return self._checked_input(item)

    def _fast_array(self, item: dict[str, Any]) -> Any:
        """The input's array when it passes the precomputed checks; None to check in detail."""
        fast = self._fast.get(item["name"])
        shape, data = item.get("shape"), item.get("data")
        if (
            fast is not None
            and item.get("datatype") == fast[0]
            and type(shape) is list
            and shape
            and set(map(type, shape)) <= _INT
            and shape[1:] == fast[1]
            and shape[0] >= 0
            and type(data) is list
            and len(data) == shape[0] * fast[2]
            and set(map(type, data)) <= fast[3]
            and not (fast[5] and data and (max(data) > fast[5] or min(data) < -fast[5]))
        ):
            with contextlib.suppress(OverflowError, ValueError):  # the detailed checks say why
                return self._np.asarray(data, dtype=fast[4]).reshape(shape)
        return None

    def _checked_input(self, item: Any) -> tuple[str, Any]:
        if not isinstance(item, dict):
            raise HttpError(
                400, "each entry of 'inputs' must be an object {name, shape, datatype, data}"
            )
        name = item.get("name")
        spec = self._by_name.get(name) if isinstance(name, str) else None
        if spec is None:
            raise HttpError(400, f"unknown input {name!r}; the model takes {self.input_names}")
        datatype, shape, data = item.get("datatype"), item.get("shape"), item.get("data")
        if datatype != spec.datatype:
            raise HttpError(
                400, f"input {name!r} must have datatype {spec.datatype!r}, got {datatype!r}"
            )
        shape = _check_shape(spec, shape)
        if not isinstance(data, list):
            raise HttpError(400, f"input {name!r}: 'data' must be a list")
        flat = _flatten(data) if data and isinstance(data[0], list) else data
        if len(flat) != math.prod(shape):
            raise HttpError(
                400,
                f"input {name!r}: shape {shape} needs {math.prod(shape)} values, got {len(flat)}",
            )
        return spec.name, _to_array(self._np, spec.name, flat, spec.datatype, shape)

    def _requested_outputs(self, outputs: Any) -> list[str]:
        known = [t.name for t in self.outputs]
        if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and o.get("name") in known for o in outputs
        ):
            raise HttpError(400, f"'outputs' must be a list of {{'name': ...}} among {known}")
        return [str(o["name"]) for o in outputs]


def _check_shape(spec: Tensor, shape: Any) -> list[int]:
    name = spec.name
    if (
        not isinstance(shape, list)
        or not shape
        or not set(map(type, shape)) <= _INT
        or min(shape) < 0
    ):
        raise HttpError(400, f"input {name!r}: 'shape' must be a list of dimensions >= 0")
    if len(shape) != len(spec.shape):
        raise HttpError(
            400, f"input {name!r} has rank {len(spec.shape)} {list(spec.shape)}, got shape {shape}"
        )
    for got, want in zip(shape[1:], spec.shape[1:], strict=True):
        if want != -1 and got != want:
            raise HttpError(400, f"input {name!r} must have shape {list(spec.shape)}, got {shape}")
    return shape


def _flatten(data: list[Any]) -> list[Any]:
    """Nested lists to one flat list, in row-major order (no recursion: depth is the client's)."""
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()
    return out


def _check_types(name: str, flat: list[Any], datatype: str) -> None:
    types = set(map(type, flat))  # JSON decoders give exactly bool, int, float, str, ...
    if datatype == "BYTES":
        if not types <= {str}:
            raise HttpError(400, f"input {name!r} is BYTES: 'data' must hold strings")
    elif datatype == "BOOL":
        if not types <= _BOOL:
            raise HttpError(400, f"input {name!r} is BOOL: 'data' must hold true/false")
    elif not types <= _NUMBER:
        raise HttpError(400, f"input {name!r} is {datatype}: 'data' must hold numbers")
    elif datatype.startswith(("INT", "UINT")) and not types <= _INT:
        raise HttpError(400, f"input {name!r} is {datatype}: 'data' must hold whole numbers")


def _to_array(np: Any, name: str, flat: list[Any], datatype: str, shape: list[int]) -> Any:
    _check_types(name, flat, datatype)
    if datatype == "BYTES":
        return np.asarray(flat, dtype=object).reshape(shape)
    problem = f"input {name!r}: a value does not fit {datatype} (or is not a finite number)"
    try:
        with np.errstate(over="raise", invalid="raise"):
            array = np.asarray(flat, dtype=OIP_TO_NUMPY[datatype]).reshape(shape)
    except (OverflowError, ValueError, FloatingPointError):
        raise HttpError(400, problem) from None
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise HttpError(400, problem)
    return array
