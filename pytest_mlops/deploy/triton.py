"""A Triton Inference Server model repository for a version.

It is GPU serving for teams that run Triton;
:func:`pytest_mlops.deploy.k8s.render_inference_service` writes the KServe InferenceService
that serves it.

The repository::

    triton/
      NAME/
        config.pbtxt      the ONNX Runtime backend, inputs and outputs from the model's
                          signature, dynamic batching, an instance group per device
        VERSION/model.onnx

``config.pbtxt`` is written from the ONNX graph: a model whose every input and output has a free
first dimension batches (``max_batch_size`` = ``max_batch_rows``, dimensions after the first; a
tensor of the batch dimension only is ``dims: [1]`` reshaped to ``[]``, as Triton wants it);
any other model gets ``max_batch_size: 0`` and its full shapes. :func:`check_triton_config` parses
it with Triton's own ``model_config`` protobuf (from the ``tritonclient`` package).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops._files import atomic_file, write_atomic
from pytest_mlops.errors import DeployError

if TYPE_CHECKING:
    from pytest_mlops.deploy.settings import DeploySettings

__all__ = ["check_triton_config", "triton_config", "write_repository"]

# ONNX TensorProto element types -> Triton data types
_TRITON_TYPES = {
    1: "TYPE_FP32",
    2: "TYPE_UINT8",
    3: "TYPE_INT8",
    4: "TYPE_UINT16",
    5: "TYPE_INT16",
    6: "TYPE_INT32",
    7: "TYPE_INT64",
    8: "TYPE_STRING",
    9: "TYPE_BOOL",
    10: "TYPE_FP16",
    11: "TYPE_FP64",
    12: "TYPE_UINT32",
    13: "TYPE_UINT64",
    16: "TYPE_BF16",
}


def _tensors(
    model: Path,
) -> tuple[list[tuple[str, str, list[int]]], list[tuple[str, str, list[int]]]]:
    """``(name, Triton type, dims)`` of the graph's inputs and outputs (-1: a free dimension)."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    weights = {w.name for w in graph.initializer}

    def read(value: Any) -> tuple[str, str, list[int]]:
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type" or value.type.tensor_type.elem_type not in _TRITON_TYPES:
            raise DeployError(
                f"{model}: {value.name!r} is a {kind or 'typeless value'}, not a tensor Triton's "
                "ONNX Runtime backend can serve (export classifiers without ZipMap)"
            )
        tensor = value.type.tensor_type
        dims = [
            d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1
            for d in tensor.shape.dim
        ]
        return value.name, _TRITON_TYPES[tensor.elem_type], dims

    inputs = [read(v) for v in graph.input if v.name not in weights]
    return inputs, [read(v) for v in graph.output]


def _tensor_text(name: str, kind: str, dims: list[int], batched: bool) -> str:
    shape = dims[1:] if batched else dims
    reshape = ""
    if not shape:  # the batch dimension only: Triton wants dims [1], reshaped to a scalar
        shape, reshape = [1], " reshape: { shape: [ ] }"
    return f"  {{ name: {json.dumps(name)} data_type: {kind} dims: [ {', '.join(map(str, shape))} ]{reshape} }}"


def triton_config(model: Path, name: str, version: int, settings: DeploySettings) -> str:
    """The ``config.pbtxt`` of *model* (an ONNX file) served by Triton as *name*."""
    inputs, outputs = _tensors(model)
    batched = all(dims and dims[0] == -1 for _, _, dims in (*inputs, *outputs))
    kind = "KIND_GPU" if settings.gpu else "KIND_CPU"
    lines = [
        f"# {name} version {version}, written by pytest-mlops from the model's ONNX signature",
        f"name: {json.dumps(name)}",
        'backend: "onnxruntime"',
        f"max_batch_size: {settings.max_batch_rows if batched else 0}",
        f"version_policy: {{ specific: {{ versions: [ {version} ] }} }}",
        "input [",
        ",\n".join(_tensor_text(n, t, d, batched) for n, t, d in inputs),
        "]",
        "output [",
        ",\n".join(_tensor_text(n, t, d, batched) for n, t, d in outputs),
        "]",
        # no "gpus": Triton places `count` instances on every GPU it sees (one group per device)
        f"instance_group [ {{ kind: {kind} count: 1 }} ]",
    ]
    if batched:
        lines.append("dynamic_batching { max_queue_delay_microseconds: 100 }")
    return "\n".join(lines) + "\n"


def check_triton_config(text: str, where: str = "config.pbtxt") -> Any:
    """Parse *text* with Triton's ``ModelConfig`` protobuf; return the message.

    Raises
    ------
    DeployError
        Naming *where* and what Triton's schema refused (an unknown field, a wrong enum value, a
        malformed value), or what a config Triton loads must have (a backend, typed tensors with
        dimensions).
    """
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        raise DeployError(
            f"checking {where} needs Triton's model_config protobuf: pip install "
            f"'tritonclient[grpc]' ({exc})"
        ) from None
    try:
        config = text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise DeployError(f"{where} is not a valid Triton model configuration: {exc}") from None
    problems = [
        f"{t.name or '?'} has no data type or dims"
        for t in (*config.input, *config.output)
        if not t.data_type or not (t.dims or t.HasField("reshape"))
    ]
    if not config.backend and not config.platform:
        problems.append("no backend")
    if problems:
        raise DeployError(f"{where}: Triton would refuse it: {'; '.join(problems)}")
    return config


def write_repository(
    model: Path, out: Path, name: str, version: int, settings: DeploySettings
) -> Path:
    """Write the model repository under *out* (``out/NAME/config.pbtxt``, ``out/NAME/VERSION/``).

    Each file appears whole or not at all (the model first, then the configuration that names
    it); an unwritable place is an OutputError naming it.
    """
    folder = out / name
    text = triton_config(model, name, version, settings)
    with atomic_file(folder / str(version) / "model.onnx", what="the Triton model") as tmp:
        shutil.copyfile(model, tmp)
    return write_atomic(folder / "config.pbtxt", text, what="the Triton model configuration")
