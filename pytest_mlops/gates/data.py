"""Data gates: ``integrity``, ``privacy`` and ``properties`` (marker ``data``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_mlops.errors import ConfigError
from pytest_mlops.gates.kind import GateKind
from pytest_mlops.gates.schema import DATASET_CHOICES, combine, datasets_for
from pytest_mlops.params import Param
from pytest_mlops.results import CheckResult

if TYPE_CHECKING:
    from pytest_mlops.project import GateContext


def _share(name: str, help: str, default: float) -> Param:
    """A setting that is a share of rows, in [0, 1]."""
    return Param(name, "number", help, default, minimum=0.0, maximum=1.0)


def run_integrity(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    """Run an integrity gate on the dataset (and its overlap with the reference)."""
    from pytest_mlops.data.integrity import check_integrity

    which = params["dataset"]
    reference = None
    if params["overlap"] and which != "reference" and ctx.settings.reference is not None:
        reference = ctx.dataset("reference")
    return check_integrity(
        ctx.dataset(which),
        reference=reference,
        max_duplicate_share=params["max_duplicate_share"],
        max_constant_columns=params["max_constant_columns"],
        max_conflicting_share=params["max_conflicting_share"],
        min_class_share=params["min_class_share"],
        max_overlap_share=params["max_overlap_share"],
        max_feature_power=params["max_feature_power"],
        seed=ctx.seed,
        name=params["name"],
    )


def run_privacy(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    """Run a privacy gate on each of the gate's datasets, combined into one result."""
    from pytest_mlops.data.privacy import check_privacy

    results = [
        check_privacy(
            ctx.dataset(which),
            columns=params["columns"],
            identifiers=params["identifiers"],
            max_identifier_rows=params["max_identifier_rows"],
            quasi_identifiers=params["quasi_identifiers"],
            k=params["k"],
            max_at_risk_share=params["max_at_risk_share"],
            name=params["name"],
        )
        for which in datasets_for(ctx, params["dataset"])
    ]
    return combine(results, "identifiers")


def run_properties_gate(ctx: GateContext, params: Mapping[str, Any]) -> CheckResult:
    """Run a properties gate: model properties on inputs generated from a schema."""
    from pytest_mlops.checks.properties import run_properties
    from pytest_mlops.data.schema import infer_schema, load_schema

    if params["path"] is not None:
        schema = load_schema(ctx.config.resolve_path(params["path"]))
    elif ctx.settings.reference is not None:
        schema = infer_schema(ctx.dataset("reference"))
    else:
        raise ConfigError(
            f"gate {params['name']!r}: set 'path' to a schema file (or configure 'reference' "
            "to infer one) so inputs can be generated"
        )
    return run_properties(
        ctx.model,
        schema,
        properties=params["checks"],
        increasing=params["increasing"] or (),
        decreasing=params["decreasing"] or (),
        irrelevant=params["irrelevant"] or (),
        max_examples=params["max_examples"],
        max_rows=params["max_rows"],
        atol=params["atol"],
        seed=ctx.seed,
        name=params["name"],
    )


INTEGRITY = GateKind(
    name="integrity",
    marker="data",
    help="no duplicates, constant columns, label conflicts, rare class or train/test and "
    "target leakage",
    params=(
        Param(
            "dataset",
            "str",
            "which data to check",
            default="current",
            choices=("current", "reference"),
        ),
        Param(
            "overlap",
            "bool",
            "count rows of the data also found in the reference (train/test leakage)",
            default=True,
        ),
        _share("max_duplicate_share", "most rows repeating another", 0.05),
        Param(
            "max_constant_columns",
            "int",
            "most columns holding a single value",
            default=0,
            minimum=0,
        ),
        _share("max_conflicting_share", "most rows whose features repeat with another label", 0.01),
        _share("min_class_share", "least share of the rarest class", 0.01),
        _share("max_overlap_share", "most rows of the data also in the reference", 0.01),
        _share(
            "max_feature_power",
            "highest out-of-fold predictive power of one feature alone (1 = leaks the target)",
            0.9,
        ),
    ),
    run=run_integrity,
)

PRIVACY = GateKind(
    name="privacy",
    marker="data",
    help="no direct identifiers (e-mail, phone, SSN, card, IP) and k-anonymity over "
    "quasi-identifiers",
    params=(
        Param("dataset", "str", "which data to check", default="both", choices=DATASET_CHOICES),
        Param("columns", "list[str]", "columns to scan for identifiers (default: text columns)"),
        Param(
            "identifiers",
            "list[str]",
            "kinds of identifier to look for",
            default=("email", "phone", "ssn", "card", "ipv4", "ipv6"),
            choices=("email", "phone", "ssn", "card", "ipv4", "ipv6"),
        ),
        Param(
            "max_identifier_rows",
            "int",
            "cells with an identifier tolerated",
            default=0,
            minimum=0,
        ),
        Param(
            "quasi_identifiers",
            "list[str]",
            "columns that together could single a person out (age, sex, ZIP code...)",
            default=(),
        ),
        Param("k", "int", "least rows sharing any quasi-identifier values", 5, minimum=1),
        _share(
            "max_at_risk_share",
            "share of rows allowed in classes under k (suppressed on release)",
            0.0,
        ),
    ),
    run=run_privacy,
)

PROPERTIES = GateKind(
    name="properties",
    marker="data",
    help="model outputs keep their properties on inputs Hypothesis generates from a schema",
    params=(
        Param(
            "path",
            "str",
            "schema file to generate inputs from (default: inferred from the reference)",
        ),
        Param(
            "checks",
            "list[str]",
            "properties to test",
            default=("outputs_finite", "probabilities", "row_order", "batch"),
            choices=("outputs_finite", "probabilities", "row_order", "batch"),
        ),
        Param("increasing", "list[str]", "features the score must not decrease in"),
        Param("decreasing", "list[str]", "features the score must not increase in"),
        Param("irrelevant", "list[str]", "features whose values must not change the outputs"),
        Param("max_examples", "int", "frames Hypothesis generates", 25, minimum=1),
        Param("max_rows", "int", "largest generated frame", 20, minimum=1),
        Param("atol", "number", "tolerance on output differences", 1e-6, minimum=0.0),
    ),
    run=run_properties_gate,
)

KINDS = (INTEGRITY, PRIVACY, PROPERTIES)
