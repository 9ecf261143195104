"""PyTorch modules to ONNX through ``torch.onnx.export`` (the dynamo exporter).

The module is traced in eval mode on the sample with a dynamic batch axis (the graph's input is
``input: [batch, features]``, its output ``output``), and every weight is embedded in the one
``.onnx`` file: no ``.onnx.data`` next to it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import re
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from pytest_mlops.errors import ConfigError, DataError, ModelError, choices_text
from pytest_mlops.export.types import Converted, Dtype

__all__ = ["convert_torch"]

OUTPUTS = ("logits", "probabilities", "values", "labels")


def convert_torch(
    module: Any, sample: Any, *, dtype: Dtype, output: str, opset: int | None
) -> Converted:
    """Export a ``torch.nn.Module`` taking one ``[batch, features]`` tensor."""
    import torch

    output = "logits" if output == "auto" else output
    if output not in OUTPUTS:
        raise ConfigError(
            f"export_onnx: output must be {choices_text(OUTPUTS)} for a PyTorch model, "
            f"got {output!r}"
        )
    torch_dtype = torch.float32 if dtype == "float32" else torch.float64
    x = torch.from_numpy(_sample_array(sample, dtype, type(module).__name__))
    if x.shape[0] < 2:  # a batch of one would be specialised away: the axis must stay dynamic
        x = x.repeat(2, *([1] * (x.ndim - 1)))
    net = module
    params = list(module.parameters())
    if any(p.dtype != torch_dtype for p in params if p.is_floating_point()):
        net = copy.deepcopy(module).to(torch_dtype)
    was_training = net.training
    net.eval()
    try:
        with _quiet():
            program = torch.onnx.export(
                net,
                (x,),
                None,
                dynamo=True,
                input_names=["input"],
                output_names=["output"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                external_data=False,
                opset_version=opset,
                verbose=False,
            )
        if program is None:  # pragma: no cover - only the legacy exporter returns None
            raise RuntimeError("the exporter returned no program")
        proto = program.model_proto
    except Exception as exc:
        raise ModelError(_export_failure(module, exc)) from None
    finally:
        net.train(was_training)
    import onnxscript

    return Converted(
        proto=proto,
        source=f"pytorch:{type(module).__name__}",
        producer=f"torch {torch.__version__.split('+')[0]} (onnxscript {onnxscript.__version__})",
        output=output,
        classes=None,
        dtype=dtype,
    )


def _sample_array(sample: Any, dtype: str, name: str) -> Any:
    """The sample as a C-contiguous float array, or a DataError saying what was wrong."""
    if hasattr(sample, "detach") and hasattr(sample, "cpu"):
        sample = sample.detach().cpu().numpy()
    if isinstance(sample, pd.DataFrame):
        bad = [
            str(c)
            for c in sample.columns
            if not (
                pd.api.types.is_numeric_dtype(sample[c]) or pd.api.types.is_bool_dtype(sample[c])
            )
        ]
        if bad:
            raise DataError(
                f"the sample for the PyTorch model {name} has non-numeric columns {bad[:10]}: "
                "a network takes one float tensor; encode them first"
            )
        sample = sample.to_numpy()
    array = np.asarray(sample)
    if array.dtype.kind not in "biuf":
        raise DataError(
            f"the sample for the PyTorch model {name} has dtype {array.dtype}: expected a "
            f"numeric array of shape (rows, features), converted to {dtype}"
        )
    if array.ndim < 2 or array.shape[0] == 0:
        raise DataError(
            f"the sample for the PyTorch model {name} has shape {array.shape}: expected "
            "(rows, features) with at least one row"
        )
    return np.ascontiguousarray(array, dtype=dtype)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter prints graphs and warnings; keep them out of the user's terminal."""
    loggers = [
        logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx")
    ]
    levels = [lg.level for lg in loggers]
    sink = io.StringIO()
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _export_failure(module: Any, exc: Exception) -> str:
    """One readable paragraph out of the exporter's long report."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    name = type(module).__name__
    summary = re.search(r"## Exception summary\s+(.+?)(?:\n\n|$)", text, re.S)
    cause = (summary.group(1) if summary else text.strip().splitlines()[0]).strip()
    cause = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", cause)
    where = re.search(r'File "([^"]+)", line (\d+), in (\w+)\n\s+(.+)', text)
    location = (
        f" at {where.group(1)}:{where.group(2)} in {where.group(3)}: `{where.group(4).strip()}`"
        if where
        else ""
    )
    hint = ""
    if "data-dependent" in cause or "GuardOnDataDependent" in cause:
        hint = (
            "; the forward pass branches on tensor values (data-dependent control flow), which "
            "an exported graph cannot do: use torch.where or torch.cond instead of Python if/while"
        )
    return (
        f"torch.onnx.export (dynamo) cannot export the PyTorch model {name}{location}: "
        f"{cause[:400]}{hint}"
    )
