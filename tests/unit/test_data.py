from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from pytest_mlops import DataError, Dataset, load_dataset
from pytest_mlops.data.validation import check_columns


def test_csv_with_roles(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,sex,y\n1,2,F,0\n3,4,M,1\n")
    data = load_dataset(path, target="y", sensitive="sex")
    assert data.n_rows == 2
    assert data.feature_names == ("a", "b", "sex")
    assert list(data.y) == [0, 1]
    assert list(data.sensitive_features.columns) == ["sex"]
    assert data.name == "d.csv"
    assert data.source == str(path)


def test_compressed_csv_and_parquet_give_the_same_fingerprint(tmp_path, adult_holdout):
    frame = adult_holdout.head(500)
    frame.to_csv(tmp_path / "d.csv.gz", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    from_csv = load_dataset(tmp_path / "d.csv.gz", target="income")
    from_parquet = load_dataset(tmp_path / "d.parquet", target="income")
    assert from_csv.fingerprint() == from_parquet.fingerprint()
    changed = frame.copy()
    changed.loc[0, "age"] += 1
    assert load_dataset(changed, target="income").fingerprint() != from_csv.fingerprint()


def test_arrays_and_dicts():
    data = load_dataset(np.arange(6).reshape(3, 2), y=[0, 1, 0])
    assert data.feature_names == ("x0", "x1")
    assert data.target == "target"
    assert load_dataset({"a": [1, 2], "y": [0, 1]}, target="y").n_rows == 2


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match=r"the dataset file '.*nope\.csv' does not exist"):
        load_dataset(tmp_path / "nope.csv")


def test_missing_target_suggests_the_closest_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("age,Income\n1,0\n")
    with pytest.raises(DataError) as info:
        load_dataset(path, target="income")
    message = str(info.value)
    assert "d.csv" in message
    assert "no target column 'income'" in message
    assert "did you mean 'Income'" in message


def test_unreadable_encoding_says_what_to_set(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("name,y\nJos\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"cannot decode .*latin.csv.* as utf-8.*set 'encoding'"):
        load_dataset(path, target="y")
    assert load_dataset(path, target="y", encoding="latin-1").frame["name"][0] == "José"


@pytest.mark.parametrize(
    ("content", "expected"), [("", "is empty"), ("a,b\n", "header but no rows")]
)
def test_empty_files(tmp_path, content, expected):
    path = tmp_path / "e.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=expected):
        load_dataset(path)


def test_truncated_gzip_is_a_data_error(tmp_path, adult_holdout):
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt") as handle:
        adult_holdout.head(2000).to_csv(handle, index=False)
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(DataError, match=r"cannot parse .*t.csv.gz"):
        load_dataset(path)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "d.xlsx"
    path.write_text("x")
    with pytest.raises(DataError, match=r"unknown file type '.xlsx'"):
        load_dataset(path)


def test_empty_frame_is_refused():
    with pytest.raises(DataError, match="is empty"):
        Dataset(pd.DataFrame({"a": []}))


def test_subset_keeps_roles(adult_holdout):
    data = load_dataset(adult_holdout, target="income", sensitive=["sex"], name="current")
    women = data.subset(data.frame["sex"] == "Female", name="women")
    assert set(women.frame["sex"]) == {"Female"}
    assert women.target == "income"
    assert women.n_rows == int((adult_holdout["sex"] == "Female").sum())


def test_check_columns_lists_every_missing_column(adult_holdout):
    data = load_dataset(adult_holdout, target="income", name="current")
    result = check_columns(data, ["age", "sexx", "incom", "zzz"])
    assert result.failed
    assert result.value == 3
    assert "'sexx' - did you mean 'sex'?" in result.message
    assert "'incom' - did you mean 'income'?" in result.message
    assert [r["column"] for r in result.tables["columns"] if not r["present"]] == [
        "sexx",
        "incom",
        "zzz",
    ]
    assert check_columns(data, ["age", "sex"]).passed
