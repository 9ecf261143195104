"""The per-value passes of :mod:`.exact`: placing values on the fine grid, counting, summing.

Two implementations of the same passes, giving the same bins and counts (tests hold them to it,
boundary values included):

- compiled with numba when it is installed (``pip install pytest-mlops[fast]``, loops in
  :mod:`.kernel_loops`): one loop per pass over the column, nothing allocated per value, and
  the walk of the undecided bins;
- numpy otherwise: a handful of vectorised passes, keeping the shifted values and their bins
  between the two passes (the walk is then :mod:`.exact`'s own).

A value ``v`` goes to bin ``clip(floor((v - lo) * inv + 1), 0, bins - 1)``, computed in this order
in both, without fused multiply-add: the statistics above do not depend on which one ran beyond
the order of a floating-point sum.

Settings (environment): ``PYTEST_MLOPS_KERNEL`` = ``auto`` (the default: compiled where numba
is installed) or ``numpy``; ``PYTEST_MLOPS_THREADS`` = the most threads a block of columns may
use (a positive integer; the default is one per CPU the process may use).

numba is imported and the loops compiled (or read from numba's cache) on the first column large
enough to repay it (:data:`COMPILED_FROM`), not on import: the plugin's start-up and small
data do not pay for it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_mlops.errors import ConfigError

__all__ = [
    "COMPILED_FROM",
    "Binned",
    "bin_values",
    "compiled",
    "for_size",
    "signed_sum",
    "threads_for",
]

#: values per column (both samples) from which the compiled passes run, where installed
COMPILED_FROM = 200_000


@dataclass
class Binned:
    """One sample on the fine grid.

    ``values`` are the finite values as given; ``counts`` per bin; ``total`` and ``total_sq`` the
    sums of ``v - lo`` and its square; ``low`` and ``high`` the smallest and largest value;
    ``kernel`` the compiled passes that counted them, or ``None``. The numpy passes keep
    ``shifted`` and ``index`` for the second pass; the compiled ones recompute them.
    """

    values: np.ndarray
    lo: float
    inv: float
    counts: np.ndarray
    total: float
    total_sq: float
    low: float
    high: float
    kernel: Any | None = None
    shifted: np.ndarray | None = None
    index: np.ndarray | None = None


@functools.cache
def compiled() -> Any | None:
    """The compiled passes, or ``None`` where numba is missing or ``PYTEST_MLOPS_KERNEL=numpy``."""
    setting = os.environ.get("PYTEST_MLOPS_KERNEL", "").strip().lower()
    if setting not in ("", "auto", "numpy"):
        raise ConfigError(
            f"PYTEST_MLOPS_KERNEL={setting!r}: expected 'auto' (compiled passes where numba is "
            "installed) or 'numpy'"
        )
    if setting == "numpy":
        return None
    try:
        import pytest_mlops.checks.drift.kernel_loops as kernel_loops
    except ImportError:  # numba is not installed
        return None
    return kernel_loops


def for_size(n_values: int) -> Any | None:
    """The compiled passes for a column of *n_values* values (both samples), if worth loading.

    Loading numba costs about half a second once per process (what the compiled passes save on
    some 40 million values): below ``COMPILED_FROM`` values in a column (100,000 rows on each
    side), where a column takes milliseconds either way, the numpy passes run.
    """
    return compiled() if n_values >= COMPILED_FROM else None


def threads_for(k: int, n_values: int) -> int:
    """Threads for a block of *k* columns of *n_values* values each.

    One per CPU this process may use (``PYTEST_MLOPS_THREADS`` caps it) where the compiled passes
    run, else 1. Each column is computed by one thread, alone: the results do not depend on the
    count.
    """
    if k < 2 or for_size(n_values) is None:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    cap = os.environ.get("PYTEST_MLOPS_THREADS", "").strip()
    if cap:
        if not cap.isdigit() or int(cap) < 1:
            raise ConfigError(f"PYTEST_MLOPS_THREADS={cap!r}: expected a positive integer")
        cpus = min(cpus, int(cap))
    return max(1, min(k, cpus))


def bin_values(
    values: np.ndarray, lo: float, inv: float, bins: int, kernel: Any | None = None
) -> Binned:
    """Counts per bin of *values* (finite, read only) and the sums of the shifted values.

    *kernel* is :func:`compiled`'s (or ``None``: the numpy passes); :func:`signed_sum` and
    :func:`.exact` use the same one for this sample.
    """
    if kernel is not None:
        counts, total, total_sq, low, high = kernel.count(values, float(lo), float(inv), int(bins))
        return Binned(values, lo, inv, counts, float(total), float(total_sq), low, high, kernel)
    shifted = np.subtract(values, lo)
    position = np.multiply(shifted, inv)
    position += 1.0
    np.clip(position, 0, bins - 1, out=position)
    index = position.astype(np.intp)
    del position
    counts = np.bincount(index, minlength=bins)
    total = float(np.add.reduce(shifted))
    total_sq = float(np.einsum("i,i->", shifted, shifted))
    low, high = float(values.min()), float(values.max())
    return Binned(values, lo, inv, counts, total, total_sq, low, high, shifted=shifted, index=index)


def signed_sum(side: Binned, sign: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``sum(sign[bin] * (v - lo))`` over the values whose bin's sign is not 0; and the others.

    Returns the sum, then the bins and shifted values of the values in bins where *sign* is 0
    (in the order of the sample).
    """
    n_pick = int(side.counts[sign == 0.0].sum())
    kernel = side.kernel
    if kernel is not None:
        dot, keys, picked = kernel.signed(
            side.values, float(side.lo), float(side.inv), sign, n_pick
        )
        return float(dot), keys, picked
    if side.shifted is None or side.index is None:
        raise ValueError("signed_sum needs the numpy passes' shifted values and bins")
    weight = sign[side.index]
    dot = float(np.einsum("i,i->", weight, side.shifted))
    if not n_pick:
        return dot, np.empty(0, np.intp), np.empty(0)
    pick = np.flatnonzero(weight == 0.0)
    return dot, side.index[pick], side.shifted[pick]
