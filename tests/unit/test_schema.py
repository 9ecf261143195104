"""Schema inference, the schema file, and lazy validation that lists every violation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pytest_mlops import ConfigError, DataError, load_dataset
from pytest_mlops.cli import main
from pytest_mlops.data.schema import (
    SCHEMA_VERSION,
    ColumnSchema,
    Schema,
    check_schema,
    infer_schema,
    inferred_tolerance,
    load_schema,
    unseen_share,
)


@pytest.fixture(scope="module")
def adult_schema(adult_train: pd.DataFrame) -> Schema:
    return infer_schema(load_dataset(adult_train, target="income"))


def small() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"id{i}" for i in range(30)],
            "age": [20 + i for i in range(30)],
            "score": np.linspace(0.0, 1.0, 30),
            "city": ["Oslo", "Rome", "Lima"] * 10,
            "note": [None] * 29 + ["x"],
        }
    )


def violations(result) -> set[tuple[str, str]]:
    return {(r["column"], r["rule"]) for r in result.tables["violations"]}


# --- inference -------------------------------------------------------------------------------


def test_inferred_schema_matches_the_data(adult_train, adult_schema):
    assert adult_schema.names == tuple(adult_train.columns)
    assert adult_schema.target == "income"
    assert "income" not in adult_schema.feature_names
    age = adult_schema["age"]
    assert (age.dtype, age.nullable, age.min, age.max) == ("int", False, 17, 90)
    assert age.quantiles["0.5"] == pytest.approx(adult_train["age"].quantile(0.5))
    assert age.quantiles["0.99"] == pytest.approx(adult_train["age"].quantile(0.99))
    workclass = adult_schema["workclass"]
    assert workclass.nullable is True
    assert set(workclass.categories) == set(adult_train["workclass"].dropna().unique())
    assert adult_schema["native_country"].categories is not None
    assert not any(c.unique for c in adult_schema.columns)


def test_inference_types_ids_free_text_floats_and_flags():
    frame = small().assign(flag=[True, False] * 15, number=range(30))
    schema = infer_schema(frame, max_categories=5)
    assert schema["id"].unique
    assert schema["id"].categories is None
    assert not schema["number"].unique  # distinct numbers are not taken for ids
    assert schema["city"].categories == ("Lima", "Oslo", "Rome")
    assert schema["score"].dtype == "float"
    assert schema["flag"].dtype == "bool"
    gaps = infer_schema(pd.DataFrame({"flag": [True, None, False]}))
    assert gaps["flag"].dtype == "bool"
    assert gaps["flag"].nullable
    assert infer_schema(frame.head(5))["id"].unique is False  # too few rows to call it an id


def test_schema_file_roundtrip_is_reviewable_json(tmp_path, adult_schema):
    path = adult_schema.save(tmp_path / "schema.json")
    text = path.read_text()
    assert text.count("\n") > 100  # one rule per line, for review
    data = json.loads(text)
    assert data["schema_version"] == SCHEMA_VERSION
    assert list(data["columns"]) == list(adult_schema.names)
    loaded = load_schema(path)
    assert loaded.columns == adult_schema.columns
    assert loaded.tolerance == adult_schema.tolerance
    assert Schema.load(path).source == str(path)


# --- schema file errors ----------------------------------------------------------------------


def write(tmp_path, data) -> str:
    path = tmp_path / "schema.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


GOOD = {"schema_version": 1, "columns": {"age": {"dtype": "int", "min": 0, "max": 120}}}


@pytest.mark.parametrize(
    ("document", "match"),
    [
        ({**GOOD, "colums": {}}, r"unknown key 'colums' - did you mean 'columns'\?"),
        (
            {"schema_version": 1, "columns": {"age": {"dtype": "int", "nulable": False}}},
            r"column 'age': unknown key 'nulable' - did you mean 'nullable'\?",
        ),
        (
            {"schema_version": 1, "columns": {"age": {"dtype": "integer"}}},
            r"column 'age': 'dtype' must be .*'int'.*got 'integer'",
        ),
        ({**GOOD, "schema_version": 7}, r"schema_version 7 is not supported.*version 1"),
        ({"columns": GOOD["columns"]}, r"no 'schema_version'"),
        (
            {"schema_version": 1, "columns": {"age": {"dtype": "int", "min": 5, "max": 1}}},
            r"column 'age': 'min' \(5\) is above 'max' \(1\)",
        ),
        ({**GOOD, "tolerance": {"in_rnage": 0.9}}, r"'in_rnage'.*did you mean 'in_range'"),
        ({**GOOD, "tolerance": {"in_range": 1.5}}, r"'in_range' must be a fraction in \[0, 1\]"),
        ({**GOOD, "target": "income"}, r"'target' must name one of the columns"),
        ({"schema_version": 1, "columns": {}}, r"'columns' must be a non-empty object"),
        ([1, 2], r"must be a JSON object"),
    ],
)
def test_schema_file_mistakes_are_named(tmp_path, document, match):
    path = write(tmp_path, document)
    with pytest.raises(ConfigError, match=match) as info:
        load_schema(path)
    assert "schema.json" in str(info.value)


def test_invalid_json_names_line_and_column(tmp_path):
    path = write(tmp_path, '{"schema_version": 1,\n "columns": {"age": {"dtype": "int",}}}')
    with pytest.raises(ConfigError, match=r"schema.json'.*not valid JSON at line 2 column"):
        load_schema(path)


def test_missing_schema_file(tmp_path):
    with pytest.raises(ConfigError, match=r"the schema file .*nope.json' does not exist"):
        load_schema(tmp_path / "nope.json")


def test_yaml_schema_roundtrip_and_errors(tmp_path, adult_schema):
    path = adult_schema.save(tmp_path / "schema.yaml")
    text = path.read_text()
    assert text.startswith("schema_version: 1\n")
    assert "  age:\n    dtype: int\n    nullable: false\n    min: 17\n" in text
    assert load_schema(path).columns == adult_schema.columns
    (tmp_path / "typo.yml").write_text("schema_version: 1\ncolumns:\n  age: {dtype: int, mni: 3}\n")
    with pytest.raises(
        ConfigError, match=r"typo.yml' column 'age': unknown key 'mni' - did you mean 'min'\?"
    ):
        load_schema(tmp_path / "typo.yml")
    (tmp_path / "bad.yaml").write_text("schema_version: 1\ncolumns: [a, b\n")
    with pytest.raises(ConfigError, match=r"bad.yaml': not valid YAML at line 3 column 1"):
        load_schema(tmp_path / "bad.yaml")


# --- validation ------------------------------------------------------------------------------


def test_holdout_conforms_and_tolerated_extremes_are_listed(adult_holdout, adult_schema):
    result = check_schema(load_dataset(adult_holdout, name="current"), adult_schema)
    assert result.passed, result.message
    # fnlwgt's holdout maximum exceeds the training maximum: tolerated by the inferred 0.999.
    assert adult_schema.tolerance == {"in_range": 0.999, "in_set": 0.999}
    rows = result.tables["violations"]
    assert [(r["column"], r["rule"], r["status"]) for r in rows] == [
        ("fnlwgt", "in_range", "tolerated")
    ]
    assert rows[0]["count"] == int((adult_holdout["fnlwgt"] > adult_schema["fnlwgt"].max).sum())
    strict = check_schema(adult_holdout, adult_schema, mostly=1.0)
    assert strict.failed
    assert "'fnlwgt' in_range: 1 of 16281 rows" in strict.message


def test_every_violation_is_listed_with_counts_examples_and_rows():
    schema = infer_schema(small(), max_categories=5, tolerance={})
    bad = small().drop(columns=["score"]).assign(extra=1)
    bad["age"] = bad["age"].astype(object)
    bad.loc[3, "age"] = "thirty"  # strings in a numeric column
    bad.loc[4, "age"] = 200  # out of range
    bad.loc[5, "age"] = 20.5  # not a whole number
    bad.loc[6, "city"] = "Paris"  # unknown category
    bad.loc[7, "id"] = "id0"  # duplicate id
    bad.loc[8, "city"] = None  # null in a non-nullable column
    bad["note"] = None  # all missing
    result = check_schema(bad, schema)
    assert result.failed
    assert violations(result) == {
        ("score", "missing_column"),
        ("extra", "extra_column"),
        ("age", "dtype"),
        ("age", "in_range"),
        ("city", "in_set"),
        ("city", "not_null"),
        ("id", "unique"),
        ("note", "all_null"),
    }
    assert result.value == 7  # 'note' is nullable: its all_null is listed, not failed
    by_rule = {(r["column"], r["rule"]): r for r in result.tables["violations"]}
    assert by_rule["age", "dtype"]["count"] == 2
    assert by_rule["age", "dtype"]["examples"] == "'thirty', 20.5"
    assert by_rule["age", "dtype"]["rows"] == "3, 5"
    assert by_rule["age", "in_range"]["examples"] == "200"
    assert by_rule["id", "unique"]["rows"] == "0, 7"
    assert by_rule["id", "unique"]["examples"] == "'id0', 'id0'"
    assert by_rule["city", "in_set"]["examples"] == "'Paris'"
    for line in ("'score' missing_column", "'note' all_null", "'extra' extra_column"):
        assert line in result.details
    assert "7 violations" in result.message
    strict = Schema(
        columns=tuple(
            ColumnSchema(c.name, c.dtype, nullable=False) if c.name == "note" else c
            for c in schema.columns
        )
    )
    assert ("note", "all_null") in {
        (r["column"], r["rule"])
        for r in check_schema(bad, strict).tables["violations"]
        if r["status"] == "failed"
    }


def test_repeated_index_labels_are_handled():
    schema = infer_schema(small(), tolerance={})
    data = pd.concat([small(), small().assign(age=500)])  # labels 0..29 twice
    result = check_schema(data, schema)
    rows = {r["rule"]: r for r in result.tables["violations"]}
    assert (rows["in_range"]["count"], rows["in_range"]["rows"]) == (30, "30, 31, 32, 33, 34")
    assert rows["unique"]["count"] == 60  # every id appears twice


def test_missing_column_suggests_the_closest_name():
    schema = infer_schema(small())
    result = check_schema(small().rename(columns={"city": "cty"}), schema)
    assert "expected a column 'city' - did you mean 'cty'?" in result.details


def test_inferred_tolerance_shrinks_with_the_sample():
    assert inferred_tolerance(400) == 0.9625  # 1 - 15/401
    assert inferred_tolerance(32561) == 0.999
    assert infer_schema(small()).tolerance == {"in_range": 0.5161, "in_set": 0.5161}


def test_columns_with_rare_categories_get_a_looser_in_set(adult_train):
    sample = adult_train.sample(400, random_state=0)
    counts = sample["native_country"].value_counts()
    schema = infer_schema(sample)
    expected = 1 - 3 * ((counts == 1).sum() + 1) / counts.sum()
    assert schema["native_country"].mostly["in_set"] == pytest.approx(expected, abs=1e-4)
    assert unseen_share([5, 1, 1, 3]) == pytest.approx(3 * 3 / 10)
    assert "in_set" not in schema["sex"].mostly  # two common categories: the schema-wide value
    assert infer_schema(sample, tolerance={})["native_country"].mostly == {}


def test_non_strict_schema_allows_extra_columns_and_optional_columns():
    schema = infer_schema(small(), strict=False)
    optional = Schema(
        columns=tuple(
            ColumnSchema(c.name, c.dtype, required=c.name != "note") for c in schema.columns
        ),
        strict=False,
    )
    assert check_schema(small().assign(more=1), schema).passed
    assert check_schema(small().drop(columns=["note"]), optional).passed


def test_mostly_global_per_rule_and_per_column():
    schema = infer_schema(small(), tolerance={})
    bad = small()
    bad.loc[0, "age"] = 999  # 1 of 30 rows out of range (3.3%)
    assert check_schema(bad, schema).failed
    assert check_schema(bad, schema, mostly=0.95).passed
    assert check_schema(bad, schema, mostly={"in_range": 0.95}).passed
    assert check_schema(bad, schema, mostly={"in_set": 0.5}).failed
    columns = tuple(
        ColumnSchema(**{**c.__dict__, "mostly": {"in_range": 0.9}}) if c.name == "age" else c
        for c in schema.columns
    )
    per_column = Schema(columns=columns)
    assert check_schema(bad, per_column).passed
    assert check_schema(bad, per_column, mostly=1.0).passed  # the column's own setting wins
    with pytest.raises(ConfigError, match=r"'in_rnge'.*did you mean 'in_range'"):
        check_schema(bad, schema, mostly={"in_rnge": 0.9})


def test_all_nan_column_in_the_reference_is_nullable_and_any_type():
    frame = small().assign(empty=np.nan)
    schema = infer_schema(frame)
    assert schema["empty"].nullable
    result = check_schema(frame, schema)
    assert result.passed  # allowed by the schema, but listed for the reader
    assert "'empty' all_null: expected at least one value" in result.details
    assert "the column is nullable" in result.details
    age_gone = check_schema(frame.assign(age=np.nan), schema)
    assert age_gone.failed
    assert "'age' all_null" in age_gone.message


def test_one_row_dataset_is_checked_row_by_row(adult_holdout, adult_schema):
    one = adult_holdout.head(1)
    assert check_schema(one, adult_schema).passed
    broken = one.assign(age=-1)
    result = check_schema(broken, adult_schema)
    assert result.failed
    assert "'age' in_range: 1 of 1 rows (100.00%)" in result.message


def test_bool_and_datetime_columns():
    frame = pd.DataFrame(
        {
            "flag": [True, False, True],
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
        }
    )
    schema = infer_schema(frame)
    assert schema["when"].min == "2024-01-01T00:00:00"
    assert check_schema(frame, schema).passed
    text = pd.DataFrame(
        {"flag": ["true", "no", "False"], "when": ["2024-01-15", "soon", "2025-01-01"]}
    )
    result = check_schema(text, schema)
    assert violations(result) == {("flag", "dtype"), ("when", "dtype"), ("when", "in_range")}


def test_numbers_in_a_text_column_are_a_dtype_violation():
    schema = infer_schema(small())
    result = check_schema(small().assign(city=[1, 2, 3] * 10), schema)
    assert ("city", "dtype") in violations(result)


def test_check_schema_rejects_other_inputs():
    with pytest.raises(DataError, match="expected a Dataset or a pandas DataFrame, got list"):
        check_schema([1, 2], infer_schema(small()))


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_infer_then_check(tmp_path, capsys, adult_holdout):
    data = tmp_path / "data.csv"
    adult_holdout.head(500).to_csv(data, index=False)
    out = tmp_path / "schema.json"
    assert main(["schema", "infer", str(data), "--target", "income", "-o", str(out)]) == 0
    assert load_schema(out).target == "income"
    assert main(["schema", "check", str(data), "-s", str(out)]) == 0
    bad = tmp_path / "bad.csv"
    adult_holdout.head(50).assign(age=-3).to_csv(bad, index=False)
    assert main(["schema", "check", str(bad), "-s", str(out)]) == 1
    assert "'age' in_range: 50 of 50 rows" in capsys.readouterr().out
    out.write_text(out.read_text().replace('"dtype"', '"dtpye"', 1))
    assert main(["schema", "check", str(data), "-s", str(out)]) == 2
    assert "did you mean 'dtype'?" in capsys.readouterr().err


def test_a_huge_cell_is_never_copied_whole_into_the_result():
    from pytest_mlops.data.schema import check_schema

    frame = pd.DataFrame({"colour": ["red", "blue"] * 50})
    schema = infer_schema(frame)
    bad = frame.copy()
    bad.loc[3, "colour"] = "x" * 100_000
    result = check_schema(bad, schema)
    text = result.message + result.details + json.dumps(result.to_dict())
    assert "'colour' in_set" in result.details
    assert "x" * 200 not in text
    assert "(100000 characters)" in result.details
