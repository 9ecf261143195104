"""What the plugin adds to ``pytest --collect-only`` on a small project.

Runs the same collection with the plugin and with ``-p no:mlops`` (interleaved, so machine noise
hits both alike), and prints the medians, the difference in ms and the ratio. Target: <= 100 ms.

    python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

PROJECT = textwrap.dedent(
    """
    [tool.pytest_mlops]
    model = "models/credit.onnx"
    reference = "data/train.csv"
    current = "data/holdout.csv"
    target = "income"
    sensitive = ["sex", "race"]

    [tool.pytest_mlops.gates]
    schema = {}
    accuracy = { metric = "roc_auc", min = 0.88 }
    balanced = { kind = "accuracy", metric = "balanced_accuracy", min = 0.7 }
    """
)
TESTS = "\n".join(f"def test_{i}():\n    assert True\n" for i in range(20))


def _time(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pyproject.toml").write_text(PROJECT)
        (root / "test_small.py").write_text(TESTS)
        base = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        with_plugin, without = [], []
        _time(base, root)  # warm the file cache
        for _ in range(args.runs):
            with_plugin.append(_time(base, root))
            without.append(_time([*base, "-p", "no:mlops"], root))
    on, off = statistics.median(with_plugin), statistics.median(without)
    print(f"pytest --collect-only, small project, median of {args.runs} interleaved runs")
    print(f"  without pytest-mlops : {off:7.1f} ms")
    print(f"  with pytest-mlops    : {on:7.1f} ms")
    print(f"  added                : {on - off:7.1f} ms (target <= 100 ms)")
    print(f"  ratio                : {on / off:7.3f}x")


if __name__ == "__main__":
    main()
