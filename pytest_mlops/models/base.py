"""The one interface every model adapter implements, and the helpers they share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pytest_mlops.errors import DataError, ModelError

if TYPE_CHECKING:
    import numpy as np

ArrayLike = Any  # a pandas DataFrame or a 2-D NumPy array

__all__ = ["BaseModel", "Model", "OutputKind", "Signature", "Task", "TensorSpec"]

Task = Literal["classification", "regression", "unknown"]
OutputKind = Literal["auto", "labels", "probabilities", "logits", "values"]


@dataclass(frozen=True)
class TensorSpec:
    """One model input: its name, element type (``"float32"``, ``"string"``, ``"any"``) and shape."""

    name: str
    dtype: str
    shape: tuple[int | str | None, ...] = (None,)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Signature:
    """The inputs a model takes."""

    inputs: tuple[TensorSpec, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs)

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [spec.to_dict() for spec in self.inputs]}

    def __str__(self) -> str:
        return ", ".join(f"{s.name}: {s.dtype}{list(s.shape)}" for s in self.inputs)


@runtime_checkable
class Model(Protocol):
    """What every check needs of a model.

    ``predict`` returns labels (classification) or values (regression); ``predict_proba`` returns
    one column per class in the order of ``classes`` and raises :class:`ModelError` where the
    model has no probabilities (see ``has_proba``).
    """

    name: str
    kind: str

    @property
    def task(self) -> Task: ...

    @property
    def classes(self) -> np.ndarray | None: ...

    @property
    def signature(self) -> Signature | None: ...

    @property
    def has_proba(self) -> bool: ...

    def predict(self, X: ArrayLike) -> np.ndarray: ...

    def predict_proba(self, X: ArrayLike) -> np.ndarray: ...


class BaseModel:
    """Shared behaviour: error wrapping and the positive-class score for binary metrics."""

    name: str = "model"
    kind: str = "model"

    @property
    def task(self) -> Task:
        return "classification" if self.has_proba or self.classes is not None else "unknown"

    @property
    def classes(self) -> np.ndarray | None:
        return None

    @property
    def signature(self) -> Signature | None:
        return None

    @property
    def has_proba(self) -> bool:
        return False

    def predict(self, X: ArrayLike) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        raise ModelError(
            f"{self.describe()} has no predict_proba: it returns labels or values only"
        )

    def describe(self) -> str:
        return f"{self.kind} model {self.name!r}"

    def _call(self, what: str, fn: Callable[[], Any], n_rows: int, data: Any = None) -> Any:
        """Run the user's model; its exceptions become a ModelError that says where.

        The error also says which columns of *data* hold what models commonly refuse (missing,
        infinite, text values).
        """
        try:
            return fn()
        except (ModelError, DataError):
            raise
        except Exception as exc:
            first = str(exc).strip().splitlines()[0][:300].rstrip(".") if str(exc).strip() else ""
            raise ModelError(
                f"{self.describe()} raised {type(exc).__name__} in {what} on {n_rows} rows: "
                f"{first}{column_problems(data)}"
            ) from exc

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def column_problems(data: Any, shown: int = 3) -> str:
    """``"; in the data: 'age' has 2 missing values (e.g. row 7)..."`` for a DataFrame, else ``""``."""
    import numpy as np
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        return ""
    found: list[str] = []
    for column in data.columns:
        values = data[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
            for what, mask in (("missing", np.isnan(numbers)), ("infinite", np.isinf(numbers))):
                if mask.any():
                    at = values.index[mask][0]
                    found.append(
                        f"{column!r} has {int(mask.sum())} {what} value(s) (e.g. row {at})"
                    )
        elif values.isna().any():
            found.append(f"{column!r} has {int(values.isna().sum())} missing value(s)")
        elif values.dtype == object or pd.api.types.is_string_dtype(values):
            parsed = pd.to_numeric(values, errors="coerce")
            text = parsed.isna() & values.notna()
            if parsed.notna().mean() >= 0.5 and text.any():
                at = values.index[text.to_numpy()][0]
                found.append(
                    f"{column!r} holds text such as {values[at]!r} (row {at}) among numbers"
                )
    if not found:
        return ""
    more = f" and {len(found) - shown} more" if len(found) > shown else ""
    return "; in the data: " + "; ".join(found[:shown]) + more


def n_rows(X: Any) -> int:
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)


def numeric_matrix(X: ArrayLike, dtype: str, model: str) -> np.ndarray:
    """X as a 2-D numeric array, or a DataError naming the non-numeric columns."""
    import numpy as np
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        bad = [
            c
            for c in X.columns
            if not (pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]))
        ]
        if bad:
            raise DataError(
                f"{model} takes one numeric tensor, but the data has non-numeric columns "
                f"{bad[:10]}: encode them first or export the whole pipeline"
            )
        array = np.asarray(X.to_numpy(dtype=dtype))
    else:
        try:
            array = np.asarray(X, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{model} needs numeric input of type {dtype}: {exc}") from None
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    return array


def select_columns(X: ArrayLike, names: Sequence[str], model: str) -> ArrayLike:
    """Keep the columns a model was fitted on, in its order; say which are missing."""
    import pandas as pd

    if not isinstance(X, pd.DataFrame):
        return X
    missing = [n for n in names if n not in X.columns]
    if missing:
        raise DataError(
            f"{model} expects the columns {missing} which the data lacks; "
            f"it has {list(X.columns)[:20]}"
        )
    return X[list(names)]


def scores_to_proba(scores: np.ndarray, output: OutputKind) -> np.ndarray:
    """Turn a network's outputs into class probabilities (one column per class)."""
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores.reshape(-1, 1)
    if output == "logits":
        if scores.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.column_stack([1.0 - p, p])
        shifted = scores - scores.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))
    if scores.shape[1] == 1:
        return np.column_stack([1.0 - scores[:, 0], scores[:, 0]])
    return scores
