"""Write the example's data: scikit-learn's bundled breast-cancer set, split 70/30 with a fixed seed.

Run once (``python prepare_data.py``); the two files are checked in, so the example needs no
download and every run sees the same rows.
"""

from __future__ import annotations

from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

HERE = Path(__file__).parent


def main() -> None:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    train, holdout = train_test_split(
        frame, test_size=0.3, random_state=0, stratify=frame["target"]
    )
    (HERE / "data").mkdir(exist_ok=True)
    train.to_csv(HERE / "data" / "train.csv.gz", index=False, float_format="%.6g")
    holdout.to_csv(HERE / "data" / "holdout.csv.gz", index=False, float_format="%.6g")


if __name__ == "__main__":
    main()
