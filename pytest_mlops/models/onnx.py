"""ONNX models run by ONNX Runtime (CPU by default)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops.errors import DataError, ModelError
from pytest_mlops.models.base import (
    ArrayLike,
    BaseModel,
    OutputKind,
    Signature,
    TensorSpec,
    n_rows,
    numeric_matrix,
    scores_to_proba,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["OnnxModel"]

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(string)": "string",
    "tensor(bool)": "bool",
    "tensor(float16)": "float16",
}
# Metadata key our exporter stamps: what a single float output means.
OUTPUT_METADATA_KEY = "pytest_mlops.output"


class OnnxModel(BaseModel):
    """An ONNX model from a file, bytes, an ``onnx.ModelProto`` or an ``InferenceSession``.

    Conventions understood without help: scikit-learn exports (a label output, then a probability
    output, ZipMap or tensor) and single-output models (integer/string output = labels; a float
    output = what ``output`` or the model's ``pytest_mlops.output`` metadata says, else values).
    Models with one input take a numeric matrix; models with several named inputs take one column
    each, matched by name.
    """

    kind = "onnx"

    def __init__(
        self,
        source: Any,
        *,
        output: OutputKind = "auto",
        providers: list[str] | None = None,
        name: str | None = None,
    ) -> None:
        import onnxruntime as ort

        self.path: Path | None = None
        if isinstance(source, ort.InferenceSession):
            self.session = source
        else:
            data = self._read(source)
            try:
                self.session = ort.InferenceSession(
                    data, providers=providers or ["CPUExecutionProvider"]
                )
            except Exception as exc:
                text = str(exc).strip()
                if "INVALID_PROTOBUF" in text or not data:
                    raise ModelError(
                        f"ONNX Runtime cannot load {self._where()}: the file is corrupt or "
                        f"truncated ({len(data)} bytes, not a valid ONNX protobuf); export it "
                        "again or fetch a verified copy"
                    ) from None
                raise ModelError(
                    f"ONNX Runtime cannot load {self._where()}: {text[:500]}"
                ) from None
        self.name = name or (self.path.stem if self.path else "onnx-model")
        meta = self.session.get_modelmeta().custom_metadata_map
        declared = meta.get(OUTPUT_METADATA_KEY)
        self.output: OutputKind = output if output != "auto" else (declared or "auto")
        self._outputs = self.session.get_outputs()
        self._classes = self._find_classes(meta)

    def _where(self) -> str:
        return f"the ONNX model {str(self.path)!r}" if self.path else "the ONNX model"

    def _read(self, source: Any) -> bytes:
        if isinstance(source, bytes):
            return source
        if hasattr(source, "SerializeToString"):
            return bytes(source.SerializeToString())
        self.path = Path(source)
        if not self.path.is_file():
            raise ModelError(f"the ONNX model file {str(self.path)!r} does not exist")
        return self.path.read_bytes()

    def _find_classes(self, meta: dict[str, str]) -> np.ndarray | None:
        import json

        import numpy as np

        if "pytest_mlops.classes" in meta:
            return np.asarray(json.loads(meta["pytest_mlops.classes"]))
        if self.path is None:
            return None
        import onnx

        graph = onnx.load(str(self.path), load_external_data=False).graph
        for node in graph.node:
            for attr in node.attribute:
                if attr.name in ("classlabels_int64s", "classlabels_ints"):
                    return np.asarray(list(attr.ints))
                if attr.name == "classlabels_strings":
                    return np.asarray([s.decode() for s in attr.strings])
        return None

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    @property
    def signature(self) -> Signature:
        return Signature(
            tuple(
                TensorSpec(i.name, _ORT_TYPES.get(i.type, i.type), tuple(i.shape))
                for i in self.session.get_inputs()
            )
        )

    @property
    def classes(self) -> np.ndarray | None:
        return self._classes

    @property
    def has_proba(self) -> bool:
        if len(self._outputs) >= 2:
            # a classifier exported without probabilities (labels + scores) says so in metadata
            return self.output != "labels"
        return self.output in ("probabilities", "logits")

    @property
    def task(self) -> Any:
        if self.has_proba or self.output == "labels":
            return "classification"
        if len(self._outputs) == 1 and _ORT_TYPES.get(self._outputs[0].type) in ("int64", "string"):
            return "classification"
        return "regression" if self.output in ("values", "auto") else "unknown"

    def feeds(self, X: ArrayLike) -> dict[str, np.ndarray]:
        """Build ONNX Runtime inputs from a frame or array, with clear errors on mismatch."""
        import numpy as np
        import pandas as pd

        inputs = self.signature.inputs
        if len(inputs) == 1:
            spec = inputs[0]
            dtype = (
                spec.dtype if spec.dtype in ("float32", "float64", "int64", "int32") else "float32"
            )
            array = numeric_matrix(X, dtype, self.describe())
            expected = spec.shape[1] if len(spec.shape) > 1 else None
            if isinstance(expected, int) and array.shape[1] != expected:
                raise DataError(
                    f"{self.describe()} input {spec.name!r} takes {expected} features per row, "
                    f"the data has {array.shape[1]}"
                )
            return {spec.name: array}
        if not isinstance(X, pd.DataFrame):
            raise DataError(
                f"{self.describe()} takes named inputs {[s.name for s in inputs]}: "
                "pass a DataFrame with those columns"
            )
        missing = [s.name for s in inputs if s.name not in X.columns]
        if missing:
            raise DataError(f"{self.describe()} needs the columns {missing} which the data lacks")
        feeds: dict[str, np.ndarray] = {}
        for spec in inputs:
            column = X[spec.name]
            if spec.dtype == "string":
                values = (
                    column.astype(object).where(column.notna(), "").astype(str).to_numpy(object)
                )
            else:
                try:
                    values = column.to_numpy(dtype=spec.dtype)
                except (TypeError, ValueError):
                    raise DataError(
                        f"{self.describe()} input {spec.name!r} is {spec.dtype}, but the column "
                        f"holds {column.dtype} values such as {column.iloc[0]!r}"
                    ) from None
            feeds[spec.name] = np.asarray(values).reshape(-1, 1)
        return feeds

    def run(self, X: ArrayLike) -> list[Any]:
        """All outputs of the session on *X*."""
        return self.run_feeds(self.feeds(X), n_rows(X))

    def run_feeds(self, feeds: Mapping[str, Any], rows: int) -> list[Any]:
        """All outputs of the session on inputs built by :meth:`feeds` (*rows* rows).

        An error of the runtime becomes a ModelError naming the model and the number of rows.
        """
        result: list[Any] = self._call("session.run", lambda: self.session.run(None, feeds), rows)
        return result

    def predict(self, X: ArrayLike) -> np.ndarray:
        return self.interpret(self.run(X))[0]

    def interpret(self, outputs: list[Any]) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels (or values) and, where the model has them, probabilities from one run's outputs.

        Lets a caller run the session once (e.g. on pre-built feeds, batch by batch) and read
        both decisions the way :meth:`predict` and :meth:`predict_proba` do.
        """
        import numpy as np

        proba = self._proba(outputs) if self.has_proba else None
        if len(outputs) >= 2 or self.output in ("labels", "values", "auto"):
            first = np.asarray(outputs[0])
            labels = first.reshape(-1) if first.ndim == 2 and first.shape[1] == 1 else first
            return labels, proba
        assert proba is not None  # noqa: S101 - a type the caller guarantees
        classes = self._classes if self._classes is not None else np.arange(proba.shape[1])
        return np.asarray(classes[proba.argmax(axis=1)]), proba

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        if not self.has_proba:
            return super().predict_proba(X)
        return self._proba(self.run(X))

    def _proba(self, outputs: list[Any]) -> np.ndarray:
        import numpy as np

        if len(outputs) >= 2:
            second = outputs[1]
            if isinstance(second, list):  # ZipMap: a list of {class: probability}
                keys = list(second[0].keys()) if second else []
                if self._classes is None:
                    self._classes = np.asarray(keys)
                return np.asarray([[row[k] for k in keys] for row in second], dtype=np.float64)
            return np.asarray(second, dtype=np.float64)
        return scores_to_proba(np.asarray(outputs[0]), self.output)
