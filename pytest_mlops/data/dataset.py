"""``Dataset``: a frame with a target and sensitive features, checked when it is made."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from pytest_mlops.errors import DataError, did_you_mean

__all__ = ["Dataset", "frame_of"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Rows to test a model on.

    Parameters
    ----------
    frame:
        All columns, features and target alike.
    target:
        The label column, if the data has one (production data may not).
    sensitive:
        Columns that define groups for fairness checks.
    features:
        The model's input columns; by default every column but the target.
    name, source:
        How messages refer to the data: ``"current"``, and the file it came from.
    """

    frame: pd.DataFrame
    target: str | None = None
    sensitive: tuple[str, ...] = ()
    features: tuple[str, ...] | None = None
    name: str = "data"
    source: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sensitive", _as_tuple(self.sensitive))
        if self.features is not None:
            object.__setattr__(self, "features", _as_tuple(self.features))
        if len(self.frame.columns) == 0 or len(self.frame) == 0:
            raise DataError(f"{self.describe()} is empty: it has no rows")
        columns = [str(c) for c in self.frame.columns]
        wanted = [("target column", c) for c in ([self.target] if self.target else [])]
        wanted += [("sensitive column", c) for c in self.sensitive]
        wanted += [("feature column", c) for c in (self.features or ())]
        for role, column in wanted:
            if column not in columns:
                raise DataError(
                    f"{self.describe()} has no {role} {column!r}{did_you_mean(column, columns)}; "
                    f"its columns are {columns[:30]}"
                )

    def describe(self) -> str:
        where = f" ({self.source})" if self.source else ""
        return f"dataset {self.name!r}{where}"

    @property
    def n_rows(self) -> int:
        return len(self.frame)

    @property
    def feature_names(self) -> tuple[str, ...]:
        if self.features is not None:
            return self.features
        return tuple(str(c) for c in self.frame.columns if c != self.target)

    @property
    def X(self) -> pd.DataFrame:
        """The model's input columns."""
        return self.frame[list(self.feature_names)]

    @property
    def y(self) -> pd.Series:
        """The target column; a DataError if the dataset has none."""
        if self.target is None:
            raise DataError(f"{self.describe()} has no target column: set 'target'")
        return self.frame[self.target]

    @property
    def has_target(self) -> bool:
        return self.target is not None

    @property
    def sensitive_features(self) -> pd.DataFrame:
        return self.frame[list(self.sensitive)]

    def subset(self, mask: Sequence[bool] | pd.Series, name: str | None = None) -> Dataset:
        """The rows where *mask* holds, with the same roles."""
        return Dataset(
            self.frame.loc[mask].reset_index(drop=True),
            target=self.target,
            sensitive=self.sensitive,
            features=self.features,
            name=name or self.name,
            source=self.source,
        )

    def fingerprint(self) -> str:
        """A sha256 of the contents (column names, dtypes and values), independent of the file."""
        digest = hashlib.sha256()
        digest.update(repr([(str(c), str(t)) for c, t in self.frame.dtypes.items()]).encode())
        hashed = pd.util.hash_pandas_object(self.frame, index=False).to_numpy()
        digest.update(hashed.tobytes())
        return "sha256:" + digest.hexdigest()

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, rows={self.n_rows}, columns={len(self.frame.columns)}, "
            f"target={self.target!r}, sensitive={list(self.sensitive)})"
        )


def frame_of(data: Dataset | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows of a :class:`Dataset` or a DataFrame, and how messages name them.

    Parameters
    ----------
    data:
        What a check was given.

    Returns
    -------
    tuple
        The frame, and ``dataset.describe()`` for a Dataset or ``"the data"`` for a DataFrame.

    Raises
    ------
    DataError
        When *data* is neither.
    """
    if isinstance(data, Dataset):
        return data.frame, data.describe()
    if isinstance(data, pd.DataFrame):
        return data, "the data"
    raise DataError(f"expected a Dataset or a pandas DataFrame, got {type(data).__name__}")


def _as_tuple(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)
