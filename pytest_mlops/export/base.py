"""``export_onnx``: one entry point that picks the converter, then checks and stamps the file.

Every file this module writes has passed ``onnx.checker`` and carries ``metadata_props``:

``pytest_mlops.version``
    the pytest-mlops version that wrote it;
``pytest_mlops.producer``
    the converter and its version (``skl2onnx 1.20.0``, ``torch 2.13.0``) or, for an ONNX file
    passed through, the producer recorded in the file;
``pytest_mlops.source``
    what was exported: ``scikit-learn:Pipeline``, ``pytorch:Sequential``, ``onnx``;
``pytest_mlops.model_sha256``
    the sha256 of the model as converted, before any metadata was stamped (so the same model
    gives the same hash whatever the lineage fields say);
``pytest_mlops.signature``
    the inputs as JSON (``{"inputs": [{"name", "dtype", "shape"}]}``);
``pytest_mlops.output``, ``pytest_mlops.classes``
    what the outputs mean (read back by :class:`~pytest_mlops.models.onnx.OnnxModel`);
``pytest_mlops.dtype``
    the floating-point type the graph computes in;

plus whatever the caller passes as ``metadata`` (git commit, data fingerprints, ...).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pytest_mlops.errors import ConfigError, ModelError, choices_text
from pytest_mlops.models.base import Signature, TensorSpec

if TYPE_CHECKING:
    import onnx

__all__ = ["DTYPES", "META_PREFIX", "Dtype", "OnnxExport", "export_onnx", "read_onnx"]

Dtype = Literal["float32", "float64"]
DTYPES: tuple[Dtype, ...] = ("float32", "float64")
META_PREFIX = "pytest_mlops."
_ONNX_TYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "float64",
}


@dataclass(frozen=True)
class OnnxExport:
    """An ONNX file written by :func:`export_onnx`.

    Parameters
    ----------
    path:
        Where the file is.
    sha256:
        The sha256 of the file's bytes (hex), metadata included: what a registry stores it under.
    signature:
        The model's inputs.
    metadata:
        Every ``metadata_props`` entry stamped in the file.
    source:
        What was exported: ``"scikit-learn"``, ``"pytorch"`` or ``"onnx"``.
    output:
        What the outputs mean: ``"labels"``, ``"probabilities"``, ``"logits"`` or ``"values"``.
    dtype:
        The floating-point type the graph computes in.
    """

    path: Path
    sha256: str
    signature: Signature
    metadata: dict[str, str] = field(default_factory=dict)
    source: str = "onnx"
    output: str = "values"
    dtype: str = "float32"

    @property
    def size(self) -> int:
        """The file's size in bytes."""
        return self.path.stat().st_size

    def load(self, *, providers: list[str] | None = None) -> Any:
        """The exported file as an :class:`~pytest_mlops.models.onnx.OnnxModel`."""
        from pytest_mlops.models.onnx import OnnxModel

        return OnnxModel(self.path, providers=providers)


@dataclass(frozen=True)
class Converted:
    """What a converter hands back: the model proto and what its outputs mean."""

    proto: onnx.ModelProto
    source: str
    producer: str
    output: str
    classes: list[Any] | None = None
    dtype: str = "float32"


def export_onnx(
    model: Any,
    sample: Any,
    path: str | os.PathLike[str],
    *,
    dtype: Dtype = "float32",
    metadata: Mapping[str, str] | None = None,
    output: str = "auto",
    opset: int | None = None,
) -> OnnxExport:
    """Export *model* to an ONNX file at *path*, check it and stamp its metadata.

    Parameters
    ----------
    model:
        A fitted scikit-learn estimator or pipeline, a ``torch.nn.Module``, an ``onnx.ModelProto``,
        or a path to an existing ``.onnx`` file (checked, stamped and copied to *path*). A
        pytest-mlops adapter (``load_model(...)``) is unwrapped to the object it adapts.
    sample:
        A few rows of the model's input: a DataFrame for pipelines that take named columns (one
        ONNX input per column: strings as ``tensor(string)``, numbers as *dtype*), a 2-D array
        for plain estimators and networks. Only their types and widths matter. ``None`` where
        they need not: an ONNX file, or an estimator fitted on an array (its width is known).
    path:
        The file to write (parent directories are created). Written atomically.
    dtype:
        ``"float32"`` (the default, what most runtimes and GPUs are fastest at) or
        ``"float64"`` (exact agreement with scikit-learn, e.g. for tree ensembles whose
        thresholds flip on float32 casts). See ``docs/export.md``.
    metadata:
        Lineage fields stamped as they are (git commit, data fingerprints, ...). Keys starting
        with ``pytest_mlops.`` that pytest-mlops sets itself are refused.
    output:
        What a network's single output is: ``"logits"`` (default for PyTorch),
        ``"probabilities"`` or ``"values"``; ignored for scikit-learn, whose estimator says.
    opset:
        The ONNX opset to target (default: the converter's choice).

    Returns
    -------
    OnnxExport
        The path, the file's sha256, the input signature and the stamped metadata.

    Raises
    ------
    ModelError
        The model cannot be converted (unsupported estimator, data-dependent control flow), or
        the ONNX model is corrupt.
    DataError
        The sample does not fit the model (a column of an unsupported type, wrong width).
    ConfigError
        ``dtype`` or ``metadata`` is invalid.
    """
    if dtype not in DTYPES:
        raise ConfigError(f"export_onnx: dtype must be {choices_text(DTYPES)}, got {dtype!r}")
    extra = _check_metadata(metadata)
    converted = _convert(_unwrap(model), sample, dtype=dtype, output=output, opset=opset)
    return write(converted, Path(path), extra)


def _unwrap(model: Any) -> Any:
    """Our adapters wrap the user's object; export the object itself."""
    for attr in ("estimator", "module"):
        inner = getattr(model, attr, None)
        if inner is not None and type(model).__module__.startswith("pytest_mlops."):
            return inner
    session = getattr(model, "session", None)
    if session is not None and type(model).__module__.startswith("pytest_mlops."):
        path = getattr(model, "path", None)
        if path is not None:
            return path
        raise ModelError(
            "export_onnx: this ONNX model was loaded from memory; pass the .onnx file's path"
        )
    return model


def _convert(model: Any, sample: Any, *, dtype: Dtype, output: str, opset: int | None) -> Converted:
    mro = [f"{c.__module__}.{c.__qualname__}" for c in type(model).__mro__]
    if isinstance(model, str | os.PathLike):
        return _passthrough(read_onnx(Path(model)))
    if any(m.startswith(("onnx.onnx_ml_pb2.", "onnx.onnx_pb")) for m in mro):
        return _passthrough(model)
    if "torch.nn.modules.module.Module" in mro:
        from pytest_mlops.export.torch import convert_torch

        return convert_torch(model, sample, dtype=dtype, output=output, opset=opset)
    if any(m.startswith("sklearn.") for m in mro) or hasattr(model, "fit"):
        from pytest_mlops.export.sklearn import convert_sklearn

        return convert_sklearn(model, sample, dtype=dtype, opset=opset)
    raise ModelError(
        f"export_onnx cannot export a {type(model).__module__}.{type(model).__name__}: expected a "
        "fitted scikit-learn estimator or pipeline, a torch.nn.Module, an onnx.ModelProto or the "
        "path of an .onnx file"
    )


def read_onnx(path: Path) -> onnx.ModelProto:
    """Load and check an ONNX file; a corrupt or truncated file is a ModelError naming it."""
    import onnx

    if not path.is_file():
        raise ModelError(f"the ONNX file {str(path)!r} does not exist")
    data = path.read_bytes()
    if not data:
        raise ModelError(f"the ONNX file {str(path)!r} is empty")
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as exc:
        raise ModelError(
            f"the ONNX file {str(path)!r} is corrupt or truncated ({len(data)} bytes): "
            f"{type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    _check(proto, f"the ONNX file {str(path)!r}")
    return proto


def _passthrough(proto: onnx.ModelProto) -> Converted:
    import json as _json

    meta = {p.key: p.value for p in proto.metadata_props}
    producer = meta.get(META_PREFIX + "producer") or " ".join(
        x for x in (proto.producer_name, proto.producer_version) if x
    )
    classes = meta.get(META_PREFIX + "classes")
    floats = [spec.dtype for spec in signature_of(proto).inputs if spec.dtype.startswith("float")]
    return Converted(
        proto=proto,
        source="onnx",
        producer=producer or "unknown",
        output=meta.get(META_PREFIX + "output", "auto"),
        classes=_json.loads(classes) if classes else None,
        dtype=meta.get(META_PREFIX + "dtype", floats[0] if floats else "float32"),
    )


def signature_of(proto: onnx.ModelProto) -> Signature:
    """The graph inputs (initializers excluded) as a :class:`Signature`."""
    initializers = {i.name for i in proto.graph.initializer}
    specs = []
    for value in proto.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        shape = tuple(
            (d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
            for d in tensor.shape.dim
        )
        specs.append(TensorSpec(value.name, _ONNX_TYPES.get(tensor.elem_type, "any"), shape))
    return Signature(tuple(specs))


def _check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigError(
                f"export_onnx: metadata must map strings to strings; {key!r} maps to "
                f"{type(value).__name__} {value!r} (serialise it, e.g. with json.dumps)"
            )
        if key in _OWN_KEYS:
            raise ConfigError(
                f"export_onnx: metadata key {key!r} is set by pytest-mlops itself; "
                "name lineage fields otherwise (e.g. 'git_commit', 'data.reference')"
            )
        out[key] = value
    return out


_OWN_KEYS = frozenset(
    META_PREFIX + k
    for k in (
        "version",
        "producer",
        "source",
        "model_sha256",
        "signature",
        "output",
        "classes",
        "dtype",
    )
)


def _check(proto: onnx.ModelProto, where: str) -> None:
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=False)
    except Exception as exc:
        raise ModelError(f"{where} fails onnx.checker: {str(exc).strip()[:400]}") from None


def write(converted: Converted, path: Path, extra: Mapping[str, str]) -> OnnxExport:
    """Stamp *converted* with our metadata and *extra*, check it, write it atomically."""
    from pytest_mlops._version import __version__

    proto = converted.proto
    own = {p.key: p.value for p in proto.metadata_props if not p.key.startswith(META_PREFIX)}
    del proto.metadata_props[:]
    for key, value in own.items():
        proto.metadata_props.add(key=key, value=value)
    model_sha = hashlib.sha256(proto.SerializeToString(deterministic=True)).hexdigest()
    signature = signature_of(proto)
    ours = {
        "version": __version__,
        "producer": converted.producer,
        "source": converted.source,
        "model_sha256": model_sha,
        "signature": json.dumps(signature.to_dict(), sort_keys=True),
        "output": converted.output,
        "dtype": converted.dtype,
    }
    if converted.classes is not None:
        ours["classes"] = json.dumps(converted.classes)
    stamped = {**{META_PREFIX + k: v for k, v in ours.items()}, **dict(extra)}
    for key, value in stamped.items():
        proto.metadata_props.add(key=key, value=value)
    _check(proto, f"the exported model for {str(path)!r}")
    data = proto.SerializeToString(deterministic=True)
    _check_runtime(data, converted, path)
    _atomic_write(path, data)
    return OnnxExport(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        signature=signature,
        metadata={**own, **stamped},
        source=converted.source.split(":")[0],
        output=converted.output,
        dtype=converted.dtype,
    )


def _check_runtime(data: bytes, converted: Converted, path: Path) -> None:
    """A converter can emit a graph onnx.checker accepts but ONNX Runtime refuses: catch it here."""
    try:
        import onnxruntime as ort
    except ImportError:  # the runtime is an optional extra; onnx.checker has run
        return
    try:
        ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:
        hint = ""
        if converted.dtype == "float64":
            hint = "; the converter may not support float64 for this model: try dtype='float32'"
        raise ModelError(
            f"the ONNX model exported for {str(path)!r} from {converted.source} "
            f"({converted.producer}) does not load in ONNX Runtime: "
            f"{str(exc).strip()[:300]}{hint}"
        ) from None


def _atomic_write(path: Path, data: bytes) -> None:
    from pytest_mlops._files import write_atomic

    write_atomic(path, data, what="the ONNX file")
