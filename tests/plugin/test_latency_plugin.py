"""The latency gate through pytest: declared, marker + fixture, GPU skipping, baselines."""

from __future__ import annotations

import json
import textwrap

import pytest

from pytest_mlops._gpu import cuda_available

HEADER = textwrap.dedent(
    """
    [tool.pytest_mlops]
    model = "toy_model:make"
    reference = "train.csv"
    current = "test.csv"
    target = "y"
    report = "build/report.json"

    [tool.pytest_mlops.gates]
    """
)
QUICK = "warmup = 2, min_runs = 20, min_duration_s = 0.05, max_duration_s = 2"


def _config(project: pytest.Pytester, *gates: str) -> None:
    project.makefile(".toml", pyproject=HEADER + "\n".join(gates) + "\n")


def test_declared_latency_gate_passes_and_reports_its_tables(project):
    _config(project, f"latency = {{ batch_sizes = [1, 32], p50_ms = 1000, {QUICK} }}")
    result = project.runpytest("-m", "latency")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*latency*PASSED*p50_ms=*<= 1000*"])
    report = json.loads((project.path / "build" / "report.json").read_text())
    (entry,) = [e for e in report["results"] if e["kind"] == "latency"]
    tables = entry["tables"]
    assert [row["batch_size"] for row in tables["batches"]] == [1, 32]
    assert {row["batch_size"] for row in tables["histogram"]} == {1, 32}


def test_declared_latency_gate_fails_with_the_measured_value(project):
    _config(project, f"latency = {{ p50_ms = 0.000001, {QUICK} }}")
    result = project.runpytest()
    result.assert_outcomes(failed=1, passed=0)
    result.stdout.fnmatch_lines(
        ["*latency gate 'latency' FAILED: p50_ms must be <= 1.000e-06: measured * (batch_size=1*"]
    )
    assert "Traceback" not in result.stdout.str()


def test_marker_and_fixture(project):
    _config(project)
    project.makepyfile(
        test_speed=f"""
        import pytest

        @pytest.mark.latency(batch_size=8, p50_ms=1000, {QUICK.replace(" = ", "=")})
        def test_fast_enough(mlops):
            result = mlops.latency()
            assert result.context["batch_sizes"] == "8"

        @pytest.mark.latency(p50_ms=0.000001, {QUICK.replace(" = ", "=")})
        def test_too_slow(mlops):
            mlops.latency()
        """
    )
    result = project.runpytest("test_speed.py")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*p50_ms must be <= 1.000e-06*"])


@pytest.mark.skipif(cuda_available()[0], reason="checks the behaviour without a GPU")
def test_cuda_gate_skips_without_a_gpu_and_fails_when_required(project):
    _config(project, f'gpu_latency = {{ kind = "latency", device = "cuda", p50_ms = 5, {QUICK} }}')
    result = project.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no CUDA device*"])
    required = project.runpytest("--mlops-require-gpu")
    required.assert_outcomes(failed=1)  # fails before the gate runs
    required.stdout.fnmatch_lines(["*GPU required*"])
    project.runpytest("-m", "gpu").assert_outcomes(skipped=1)


def test_misspelled_device_is_a_usage_error(project):
    _config(project, 'latency = { device = "cdua" }')
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*gate 'latency'*'device' must be*got 'cdua' - did you mean 'cuda'?*"]
    )


def test_baseline_saved_then_compared_and_refused_elsewhere(project):
    _config(project, f"latency = {{ batch_sizes = [1, 4], {QUICK} }}")
    saved = project.runpytest("--mlops-set", "gates.latency.save_baseline=build/latency.json")
    saved.assert_outcomes(passed=1)
    path = project.path / "build" / "latency.json"
    assert [b["batch_size"] for b in json.loads(path.read_text())["batches"]] == [1, 4]

    compare = f'baseline = "build/latency.json", compare_fail = "p50:100000%", {QUICK}'
    _config(project, f"latency = {{ batch_sizes = [1, 4], {compare} }}")
    project.runpytest().assert_outcomes(passed=1)

    data = json.loads(path.read_text())
    data["fingerprint"]["cpu_model"] = "Another CPU"
    path.write_text(json.dumps(data))
    refused = project.runpytest()
    refused.assert_outcomes(failed=1)
    refused.stdout.fnmatch_lines(["*refusing to compare*cpu_model*allow_other_machine*"])
    allowed = project.runpytest("--mlops-set", "gates.latency.allow_other_machine=true")
    allowed.assert_outcomes(passed=1)
