from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("xdist")


def _stable(report: dict[str, Any]) -> dict[str, Any]:
    report = dict(report)
    for key in ("created", "environment"):
        report.pop(key)
    return report


def test_results_survive_xdist_and_give_the_same_report(project):
    project.makepyfile(
        test_more="""
        import pytest

        @pytest.mark.accuracy(metric="f1", min=0.5)
        def test_f1(mlops):
            mlops.accuracy()

        @pytest.mark.parametrize("group", ["a", "b"])
        def test_per_group(mlops, mlops_model, mlops_current, group):
            from pytest_mlops import check_accuracy
            rows = mlops_current.subset(mlops_current.frame["group"] == group, name=group)
            mlops.check(check_accuracy(mlops_model, rows, metric="roc_auc", min=0.8,
                                       name=f"auc_{group}"))
        """
    )
    serial = project.runpytest_subprocess("-p", "no:randomly", "--mlops-report=serial.json")
    serial.assert_outcomes(passed=5)
    parallel = project.runpytest_subprocess("-n", "2", "--mlops-report=parallel.json")
    parallel.assert_outcomes(passed=5)
    parallel.stdout.fnmatch_lines(["*= mlops =*", "test_more.py::test_per_group?a?*auc_a*PASSED*"])
    a = json.loads((project.path / "serial.json").read_text())
    b = json.loads((project.path / "parallel.json").read_text())
    assert a["summary"]["total"] == 5
    assert _stable(a) == _stable(b)
