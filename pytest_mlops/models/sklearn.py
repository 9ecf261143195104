"""scikit-learn estimators and pipelines (and anything with the same API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_mlops.models.base import (
    ArrayLike,
    BaseModel,
    Signature,
    TensorSpec,
    n_rows,
    select_columns,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["SklearnModel"]


class SklearnModel(BaseModel):
    """Wrap a fitted estimator: ``predict`` and, where it has one, ``predict_proba``."""

    kind = "scikit-learn"

    def __init__(self, estimator: Any, name: str | None = None) -> None:
        self.estimator = estimator
        self.name = name or type(estimator).__name__

    @property
    def classes(self) -> np.ndarray | None:
        classes = getattr(self.estimator, "classes_", None)
        return None if classes is None else classes

    @property
    def has_proba(self) -> bool:
        return hasattr(self.estimator, "predict_proba")

    @property
    def task(self) -> Any:
        if self.classes is not None:
            return "classification"
        return (
            "regression"
            if getattr(self.estimator, "_estimator_type", "") == "regressor"
            else "unknown"
        )

    @property
    def signature(self) -> Signature | None:
        names = getattr(self.estimator, "feature_names_in_", None)
        if names is not None:
            return Signature(tuple(TensorSpec(str(n), "any", (None,)) for n in names))
        n = getattr(self.estimator, "n_features_in_", None)
        return None if n is None else Signature((TensorSpec("X", "float", (None, int(n))),))

    def _inputs(self, X: ArrayLike) -> ArrayLike:
        names = getattr(self.estimator, "feature_names_in_", None)
        return X if names is None else select_columns(X, [str(n) for n in names], self.describe())

    def predict(self, X: ArrayLike) -> np.ndarray:
        import numpy as np

        inputs = self._inputs(X)
        return np.asarray(
            self._call("predict", lambda: self.estimator.predict(inputs), n_rows(X), inputs)
        )

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        import numpy as np

        if not self.has_proba:
            return super().predict_proba(X)
        inputs = self._inputs(X)
        return np.asarray(
            self._call(
                "predict_proba", lambda: self.estimator.predict_proba(inputs), n_rows(X), inputs
            )
        )
