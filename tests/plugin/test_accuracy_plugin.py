"""The accuracy and champion gates through pytest: declared, by marker, inconclusive policy."""

from __future__ import annotations

import json
import textwrap

import pytest

BASELINES = textwrap.dedent(
    """

    def older():
        frame = pd.read_csv(Path(__file__).parent / "train.csv").head(80)
        return LogisticRegression().fit(frame[["x1", "x2"]], frame["y"])

    def noise():
        frame = pd.read_csv(Path(__file__).parent / "train.csv")
        return LogisticRegression().fit(frame[["x1", "x2"]], frame["y"].sample(frac=1, random_state=0).to_numpy())

    def one_column():
        frame = pd.read_csv(Path(__file__).parent / "train.csv")
        return LogisticRegression().fit(frame[["x1"]], frame["y"])
    """
)


@pytest.fixture
def gates(project: pytest.Pytester) -> pytest.Pytester:
    """The toy project with baselines and a gates table the test fills in."""
    (project.path / "toy_model.py").write_text(
        (project.path / "toy_model.py").read_text() + BASELINES
    )
    return project


def declare(project: pytest.Pytester, *lines: str) -> None:
    text = (project.path / "pyproject.toml").read_text()
    head = text.split("[tool.pytest_mlops.gates]")[0]
    (project.path / "pyproject.toml").write_text(
        head + "[tool.pytest_mlops.gates]\n" + "\n".join(lines) + "\n"
    )


def test_accuracy_gate_on_the_lower_bound_with_slices(gates):
    declare(
        gates,
        'auc = { kind = "accuracy", metric = "roc_auc", min = 0.8, on = "lower", '
        'slice_by = "group", slices = ["x1 > 0"] }',
    )
    result = gates.runpytest("--mlops-report=report.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["pyproject.toml::auc*auc*PASSED*roc_auc.ci_low=0.9*>= 0.8"])
    report = json.loads((gates.path / "report.json").read_text())
    (entry,) = report["results"]
    slices = [row["slice"] for row in entry["tables"]["slices"]]
    assert slices == ["all", "group=a", "group=b", "x1 > 0"]
    assert entry["metrics"]["roc_auc_ci_low"] < entry["metrics"]["roc_auc"]


def test_a_failing_slice_fails_the_gate_and_names_the_slice(gates):
    declare(
        gates,
        'auc = { kind = "accuracy", metric = "accuracy", min = 0.8, min_slice_size = 20, '
        'slices = ["x1 > -0.3 and x1 < 0.3"] }',
    )
    result = gates.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*accuracy gate 'auc' FAILED: accuracy must be >= 0.8 overall and in every slice: measured * in slice 'x1 > -0.3 and x1 < 0.3'*"
        ]
    )
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("policy", "outcome"), [("fail", "failed"), ("skip", "skipped"), ("pass", "passed")]
)
def test_inconclusive_interval_follows_the_setting(gates, policy, outcome):
    # the bound sits at the estimate, so the interval straddles it
    declare(gates, 'auc = { kind = "accuracy", metric = "accuracy", min = 0.88, on = "interval" }')
    result = gates.runpytest(f"--mlops-inconclusive={policy}")
    result.assert_outcomes(**{outcome: 1})
    if policy == "fail":
        result.stdout.fnmatch_lines(
            [
                "*accuracy gate 'auc' INCONCLUSIVE: the 95% CI of accuracy must be >= 0.88*straddles the bound*",
                "*(inconclusive verdicts fail; set inconclusive = 'skip' or 'pass' to change)*",
            ]
        )


def test_champion_gate_passes_against_an_older_model(gates):
    declare(gates, 'champion = { baseline = "toy_model:older", metric = "roc_auc", margin = 0.02 }')
    result = gates.runpytest("--mlops-report=report.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["pyproject.toml::champion*champion*PASSED*roc_auc_difference=*>= -0.02"]
    )
    (entry,) = json.loads((gates.path / "report.json").read_text())["results"]
    assert entry["kind"] == "champion"
    (row,) = entry["tables"]["comparison"]
    assert row["difference"] == pytest.approx(row["candidate"] - row["baseline"])
    assert set(entry["metrics"]) >= {
        "candidate",
        "baseline",
        "difference",
        "ci_low",
        "ci_high",
        "p_value",
    }


def test_champion_gate_fails_a_worse_candidate(gates):
    declare(gates, 'champion = { baseline = "toy_model:make", metric = "roc_auc", margin = 0.01 }')
    result = gates.runpytest("--mlops-model=toy_model:noise")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*champion gate 'champion' FAILED: roc_auc difference (candidate - baseline) must be >= -0.01*the candidate is worse*",
            "*McNemar's exact test on the predicted labels*",
        ]
    )


def test_champion_gate_with_a_baseline_of_other_inputs(gates):
    # the baseline takes x1 only, the candidate x1 and x2: both score the same rows
    declare(gates, 'champion = { baseline = "toy_model:one_column", metric = "roc_auc" }')
    result = gates.runpytest("--mlops-report=report.json")
    (entry,) = json.loads((gates.path / "report.json").read_text())["results"]
    (row,) = entry["tables"]["comparison"]
    assert row["difference"] == pytest.approx(row["candidate"] - row["baseline"])
    assert entry["metrics"]["baseline"] < entry["metrics"]["candidate"]
    result.assert_outcomes(passed=1)
    assert "Traceback" not in result.stdout.str()


def test_champion_from_a_test_with_the_mlops_fixture(gates):
    gates.makepyfile(
        test_champion=textwrap.dedent(
            """
            import pytest

            @pytest.mark.accuracy(metric="accuracy", margin=0.05)
            def test_not_worse(mlops):
                result = mlops.champion(baseline="toy_model:older")
                assert result.metrics["margin"] == 0.05

            @pytest.mark.accuracy(metric="roc_auc", min=0.8, on="lower")
            def test_auc(mlops):
                assert mlops.accuracy().metric == "roc_auc.ci_low"
            """
        )
    )
    declare(gates)
    gates.runpytest().assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ("champion = { metric = 'roc_auc' }", "*the setting 'baseline' is required*"),
        (
            "auc = { kind = 'accuracy', min = 0.8, on = 'lowr' }",
            "*'on' must be*did you mean 'lower'?*",
        ),
        ("auc = { kind = 'accuracy', metric = 'roc_acu', min = 0.8 }", "*did you mean 'roc_auc'?*"),
        ("champion = { baseline = 'toy_model:make', margin = -0.1 }", "*'margin' must be >= 0*"),
    ],
)
def test_bad_gate_settings_are_usage_errors(gates, gate, message):
    declare(gates, gate)
    result = gates.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
