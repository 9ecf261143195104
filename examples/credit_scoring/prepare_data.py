"""Turn the UCI Adult files into the two CSVs this example ships (data/train.csv.gz, data/holdout.csv.gz).

The shipped CSVs are the output of this script; run it again to rebuild them from the original files:

    python prepare_data.py path/to/adult.data.gz path/to/adult.test.gz

What it changes: adds a header with snake_case names, turns "?" into empty (missing) cells,
strips the test file's first line and the trailing "." of its labels, and encodes the target
``income`` as 1 (>50K) and 0 (<=50K). Rows and values are otherwise as published.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
]
HERE = Path(__file__).parent


def read_uci(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(
        path,
        header=None,
        names=COLUMNS,
        sep=",",
        skipinitialspace=True,
        na_values=["?"],
        comment="|",
    )
    frame["income"] = frame["income"].str.rstrip(".").map({">50K": 1, "<=50K": 0}).astype("int64")
    return frame


def main(train_src: str, test_src: str) -> None:
    for src, name in ((train_src, "train"), (test_src, "holdout")):
        frame = read_uci(Path(src))
        out = HERE / "data" / f"{name}.csv.gz"
        frame.to_csv(out, index=False, compression={"method": "gzip", "mtime": 0})
        print(f"{out}: {len(frame)} rows")


if __name__ == "__main__":
    main(*sys.argv[1:3])
