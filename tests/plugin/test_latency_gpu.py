"""The latency gate on a CUDA device, through pytest: the paths that only a GPU machine exercises.

Skipped where no CUDA device is present; run them on a GPU runner (docs/latency.md says how).
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest

from pytest_mlops._gpu import cuda_available

pytestmark = pytest.mark.skipif(not cuda_available()[0], reason="needs a CUDA device")

TORCH_MODEL = textwrap.dedent(
    """
    import torch

    def make():
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2)
        ).eval()
    """
)
CONFIG = textwrap.dedent(
    """
    [tool.pytest_mlops]
    model = "gpu_model:make"
    reference = "train.csv"
    current = "test.csv"
    target = "y"
    report = "build/report.json"

    [tool.pytest_mlops.gates]
    """
)
QUICK = "warmup = 2, min_runs = 20, min_duration_s = 0.05, max_duration_s = 2"


@pytest.fixture
def gpu_project(pytester: pytest.Pytester) -> pytest.Pytester:
    rng = np.random.default_rng(0)
    for name, n in (("train", 200), ("test", 100)):
        x = rng.normal(size=(n, 2)).astype(np.float32)
        frame = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": (x.sum(axis=1) > 0).astype(int)})
        frame.to_csv(pytester.path / f"{name}.csv", index=False)
    pytester.makepyfile(gpu_model=TORCH_MODEL)
    pytester.syspathinsert()
    return pytester


def _gates(project: pytest.Pytester, *gates: str) -> None:
    project.makefile(".toml", pyproject=CONFIG + "\n".join(gates) + "\n")


@pytest.mark.parametrize("graphs", [False, True])
def test_declared_cuda_gate_runs_on_the_gpu_with_cuda_events(gpu_project, graphs):
    gate = 'kind = "latency", device = "cuda", batch_sizes = [1, 32], p50_ms = 1000'
    _gates(gpu_project, f"gpu_latency = {{ {gate}, cuda_graphs = {str(graphs).lower()}, {QUICK} }}")
    result = gpu_project.runpytest("--mlops-require-gpu", "-m", "gpu")
    result.assert_outcomes(passed=1)
    report = json.loads((gpu_project.path / "build" / "report.json").read_text())
    (entry,) = [e for e in report["results"] if e["kind"] == "latency"]
    assert entry["context"]["device"] == "cuda:0"
    assert entry["context"]["timer"] == "cuda-event"
    assert entry["context"]["gpu"] == cuda_available()[1]
    assert [row["batch_size"] for row in entry["tables"]["batches"]] == [1, 32]
    assert all(row["p50_ms"] > 0 for row in entry["tables"]["batches"])


def test_cuda_gate_fails_with_the_measured_value(gpu_project):
    _gates(
        gpu_project,
        f'gpu_latency = {{ kind = "latency", device = "cuda", p50_ms = 0.000001, {QUICK} }}',
    )
    result = gpu_project.runpytest("--mlops-require-gpu")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*p50_ms must be <= 1.000e-06: measured * device=cuda:0*"])


def test_fixture_measures_on_the_gpu(gpu_project):
    _gates(gpu_project)
    gpu_project.makepyfile(
        test_speed=f"""
        def test_on_gpu(mlops):
            result = mlops.latency(device="cuda", batch_size=4, p50_ms=1000, {QUICK.replace(" = ", "=")})
            assert result.context["device"] == "cuda:0"
            assert result.context["timer"] == "cuda-event"
        """
    )
    gpu_project.runpytest("test_speed.py", "--mlops-require-gpu").assert_outcomes(passed=1)


def test_a_model_that_cannot_run_on_cuda_is_an_error_even_with_a_gpu(gpu_project):
    """A GPU is present, but a scikit-learn model cannot use it: never a CPU number labelled GPU."""
    gpu_project.makepyfile(
        sk_model="""
        import pandas as pd
        from pathlib import Path
        from sklearn.linear_model import LogisticRegression

        def make():
            frame = pd.read_csv(Path(__file__).parent / "train.csv")
            return LogisticRegression().fit(frame[["x1", "x2"]], frame["y"])
        """
    )
    config = CONFIG.replace("gpu_model:make", "sk_model:make")
    gpu_project.makefile(
        ".toml",
        pyproject=config + f'gpu_latency = {{ kind = "latency", device = "cuda", {QUICK} }}\n',
    )
    result = gpu_project.runpytest("--mlops-require-gpu")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*device='cuda'*"])
    assert "Traceback" not in result.stdout.str()
