"""The types export and its converters share: what a converter hands back, and the float types.

Below both :mod:`~pytest_mlops.export.base` (which checks, stamps and writes a converted model)
and the converters (:mod:`~pytest_mlops.export.sklearn`, :mod:`~pytest_mlops.export.torch`), so
that neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import onnx

__all__ = ["DTYPES", "Converted", "Converter", "Dtype"]

Dtype = Literal["float32", "float64"]
DTYPES: tuple[Dtype, ...] = ("float32", "float64")


@dataclass(frozen=True)
class Converted:
    """What a converter hands back: the model proto and what its outputs mean."""

    proto: onnx.ModelProto
    source: str
    producer: str
    output: str
    classes: list[Any] | None = None
    dtype: str = "float32"


class Converter(Protocol):
    """Converts one kind of model to ONNX (see :func:`~pytest_mlops.export.export_onnx`)."""

    def __call__(
        self, model: Any, sample: Any, /, *, dtype: Dtype, output: str, opset: int | None
    ) -> Converted:
        """The model as an ONNX proto, with what its outputs mean."""
        ...
