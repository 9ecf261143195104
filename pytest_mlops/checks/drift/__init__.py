"""The drift engine: whether the current data is still like the reference.

Vocabulary
----------
column test
    Per column, a two-sample test with a p-value (Kolmogorov–Smirnov for numeric columns,
    chi-square for categorical ones) and an effect size (normalised 1-Wasserstein, PSI or KS D
    for numeric columns; Jensen–Shannon distance or PSI for categorical ones).
correction
    p-values are adjusted across columns (Benjamini–Hochberg or Bonferroni) before they are
    compared with ``alpha``.
dataset verdict
    The share of drifted columns held to ``max_drifted_share``.
profile
    A :class:`DriftProfile`: the reference summarised once (no raw rows), saved as ``.npz``,
    compared with current data that may be read chunk by chunk.
multivariate tests
    :func:`check_multivariate_drift`: MMD with a permutation test, or a domain classifier's
    cross-validated AUC.

Nothing heavy is imported until a check runs.
"""

from __future__ import annotations

from pytest_mlops.checks.drift.check import check_drift
from pytest_mlops.checks.drift.multivariate import check_multivariate_drift
from pytest_mlops.checks.drift.profile import DriftProfile
from pytest_mlops.checks.drift.verdict import DEFAULT_THRESHOLDS, DriftSettings

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DriftProfile",
    "DriftSettings",
    "check_drift",
    "check_multivariate_drift",
]
