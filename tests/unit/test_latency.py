"""Latency measurement and gating: statistics against numpy/scipy, real runtimes, bad input."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import numpy as np
import pytest
from scipy.stats import binom

import pytest_mlops
from pytest_mlops.checks.latency import (
    Fingerprint,
    LatencyReport,
    LatencyStats,
    check_latency,
    measure_latency,
    parse_compare_fail,
)
from pytest_mlops.checks.latency._stats import (
    histogram,
    min_runs_for_bound,
    upper_bound_index,
)
from pytest_mlops.errors import CheckError, DataError, ModelError, ReportError

FAST: dict[str, Any] = {
    "warmup": 2,
    "min_runs": 30,
    "min_duration_s": 0.02,
    "max_duration_s": 2.0,
    "stop_percentile": None,
}
ROW_KEYS = {
    "batch_size",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "p999_ms",
    "mean_ms",
    "std_ms",
    "throughput",
    "n",
}


def _cuda() -> bool:
    from pytest_mlops._gpu import cuda_available

    return cuda_available()[0]


def tiny_onnx(n_features: int = 4):
    """x[None, 4] @ W -> Relu: a model that costs microseconds."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).normal(size=(n_features, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [numpy_helper.from_array(weights, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32)


def _report(
    samples_ms, *, batch_size=1, duration_s=1.0, fingerprint=None, scenario="single_stream"
):
    stats = LatencyStats.from_samples(
        samples_ms, batch_size=batch_size, duration_s=duration_s, scenario=scenario
    )
    return LatencyReport(
        batches=(stats,),
        fingerprint=fingerprint or Fingerprint(device="cpu", backend="onnxruntime"),
        model="m",
        scenario=scenario,
        timer="perf_counter_ns",
    )


# --- statistics ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 10, 28, 29, 100, 298, 299, 500, 2994, 2995, 10_000])
@pytest.mark.parametrize("pct", [50.0, 90.0, 99.0, 99.9])
def test_upper_bound_index_is_the_binomial_order_statistic(n, pct):
    q, confidence = pct / 100, 0.95
    cdf = binom.cdf(np.arange(n), n, q)
    reaching = np.flatnonzero(cdf >= confidence)
    expected = int(reaching[0]) if reaching.size else None
    assert upper_bound_index(n, pct, confidence) == expected
    assert (expected is not None) == (n >= min_runs_for_bound(pct, confidence))


def test_min_runs_for_bound_known_values():
    assert min_runs_for_bound(99.0, 0.95) == 299
    assert min_runs_for_bound(99.9, 0.95) == 2995
    assert min_runs_for_bound(90.0, 0.95) == 29


def test_upper_bound_covers_the_true_percentile_at_its_confidence():
    rng = np.random.default_rng(0)
    trials, n = 4000, 400
    runs = np.sort(rng.exponential(size=(trials, n)), axis=1)
    true_p99 = -np.log(0.01)
    index = upper_bound_index(n, 99.0, 0.95)
    coverage = float(np.mean(runs[:, index] >= true_p99))
    exact = binom.cdf(index, n, 0.99)
    assert coverage >= 0.95 - 3 * np.sqrt(0.05 * 0.95 / trials)
    assert abs(coverage - exact) < 4 * np.sqrt(exact * (1 - exact) / trials)


def test_stats_match_numpy():
    samples = np.random.default_rng(3).lognormal(size=5000)
    stats = LatencyStats.from_samples(samples, batch_size=8, duration_s=2.5)
    expected = np.percentile(samples, [50, 90, 95, 99, 99.9])
    got = [stats.p50_ms, stats.p90_ms, stats.p95_ms, stats.p99_ms, stats.p999_ms]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert stats.mean_ms == pytest.approx(samples.mean(), rel=1e-12)
    assert stats.std_ms == pytest.approx(samples.std(ddof=1), rel=1e-12)
    assert stats.throughput == pytest.approx(8 * 5000 / 2.5)
    assert stats.n == 5000
    assert set(stats.row()) == ROW_KEYS
    assert stats.upper_ms["p99"] == np.sort(samples)[upper_bound_index(5000, 99.0, 0.95)]


def test_histogram_counts_every_run_in_few_bins():
    samples = np.random.default_rng(4).lognormal(size=1000)
    bins = histogram(samples, 12)
    assert len(bins) == 12
    assert sum(c for _, c in bins) == 1000
    assert bins[0][0] == pytest.approx(samples.min())


# --- measuring on real runtimes ---------------------------------------------------------------


def test_onnx_cpu_measures_each_batch_size(rows):
    report = measure_latency(tiny_onnx(), rows, batch_sizes=[1, 16], threads=1, **FAST)
    assert report.batch_sizes == [1, 16]
    for stats in report:
        assert stats.n >= FAST["min_runs"]
        assert stats.duration_s >= FAST["min_duration_s"]
        assert stats.p50_ms <= stats.p90_ms <= stats.p95_ms <= stats.p99_ms <= stats.p999_ms
        assert stats.throughput == pytest.approx(stats.batch_size * stats.n / stats.duration_s)
        assert stats.samples_ms is not None
        assert len(stats.samples_ms) == stats.n
    fp = report.fingerprint
    assert (fp.device, fp.backend, fp.threads) == ("cpu", "onnxruntime", 1)
    assert fp.providers == ("CPUExecutionProvider",)
    assert fp.versions["onnxruntime"]
    assert fp.cpu_model
    assert report.timer == "perf_counter_ns"
    assert [set(r) for r in report.rows()] == [ROW_KEYS, ROW_KEYS]


def test_onnx_session_threads_are_pinned(tmp_path, rows):
    import onnx
    import onnxruntime as ort

    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_onnx(), str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # a session the harness cannot rebuild keeps its own threads ...
    assert measure_latency(session, rows, **FAST).fingerprint.threads is None
    # ... a file is rebuilt with the threads asked for
    assert measure_latency(str(path), rows, threads=2, **FAST).fingerprint.threads == 2
    with pytest.raises(CheckError, match=r"pass the \.onnx path"):
        measure_latency(session, rows, threads=1, **FAST)


def test_max_duration_and_max_runs_bound_the_measurement():
    def slow(X):
        time.sleep(0.002)
        return np.zeros(len(X))

    report = measure_latency(
        slow, np.zeros((4, 2)), warmup=0, min_runs=10_000, min_duration_s=0.0, max_duration_s=0.1
    )
    assert report[1].n < 10_000
    assert 0.1 <= report[1].duration_s < 0.5
    capped = measure_latency(
        lambda X: X, np.zeros((4, 2)), warmup=0, min_runs=1, max_runs=37, max_duration_s=5
    )
    assert capped[1].n == 37


def test_tail_stopping_rule_runs_until_the_p99_bound_is_known():
    fast = lambda X: X.sum()  # noqa: E731
    kwargs: dict[str, Any] = {
        "warmup": 0,
        "min_runs": 10,
        "min_duration_s": 0.0,
        "max_duration_s": 5.0,
    }
    only_minimums = measure_latency(fast, np.ones((2, 2)), stop_percentile=None, **kwargs)
    assert only_minimums[1].n < 299
    tail = measure_latency(fast, np.ones((2, 2)), stop_percentile=99.0, tolerance=10.0, **kwargs)
    assert tail[1].n >= 299
    assert tail[1].converged
    assert tail[1].upper_ms["p99"] is not None


def test_sklearn_pipeline_on_frames(credit_pipeline, credit_module, adult_holdout):
    X = adult_holdout[credit_module.FEATURES].head(50)
    kwargs = {**FAST, "min_runs": 10, "max_duration_s": 5.0, "stop_percentile": 50.0}
    report = measure_latency(credit_pipeline, X, batch_sizes=[1, 64], threads=1, **kwargs)
    assert report.fingerprint.backend == "scikit-learn"
    assert report.fingerprint.threads == 1
    assert report[64].n >= 10


def test_torch_cpu_restores_the_module_and_threads(rows):
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    net.train()
    before = torch.get_num_threads()
    report = measure_latency(net, rows, batch_sizes=[1, 8], threads=1, **FAST)
    assert report.fingerprint.backend == "torch"
    assert report.fingerprint.threads == 1
    assert torch.get_num_threads() == before
    assert net.training
    assert report.timer == "perf_counter_ns"


def test_torch_image_model_takes_4d_batches():
    import torch

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    images = np.random.default_rng(0).normal(size=(4, 3, 8, 8)).astype(np.float32)
    net(torch.from_numpy(images))  # materialise the lazy layer
    report = measure_latency(net, images, batch_sizes=[2], threads=1, **FAST)
    assert report[2].n >= 1
    assert report[2].p50_ms > 0


def test_server_latency_counts_queueing():
    def service(X):
        time.sleep(0.002)
        return np.zeros(len(X))

    kwargs: dict[str, Any] = {
        "warmup": 0,
        "min_runs": 40,
        "min_duration_s": 0.0,
        "stop_percentile": None,
    }
    light = measure_latency(service, np.zeros((1, 2)), scenario="server", target_qps=50, **kwargs)
    heavy = measure_latency(service, np.zeros((1, 2)), scenario="server", target_qps=5000, **kwargs)
    assert light[1].min_ms >= 2.0
    assert heavy[1].min_ms >= 2.0
    # offered 10x the capacity, queries wait behind each other: latency grows with the queue
    assert heavy[1].p50_ms > 5 * light[1].p50_ms
    assert heavy[1].target_qps == 5000
    assert heavy[1].scenario == "server"


def test_offline_reports_throughput(rows):
    report = measure_latency(tiny_onnx(), rows, batch_sizes=[64], scenario="offline", **FAST)
    stats = report[64]
    assert stats.throughput == pytest.approx(64 * stats.n / stats.duration_s)
    assert report.scenario == "offline"


def test_iobinding_run_gives_the_session_outputs(rows):
    # the CUDA path binds inputs and outputs on the device; the same binding code runs on "cpu"
    import onnxruntime as ort

    from pytest_mlops.checks.latency._backends import bound_run

    session = ort.InferenceSession(
        tiny_onnx().SerializeToString(), providers=["CPUExecutionProvider"]
    )
    run = bound_run(session, {"x": rows[:8]}, "cpu", 0)
    run()
    (bound,) = run.outputs()
    np.testing.assert_array_equal(bound, session.run(None, {"x": rows[:8]})[0])


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
@pytest.mark.parametrize("graphs", [False, True])
def test_torch_cuda_uses_cuda_events(rows, graphs):
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    report = measure_latency(
        net, rows, device="cuda", batch_sizes=[1, 32], cuda_graphs=graphs, **FAST
    )
    assert report.timer == "cuda-event"
    assert report.fingerprint.device == "cuda:0"
    assert report.fingerprint.gpu_name
    assert next(net.parameters()).device.type == "cpu"  # moved back


# --- check_latency ---------------------------------------------------------------------------


def test_bounds_pass_and_fail_with_the_measured_value():
    report = _report(np.linspace(1.0, 3.0, 1001))  # p50 = 2.0 ms
    ok = check_latency(report=report, p50_ms=2.5)
    assert ok.passed
    assert ok.value == pytest.approx(2.0)
    bad = check_latency(report=report, p50_ms=1.5, p99_ms=2.5, name="lat")
    assert bad.failed
    assert bad.message.startswith("p50_ms must be <= 1.5: measured 2 (batch_size=1, n=1001")
    assert "1 more failed" in bad.message
    assert {r["metric"] for r in bad.tables["checks"]} == {"p50_ms", "p99_ms"}
    assert set(bad.tables["batches"][0]) == ROW_KEYS
    assert bad.tables["histogram"]
    assert bad.kind == "latency"
    assert bad.name == "lat"


def test_tail_bound_is_inconclusive_without_enough_runs():
    few = check_latency(report=_report(np.linspace(1, 2, 100)), p99_ms=10.0)
    assert few.inconclusive
    assert "needs 299" in few.details
    enough = check_latency(report=_report(np.linspace(1, 2, 300)), p99_ms=10.0)
    assert enough.passed


def test_throughput_floor():
    report = _report(np.full(100, 2.0), batch_size=10, duration_s=0.2)  # 5000 samples/s
    assert check_latency(report=report, min_throughput=4000).passed
    low = check_latency(report=report, min_throughput=6000)
    assert low.failed
    assert low.metric == "throughput"
    assert low.op == ">="


def test_baseline_roundtrip_and_regression(tmp_path):
    base = _report(np.linspace(1.0, 3.0, 1001))
    path = base.save(tmp_path / "b" / "latency.json")
    loaded = LatencyReport.load(path)
    assert loaded[1].p50_ms == base[1].p50_ms
    assert loaded.fingerprint == base.fingerprint
    slower = _report(np.linspace(1.0, 3.0, 1001) * 1.2)  # p50 2.4 ms
    regressed = check_latency(report=slower, baseline=path, compare_fail="p50:10%")
    assert regressed.failed
    assert regressed.metric == "p50_ms vs baseline"
    assert regressed.bound == pytest.approx(2.2)
    assert check_latency(report=slower, baseline=path, compare_fail="p50:25%").passed
    assert check_latency(report=slower, baseline=path, compare_fail="p50:0.5ms").passed
    assert check_latency(report=slower, baseline=path, compare_fail=["throughput:5%"]).passed


def test_baseline_without_common_batch_sizes_is_inconclusive(tmp_path):
    path = _report(np.ones(10), batch_size=8).save(tmp_path / "b.json")
    result = check_latency(report=_report(np.ones(10), batch_size=1), baseline=path)
    assert result.inconclusive
    assert result.message.startswith("nothing to compare: no batch size in common")


def test_baseline_from_another_machine_is_refused(tmp_path):
    other = Fingerprint(device="cpu", backend="onnxruntime", cpu_model="Some Other CPU")
    path = _report(np.linspace(1, 3, 101), fingerprint=other).save(tmp_path / "b.json")
    here = _report(np.linspace(1, 3, 101))
    with pytest.raises(CheckError, match=r"cpu_model: .*allow_other_machine"):
        check_latency(report=here, baseline=path)
    allowed = check_latency(report=here, baseline=path, allow_other_machine=True)
    assert allowed.passed
    assert "another machine" in allowed.details
    gpu = dataclasses.replace(here.fingerprint, device="cuda:0", gpu_name="H100")
    with pytest.raises(CheckError, match="device: 'cuda:0' here, 'cpu' in the baseline"):
        check_latency(report=_report(np.ones(10), fingerprint=gpu), baseline=path)


def test_save_baseline_after_measuring(tmp_path, rows):
    target = tmp_path / "latency.json"
    result = check_latency(tiny_onnx(), rows, save_baseline=target, batch_sizes=[1, 4], **FAST)
    assert result.passed
    assert "baseline written" in result.details
    data = json.loads(target.read_text())
    assert [b["batch_size"] for b in data["batches"]] == [1, 4]
    again = check_latency(
        tiny_onnx(), rows, baseline=target, compare_fail="p50:100000%", batch_sizes=[1, 4], **FAST
    )
    assert again.passed, again.details


def test_bad_baseline_files(tmp_path):
    report = _report(np.ones(10))
    with pytest.raises(ReportError, match=r"missing\.json.*save_baseline"):
        check_latency(report=report, baseline=tmp_path / "missing.json")
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    with pytest.raises(ReportError, match=r"junk\.json"):
        check_latency(report=report, baseline=junk)


@pytest.mark.parametrize(
    ("rule", "match"),
    [
        ("p5O:10%", "unknown statistic"),
        ("p50:10", "expected STAT"),
        ("throughput:2ms", "percentage"),
    ],
)
def test_compare_fail_parsing(rule, match):
    with pytest.raises(CheckError, match=match):
        parse_compare_fail(rule)
    assert [str(r) for r in parse_compare_fail("p50:10%, p99:0.5ms")] == ["p50:10%", "p99:0.5ms"]


# --- bad input -------------------------------------------------------------------------------


def test_sample_with_the_wrong_width_names_the_input():
    with pytest.raises(DataError, match=r"input 'x' takes 4 features per row.*has 5"):
        measure_latency(tiny_onnx(), np.zeros((3, 5), dtype=np.float32), **FAST)


def test_sample_with_the_wrong_type_is_refused():
    with pytest.raises(DataError, match="float32"):
        measure_latency(tiny_onnx(), np.array([["a", "b", "c", "d"]]), **FAST)


def test_sample_with_the_wrong_rank_is_refused():
    with pytest.raises(DataError, match=r"input 'x' takes 2-D"):
        measure_latency(tiny_onnx(), np.zeros((2, 4, 1), dtype=np.float32), **FAST)


def test_torch_sample_with_the_wrong_width():
    import torch

    with pytest.raises(DataError, match="takes 4 features per row"):
        measure_latency(torch.nn.Linear(4, 2), np.zeros((2, 3)), **FAST)


@pytest.mark.parametrize("sizes", [[0], [1, -2], [1.5], []])
def test_batch_size_must_be_positive(sizes, rows):
    with pytest.raises(CheckError, match="batch"):
        measure_latency(tiny_onnx(), rows, batch_sizes=sizes)


def test_empty_sample(rows):
    with pytest.raises(DataError, match="no rows"):
        measure_latency(tiny_onnx(), rows[:0])


def test_model_that_raises_is_a_model_error():
    def broken(X):
        raise RuntimeError("weights not loaded")

    with pytest.raises(ModelError, match=r"broken.*RuntimeError.*weights not loaded"):
        measure_latency(broken, np.zeros((2, 2)), **FAST)


def test_unknown_device_suggests_the_right_one(rows):
    with pytest.raises(CheckError, match="unknown device 'cdua' - did you mean 'cuda'"):
        measure_latency(tiny_onnx(), rows, device="cdua")


def test_unknown_scenario(rows):
    with pytest.raises(CheckError, match="did you mean 'server'"):
        measure_latency(tiny_onnx(), rows, scenario="sever")  # type: ignore[arg-type]
    with pytest.raises(CheckError, match="target_qps"):
        measure_latency(tiny_onnx(), rows, scenario="server")


@pytest.mark.skipif(_cuda(), reason="checks the error raised where there is no GPU")
def test_cuda_without_a_gpu_is_an_error_not_a_cpu_number(rows):
    import torch

    with pytest.raises(CheckError, match=r"device='cuda'.*torch.cuda.is_available\(\) is False"):
        measure_latency(torch.nn.Linear(4, 2), rows, device="cuda")
    with pytest.raises(CheckError, match=r"no CUDAExecutionProvider.*onnxruntime-gpu"):
        measure_latency(tiny_onnx(), rows, device="cuda")
    with pytest.raises(CheckError, match="runs on the host"):
        measure_latency(lambda X: X, rows, device="cuda")


def test_cuda_with_a_cpu_only_onnxruntime_is_an_error_with_or_without_a_gpu(rows):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA execution provider")
    with pytest.raises(CheckError, match=r"no CUDAExecutionProvider.*onnxruntime-gpu"):
        measure_latency(tiny_onnx(), rows, device="cuda")
    with pytest.raises(CheckError, match="runs on the host"):
        measure_latency(lambda X: X, rows, device="cuda")


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
def test_torch_cuda_scenarios_and_offline_throughput(rows):
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    offline = measure_latency(
        net, rows, device="cuda", batch_sizes=[64], scenario="offline", **FAST
    )
    stats = offline[64]
    assert stats.throughput == pytest.approx(64 * stats.n / stats.duration_s)
    server = measure_latency(net, rows, device="cuda", scenario="server", target_qps=200.0, **FAST)
    assert server[1].p50_ms > 0
    assert server.fingerprint.device == "cuda:0"
    with pytest.raises(CheckError, match=r"device='cuda:7' asked for, but only"):
        measure_latency(net, rows, device="cuda:7", **FAST)


def test_public_api_is_lazy():
    assert pytest_mlops.measure_latency is measure_latency
    assert pytest_mlops.check_latency is check_latency


# --- command line ----------------------------------------------------------------------------


@pytest.fixture
def onnx_and_csv(tmp_path, rows):
    import onnx
    import pandas as pd

    model = tmp_path / "tiny.onnx"
    onnx.save(tiny_onnx(), str(model))
    data = tmp_path / "rows.csv"
    pd.DataFrame(rows, columns=["a", "b", "c", "d"]).assign(label=0).to_csv(data, index=False)
    return str(model), str(data)


def test_cli_measures_and_gates(onnx_and_csv, tmp_path, capsys):
    from pytest_mlops.cli import main

    model, data = onnx_and_csv
    quick = ["--target", "label", "--min-duration", "0.02", "--max-duration", "0.3"]
    saved = tmp_path / "base.json"
    args = ["latency", model, data, *quick, "--batch-sizes", "1,8", "--p50-ms", "100"]
    assert main([*args, "--save-baseline", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime on cpu" in out
    assert "PASSED: p50_ms must be <= 100" in out
    assert [b["batch_size"] for b in json.loads(saved.read_text())["batches"]] == [1, 8]
    assert main(["latency", model, data, *quick, "--p50-ms", "0.000001"]) == 1
    assert "FAILED: p50_ms must be <= 1.000e-06" in capsys.readouterr().out
    assert main(["latency", model, data, *quick, "--device", "cdua"]) == 2
    assert "did you mean 'cuda'" in capsys.readouterr().err
