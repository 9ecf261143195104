"""A plain Python function as a model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pytest_mlops.models.base import ArrayLike, BaseModel, n_rows

if TYPE_CHECKING:
    import numpy as np

__all__ = ["CallableModel"]


class CallableModel(BaseModel):
    """``predict = fn(X)``; optionally ``predict_proba = proba(X)`` with its ``classes``."""

    kind = "callable"

    def __init__(
        self,
        fn: Callable[[Any], Any],
        *,
        proba: Callable[[Any], Any] | None = None,
        classes: Sequence[Any] | None = None,
        name: str | None = None,
    ) -> None:
        self.fn = fn
        self.proba = proba
        self._classes = classes
        self.name = name or str(getattr(fn, "__name__", type(fn).__name__))

    @property
    def classes(self) -> np.ndarray | None:
        import numpy as np

        if self._classes is not None:
            return np.asarray(self._classes)
        return None

    @property
    def has_proba(self) -> bool:
        return self.proba is not None

    def predict(self, X: ArrayLike) -> np.ndarray:
        import numpy as np

        return np.asarray(self._call("predict", lambda: self.fn(X), n_rows(X), X))

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        import numpy as np

        proba = self.proba
        if proba is None:
            return super().predict_proba(X)
        result = np.asarray(
            self._call("predict_proba", lambda: proba(X), n_rows(X), X), dtype=float
        )
        if result.ndim == 1:
            result = np.column_stack([1.0 - result, result])
        return result
