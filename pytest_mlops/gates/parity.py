"""``parity`` gate: the model exported to ONNX decides like the model itself.

The gate exports the configured model (to ``path``, or a temporary file) and runs
:func:`~pytest_mlops.export.parity.check_parity` on the configured data. Where ``model`` already is
an ``.onnx`` file, set ``native`` to the code that builds the original and the gate compares the
two without exporting.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops.errors import ConfigError
from pytest_mlops.gates.kind import GateKind
from pytest_mlops.params import Param
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    from pytest_mlops.project import GateContext

SAMPLE_ROWS = 16


def run_parity(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    """Run a parity gate: export the model to ONNX (if needed) and check their parity."""
    from pytest_mlops.export.parity import check_parity
    from pytest_mlops.models.onnx import OnnxModel

    data = ctx.dataset(params["dataset"])
    if params["max_rows"] is not None and data.n_rows > params["max_rows"]:
        data = data.subset(data.frame.index < params["max_rows"], name=data.name)
    configured = ctx.model
    if isinstance(configured, OnnxModel):
        if params["native"] is None:
            raise ConfigError(
                f"gate {params['name']!r}: the configured model is already ONNX; set 'native' to "
                "'package.module:factory' (the model it was exported from) to check their parity"
            )
        native, onnx_model = ctx.load_model(params["native"]), configured
        return _check(check_parity, native, onnx_model, data, params, ctx)
    native = configured if params["native"] is None else ctx.load_model(params["native"])
    with tempfile.TemporaryDirectory(prefix="pytest-mlops-parity-") as tmp:
        target = (
            ctx.config.resolve_path(params["path"]) if params["path"] else Path(tmp) / "model.onnx"
        )
        exported = _export(native, data.X.head(SAMPLE_ROWS), target, params)
        return _check(check_parity, native, exported, data, params, ctx)


def _export(native: Any, sample: Any, target: Path, params: Mapping[str, Any]) -> Any:
    from pytest_mlops.export import export_onnx

    return export_onnx(native, sample, target, dtype=params["dtype"])


def _check(
    check: Any,
    native: Any,
    onnx_model: Any,
    data: Any,
    params: Mapping[str, Any],
    ctx: GateContext,
) -> CheckResult:
    schema = ctx.config.resolve_path(params["schema"]) if params["schema"] else None
    sizes = tuple(params["batch_sizes"])
    if not sizes or any(b != int(b) or b < 1 for b in sizes):
        raise ConfigError(
            f"gate {params['name']!r}: 'batch_sizes' must be whole numbers >= 1, got {list(sizes)}"
        )
    result: CheckResult = check(
        native,
        onnx_model,
        data,
        batch_sizes=tuple(int(b) for b in sizes),
        providers=params["providers"],
        rtol=params["rtol"],
        atol=params["atol"],
        max_mismatch_share=params["max_mismatch_share"],
        min_label_agreement=params["min_label_agreement"],
        max_metric_delta=params["max_metric_delta"],
        metric=params["metric"],
        profile=params["profile"],
        random_rows=params["random_rows"],
        schema=schema,
        seed=ctx.seed,
        name=params["name"],
    )
    return result


PARITY = GateKind(
    name="parity",
    marker="accuracy",
    help="the model exported to ONNX gives the same outputs and decisions as the original",
    params=(
        Param(
            "dataset",
            "str",
            "which data to compare on",
            default="current",
            choices=("current", "reference"),
        ),
        Param(
            "dtype",
            "str",
            "float type of the export",
            default="float32",
            choices=("float32", "float64"),
        ),
        Param("path", "str", "where to write the export (default: a temporary file)"),
        Param("native", "str", "the original model when 'model' is an .onnx file"),
        Param(
            "batch_sizes",
            "list[number]",
            "batch sizes the ONNX model runs at",
            default=(1, 37, 1024),
        ),
        Param("providers", "list[str]", "ONNX Runtime execution providers (default: all present)"),
        Param("rtol", "number", "relative tolerance per output element", minimum=0),
        Param("atol", "number", "absolute tolerance per output element", minimum=0),
        Param(
            "max_mismatch_share",
            "number",
            "share of rows allowed out of tolerance",
            minimum=0,
            maximum=1,
        ),
        Param(
            "min_label_agreement",
            "number",
            "share of rows whose label must agree",
            minimum=0,
            maximum=1,
        ),
        Param("max_metric_delta", "number", "largest |metric(onnx) - metric(native)|", minimum=0),
        Param("metric", "str", "metric compared ('auto', 'none' or a metric name)", default="auto"),
        Param(
            "profile",
            "str",
            "tolerance profile (default: detected)",
            choices=("network", "sklearn", "trees"),
        ),
        Param(
            "random_rows",
            "int",
            "random batches of valid rows to check (Hypothesis)",
            default=50,
            minimum=0,
        ),
        Param("schema", "str", "schema file the random rows satisfy (default: inferred)"),
        Param("max_rows", "int", "compare on at most this many rows", minimum=1),
    ),
    run=run_parity,
)

KINDS = (PARITY,)
