"""Tensors of a model's signature: ONNX Runtime element types, OIP datatypes and NumPy dtypes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["OIP_TO_NUMPY", "ORT_TO_OIP", "Tensor", "tensor_of"]

ORT_TO_OIP = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(int16)": "INT16",
    "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}
OIP_TO_NUMPY = {
    "FP32": "float32",
    "FP64": "float64",
    "FP16": "float16",
    "INT64": "int64",
    "INT32": "int32",
    "INT16": "int16",
    "INT8": "int8",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "BOOL": "bool",
    "BYTES": "object",
}


@dataclass(frozen=True)
class Tensor:
    """An input or output of the model: name, OIP datatype, shape (-1 for a free dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def meta(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def tensor_of(node: Any) -> Tensor:
    """A :class:`Tensor` of an ONNX Runtime ``NodeArg`` (maps and sequences read as FP32)."""
    datatype = ORT_TO_OIP.get(
        node.type, "FP32" if "map" in node.type or "seq" in node.type else "BYTES"
    )
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (node.shape or [None]))
    return Tensor(node.name, datatype, shape)
