"""The example's model: a scikit-learn pipeline that predicts income > 50K on UCI Adult.

``model()`` is the factory named in pyproject.toml (``model = "credit_model:model"``): it trains
the pipeline on the reference split with a fixed seed, so every run sees the same model.
``baseline()`` stands for the model in production that the candidate must not fall behind (the
``champion`` gate): the same pipeline trained on an earlier, smaller extract of the data.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = Path(__file__).parent
TRAIN = HERE / "data" / "train.csv.gz"
TARGET = "income"
NUMERIC = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
CATEGORICAL = [
    "workclass",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native_country",
]
FEATURES = NUMERIC + CATEGORICAL


def build() -> Pipeline:
    """The untrained pipeline."""
    encode = ColumnTransformer(
        [
            ("numeric", StandardScaler(), NUMERIC),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                CATEGORICAL,
            ),
        ]
    )
    return Pipeline([("encode", encode), ("classify", LogisticRegression(max_iter=1000))])


def train(frame: pd.DataFrame) -> Pipeline:
    """Fit the pipeline on *frame* (deterministic: the solver has no randomness)."""
    return build().fit(frame[FEATURES], frame[TARGET])


@functools.lru_cache(maxsize=1)
def model() -> Pipeline:
    """The factory pytest-mlops calls: the pipeline trained on the reference split."""
    return train(pd.read_csv(TRAIN))


@functools.lru_cache(maxsize=1)
def baseline() -> Pipeline:
    """The champion to beat: the same pipeline trained on a seeded 10% sample of the reference."""
    frame = pd.read_csv(TRAIN)
    return train(frame.sample(frac=0.1, random_state=0))
