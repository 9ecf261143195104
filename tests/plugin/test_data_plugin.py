"""The data gates from a config file, markers and the ``mlops`` fixture, run through pytest."""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest

from pytest_mlops.data.schema import infer_schema

DATA_GATES = textwrap.dedent(
    """
    schema_file = { kind = "schema", path = "schema.json" }
    integrity = { dataset = "current" }
    privacy = { quasi_identifiers = ["group"], k = 50 }
    properties = { path = "schema.json", increasing = ["x1"], max_examples = 10 }
    """
)


def config(project: pytest.Pytester) -> str:
    """The shared toy project's config (model, data, two gates)."""
    return (project.path / "pyproject.toml").read_text()


def train(project: pytest.Pytester) -> pd.DataFrame:
    return pd.read_csv(project.path / "train.csv")


def current(project: pytest.Pytester) -> pd.DataFrame:
    return pd.read_csv(project.path / "test.csv")


@pytest.fixture
def data_project(project: pytest.Pytester) -> pytest.Pytester:
    infer_schema(train(project), target="y").save(project.path / "schema.json")
    project.makefile(".toml", pyproject=config(project) + DATA_GATES)
    return project


def test_declared_data_gates_pass(data_project):
    result = data_project.runpytest("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=6)
    for line in (
        "*pyproject.toml::schema_file*schema*PASSED*violations=0*<= 0",
        "*pyproject.toml::integrity*integrity*PASSED*failed_checks=0*",
        "*pyproject.toml::privacy*privacy*PASSED*k_anonymity=*>= 50",
        "*pyproject.toml::properties*properties*PASSED*failed_properties=0*",
    ):
        result.stdout.fnmatch_lines([line])


def test_schema_gate_lists_every_violation(data_project):
    bad = current(data_project)
    bad.loc[:29, "group"] = "zzz"  # 10% of the rows: beyond the inferred tolerance (2.5%)
    bad["x1"] = bad["x1"].astype(object)
    bad.loc[1, "x1"] = "oops"
    bad.drop(columns=["x2"]).assign(extra=1).to_csv(data_project.path / "test.csv", index=False)
    result = data_project.runpytest("pyproject.toml::schema_file", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*4 violations of schema 'schema.json' in dataset 'current'*",
            "*'x2' missing_column*",
            "*'extra' extra_column*",
            "*'x1' dtype: 1 of 300 rows (0.33%), expected numbers, e.g. ?'oops'? at rows ?1?*",
            "*'group' in_set: 30 of 300 rows (10.00%)*'zzz'*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_mostly_from_the_command_line_tolerates_rare_values(data_project):
    bad = current(data_project)
    bad.loc[:29, "group"] = "zzz"
    bad.to_csv(data_project.path / "test.csv", index=False)
    args = ["pyproject.toml::schema_file", "-p", "no:cacheprovider"]
    data_project.runpytest(*args).assert_outcomes(failed=1)
    data_project.runpytest(*args, "--mlops-set", "gates.schema_file.mostly=0.85").assert_outcomes(
        passed=1
    )


def test_schema_file_typo_is_a_clear_error(data_project):
    path = data_project.path / "schema.json"
    data = json.loads(path.read_text())
    data["columns"]["x1"]["nulable"] = data["columns"]["x1"].pop("nullable")
    path.write_text(json.dumps(data))
    result = data_project.runpytest("pyproject.toml::schema_file", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*column 'x1': unknown key 'nulable' - did you mean 'nullable'?*"])
    assert "Traceback" not in result.stdout.str()


def test_integrity_gate_catches_train_test_leakage(data_project):
    train(data_project).head(100).to_csv(data_project.path / "test.csv", index=False)
    result = data_project.runpytest("pyproject.toml::integrity", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*overlap_share must be <= 0.01: measured 1 (100 rows also in the reference)*"]
    )


def test_privacy_gate_finds_identifiers(data_project):
    frame = current(data_project)
    frame["group"] = [f"user{i}@example.com" for i in range(300)]
    frame.to_csv(data_project.path / "test.csv", index=False)
    base = config(data_project).split(DATA_GATES.strip())[0]
    assert "privacy" not in base
    both = base + '\nprivacy = { quasi_identifiers = ["group"], k = 5 }\n'
    data_project.makefile(".toml", pyproject=both)
    result = data_project.runpytest("pyproject.toml::privacy", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*300 cells hold direct identifiers (allowed 0): email in 'group'*",
            "*pyproject.toml::privacy*privacy*FAILED*identifier_cells=300*<= 0",
        ]
    )
    assert "user1@example.com" not in result.stdout.str()


def test_gate_setting_typo_is_a_usage_error(project):
    text = config(project) + "\nprivacy = { quasi_identifier = ['group'] }\n"
    project.makefile(".toml", pyproject=text)
    result = project.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stderr.fnmatch_lines(
        ["*unknown setting 'quasi_identifier'*did you mean 'quasi_identifiers'?*"]
    )


def test_marker_and_fixture_forms(data_project):
    data_project.makepyfile(
        test_user_data=textwrap.dedent(
            """
            import pytest
            from pytest_mlops import check_integrity

            @pytest.mark.data(path="schema.json", mostly=0.99)
            def test_schema(mlops):
                result = mlops.schema(dataset="current")
                assert result.passed

            @pytest.mark.data(k=1000, quasi_identifiers=["group"])
            def test_privacy_too_strict(mlops):
                mlops.privacy()

            def test_integrity_by_hand(mlops, mlops_current, mlops_reference):
                mlops.check(check_integrity(mlops_current, reference=mlops_reference))
            """
        )
    )
    result = data_project.runpytest("test_user_data.py", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*k-anonymity over *'group'* must be >= 1000*"])
