"""Export models to ONNX and verify that the exported model decides like the original.

:func:`export_onnx` converts scikit-learn pipelines (skl2onnx) and PyTorch modules
(``torch.onnx.export``, dynamo exporter), checks the result with ``onnx.checker`` and stamps its
metadata; :func:`check_parity` compares the native model with the ONNX one at several batch sizes
and on every execution provider available.
"""

from __future__ import annotations

from pytest_mlops.export.base import OnnxExport, export_onnx
from pytest_mlops.export.parity import Tolerances, check_parity, default_tolerances

__all__ = ["OnnxExport", "Tolerances", "check_parity", "default_tolerances", "export_onnx"]
