from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest


def test_each_declared_gate_is_a_test_item(project):
    result = project.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["pyproject.toml::schema", "pyproject.toml::accuracy"])


def test_gates_pass_and_the_summary_table_shows_them(project):
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*= mlops =*",
            "test*check*status*measured*bound",
            "pyproject.toml::accuracy*accuracy*PASSED*roc_auc=0.9*>= 0.8",
            "pyproject.toml::schema*schema*PASSED*missing_columns=0*<= 0",
        ]
    )
    assert "mlops: pyproject.toml [tool.pytest_mlops], 2 gates" in result.stdout.str()


def test_a_failing_gate_states_bound_and_value_without_traceback(project):
    result = project.runpytest("--mlops-set", "gates.accuracy.min=0.999")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*accuracy gate 'accuracy' FAILED: roc_auc must be >= 0.999: measured 0.9* (n=300, split=current*"
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "plugin.py" not in result.stdout.str()


def test_selection_by_keyword_and_marker(project):
    project.makepyfile(test_other="def test_plain():\n    pass\n")
    project.runpytest("-k", "accuracy").assert_outcomes(passed=1, deselected=2)
    project.runpytest("-m", "accuracy").assert_outcomes(passed=1, deselected=2)
    project.runpytest("-m", "mlops").assert_outcomes(passed=2, deselected=1)
    project.runpytest("-m", "data").assert_outcomes(passed=1, deselected=2)
    project.runpytest("pyproject.toml::schema").assert_outcomes(passed=1)


def test_gates_are_collected_with_testpaths(project):
    project.makepyfile(**{"tests/test_x": "def test_x():\n    pass\n"})
    config = (project.path / "pyproject.toml").read_text()
    (project.path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n' + config
    )
    project.runpytest().assert_outcomes(passed=3)
    # An explicit path means only that path.
    project.runpytest("tests").assert_outcomes(passed=1)


def test_mlops_toml(project):
    text = (project.path / "pyproject.toml").read_text().replace("[tool.pytest_mlops]\n", "")
    text = text.replace("[tool.pytest_mlops.gates]", "[gates]")
    (project.path / "pyproject.toml").unlink()
    (project.path / "mlops.toml").write_text(text)
    result = project.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["mlops.toml::schema", "mlops.toml::accuracy"])


def test_json_report(project):
    result = project.runpytest("--mlops-report=out/report.json")
    result.assert_outcomes(passed=2)
    report = json.loads((project.path / "out" / "report.json").read_text())
    assert report["format"] == "pytest-mlops-report"
    assert report["version"] == 2
    tests = {"passed": 2, "failed": 0, "inconclusive": 0, "error": 0, "skipped": 0}
    assert report["summary"] == {
        "total": 2,
        "passed": 2,
        "failed": 0,
        "inconclusive": 0,
        "tests": tests,
        "verdict": "passed",
        "reasons": [],
    }
    assert report["exitstatus"] == 0
    assert report["collection_errors"] == []
    assert [(g["name"], g["outcome"], g["passed"]) for g in report["gates"]] == [
        ("schema", "passed", True),
        ("accuracy", "passed", True),
    ]
    accuracy = next(r for r in report["results"] if r["name"] == "accuracy")
    assert accuracy["nodeid"] == "pyproject.toml::accuracy"
    assert accuracy["metric"] == "roc_auc"
    assert accuracy["bound"] == 0.8
    assert accuracy["op"] == ">="
    assert accuracy["context"]["n"] == 300
    assert report["project"]["model"] == "toy_model:make"
    assert report["project"]["target"] == "y"


def test_failed_gate_makes_the_report_verdict_failed(project):
    project.runpytest("--mlops-report=r.json", "--mlops-set", "gates.accuracy.min=0.999")
    report = json.loads((project.path / "r.json").read_text())
    assert report["summary"]["verdict"] == "failed"
    assert report["summary"]["failed"] == 1


def test_junit_properties_carry_the_measured_values(project):
    project.runpytest("--junitxml=junit.xml").assert_outcomes(passed=2)
    tree = ET.parse(project.path / "junit.xml")  # noqa: S314 - pytest wrote it in this test
    props = {
        p.get("name"): p.get("value")
        for case in tree.iter("testcase")
        if case.get("name") == "accuracy"
        for p in case.iter("property")
    }
    assert props["mlops.accuracy.status"] == "passed"
    assert 0.9 < float(str(props["mlops.accuracy.roc_auc"])) <= 1.0
    assert props["mlops.accuracy.bound"] == ">= 0.8"
    assert json.loads(str(props["mlops.result"]))["metric"] == "roc_auc"


def test_markers_are_registered_with_help(pytester):
    result = pytester.runpytest("--markers")
    for name in ("mlops", "data", "accuracy", "fairness", "drift", "latency", "gpu"):
        result.stdout.fnmatch_lines([f"@pytest.mark.{name}*"])
    pytester.makepyfile(
        "import pytest\n"
        "@pytest.mark.accuracy\n@pytest.mark.fairness\n@pytest.mark.drift\n"
        "@pytest.mark.latency\n@pytest.mark.data\n@pytest.mark.mlops\n"
        "def test_x():\n    pass\n"
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)


def test_mlops_fixture_layers_marker_over_cli_over_file(project):
    project.makepyfile(
        """
        import pytest

        @pytest.mark.accuracy(min=0.5)
        def test_marker_wins(mlops):
            result = mlops.accuracy()
            assert result.bound == 0.5 and result.metric == "roc_auc"  # metric from the file

        def test_file_and_cli(mlops):
            result = mlops.accuracy()
            assert result.bound == 0.85  # --mlops-set beats the file's 0.8

        def test_call_kwargs_win(mlops):
            assert mlops.accuracy(metric="f1", min=0.1).metric == "f1"
        """
    )
    result = project.runpytest(
        "test_mlops_fixture_layers_marker_over_cli_over_file.py",
        "--mlops-set",
        "gates.accuracy.min=0.85",
    )
    result.assert_outcomes(passed=3)


def test_mlops_check_records_library_results(project):
    project.makepyfile(
        test_by_hand="""
        from pytest_mlops import check_accuracy

        def test_by_hand(mlops, mlops_model, mlops_current):
            mlops.check(check_accuracy(mlops_model, mlops_current, metric="accuracy", min=0.99,
                                       name="strict"))
        """
    )
    result = project.runpytest("test_by_hand.py", "--mlops-report=r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*accuracy gate 'strict' FAILED: accuracy must be >= 0.99*"])
    report = json.loads((project.path / "r.json").read_text())
    assert report["results"][0]["nodeid"] == "test_by_hand.py::test_by_hand"


@pytest.mark.parametrize(
    ("policy", "outcome"),
    [("fail", {"failed": 1}), ("skip", {"skipped": 1}), ("pass", {"passed": 1})],
)
def test_inconclusive_policy(project, policy, outcome):
    project.makepyfile(
        test_undecided="""
        from pytest_mlops import CheckResult

        def test_undecided(mlops):
            mlops.check(CheckResult(name="cmp", kind="accuracy", status="inconclusive",
                                    message="difference -0.002 [95% CI -0.01, 0.006]"))
        """
    )
    result = project.runpytest("test_undecided.py", f"--mlops-inconclusive={policy}", "-rs")
    result.assert_outcomes(**outcome)
    if policy == "fail":
        result.stdout.fnmatch_lines(
            ["*INCONCLUSIVE: difference -0.002*", "*inconclusive verdicts fail*"]
        )


def test_gpu_tests_skip_without_a_gpu_or_fail_when_required(pytester):
    pytester.makepyfile("import pytest\n@pytest.mark.gpu\ndef test_cuda():\n    pass\n")
    from pytest_mlops._gpu import cuda_available

    if cuda_available()[0]:
        pytest.skip("this machine has a GPU")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no CUDA device*"])
    result = pytester.runpytest("--mlops-require-gpu")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*GPU required (--mlops-require-gpu)*"])


def test_plugin_is_inert_without_config(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "mlops:" not in result.stdout.str()


# --- misconfiguration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("accuracy = {", "acuracy = {"),
            "ERROR: pytest-mlops: pyproject.toml [tool.pytest_mlops] gate 'acuracy': unknown gate kind "
            "'acuracy' - did you mean 'accuracy'?",
        ),
        (("min = 0.8", 'min = "0.8"'), "'min' must be a number, got the string '0.8'"),
        (('target = "y"', 'taget = "y"'), "unknown setting 'taget' - did you mean 'target'?"),
    ],
)
def test_misconfiguration_is_a_usage_error(project, edit, message):
    path = project.path / "pyproject.toml"
    path.write_text(path.read_text().replace(*edit))
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('model = "toy_model:make"', 'model = "models/missing.onnx"'),
            "*pytest-mlops: the model file 'models/missing.onnx' does not exist*",
        ),
        (
            ('current = "test.csv"', 'current = "nope.csv"'),
            "*pytest-mlops: the dataset file '*nope.csv' does not exist*",
        ),
        (
            ('target = "y"', 'target = "label"'),
            "*pytest-mlops: dataset 'current' (*test.csv) has no target column 'label'*",
        ),
    ],
)
def test_missing_files_and_columns_fail_the_gates_with_a_message(project, edit, message):
    path = project.path / "pyproject.toml"
    path.write_text(path.read_text().replace(*edit))
    result = project.runpytest("-k", "accuracy")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str()


def test_empty_current_file(project):
    (project.path / "test.csv").write_text("")
    result = project.runpytest("-k", "accuracy")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*the dataset file '*test.csv' is empty*"])


def test_unknown_check_on_the_fixture(project):
    project.makepyfile(test_x="def test_x(mlops):\n    mlops.acuracy()\n")
    result = project.runpytest("test_x.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*'mlops' has no check 'acuracy' - did you mean 'accuracy'?*"])


def test_unknown_marker_setting(project):
    project.makepyfile(
        test_x="import pytest\n@pytest.mark.accuracy(mni=0.5)\ndef test_x(mlops):\n    mlops.accuracy()\n"
    )
    result = project.runpytest("test_x.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.accuracy: unknown setting 'mni' - did you mean 'min'?*"]
    )


def test_a_cuda_gate_from_the_fixture_skips_without_a_gpu(project):
    from pytest_mlops._gpu import cuda_available

    if cuda_available()[0]:
        pytest.skip("this machine has a GPU")
    project.makepyfile(test_gpu="def test_gpu(mlops):\n    mlops.latency(device='cuda')\n")
    project.runpytest("test_gpu.py").assert_outcomes(skipped=1)
    project.runpytest("test_gpu.py", "--mlops-require-gpu").assert_outcomes(failed=1)
