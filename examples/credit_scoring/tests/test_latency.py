"""Code-first latency tests: the marker and the fixture (the declared gates are in pyproject.toml)."""

from __future__ import annotations

import pytest

from pytest_mlops import measure_latency


@pytest.mark.latency(batch_size=32, p50_ms=300, min_runs=10, min_duration_s=0.2)
def test_batch_of_32_on_cpu(mlops):
    # Gates on the median by default: bounds are generous because CI machines are shared.
    mlops.latency()


def test_bigger_batches_have_more_throughput(mlops_model, mlops_current):
    report = measure_latency(
        mlops_model,
        mlops_current.X,
        batch_sizes=[1, 64],
        min_runs=10,
        min_duration_s=0.2,
        stop_percentile=None,
    )
    assert report[64].throughput > report[1].throughput
