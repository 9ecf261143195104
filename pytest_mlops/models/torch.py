"""PyTorch modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_mlops.errors import ModelError
from pytest_mlops.models.base import (
    ArrayLike,
    BaseModel,
    OutputKind,
    Signature,
    TensorSpec,
    n_rows,
    numeric_matrix,
    scores_to_proba,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TorchModel"]


class TorchModel(BaseModel):
    """Wrap an ``nn.Module`` taking one float tensor ``[batch, features]``.

    ``output`` says what the module returns: ``"logits"`` (the default for ``"auto"``; one column
    means binary with a sigmoid, several mean softmax), ``"probabilities"`` or ``"values"``
    (regression).
    """

    kind = "pytorch"

    def __init__(
        self,
        module: Any,
        *,
        output: OutputKind = "auto",
        device: str = "cpu",
        n_features: int | None = None,
        name: str | None = None,
    ) -> None:
        self.module = module
        self.output: OutputKind = "logits" if output == "auto" else output
        self.device = device
        self.n_features = n_features
        self.name = name or type(module).__name__

    @property
    def has_proba(self) -> bool:
        return self.output in ("logits", "probabilities")

    @property
    def task(self) -> Any:
        return "regression" if self.output == "values" else "classification"

    @property
    def signature(self) -> Signature | None:
        n = self.n_features
        if n is None:
            first = next(iter(self.module.parameters()), None)
            n = int(first.shape[-1]) if first is not None and first.ndim == 2 else None
        return Signature((TensorSpec("input", "float32", (None, n)),))

    def raw(self, X: ArrayLike) -> np.ndarray:
        """The module's outputs on *X* as a float64 array (no grad, eval mode)."""
        import numpy as np
        import torch

        array = numeric_matrix(X, "float32", self.describe())
        if not array.flags.writeable:  # pandas' copy-on-write arrays; torch wants writable memory
            array = array.copy()

        def run() -> np.ndarray:
            self.module.eval()
            with torch.no_grad():
                out = self.module(torch.from_numpy(array).to(self.device))
            if not isinstance(out, torch.Tensor):
                raise ModelError(f"{self.describe()} returned {type(out).__name__}, not a tensor")
            return np.asarray(out.detach().cpu().numpy(), dtype=np.float64)

        result: np.ndarray = self._call("forward", run, n_rows(X))
        return result

    @property
    def classes(self) -> np.ndarray | None:
        return None

    def predict(self, X: ArrayLike) -> np.ndarray:
        import numpy as np

        if self.output in ("values", "labels"):
            out = self.raw(X)
            return out.reshape(-1) if out.ndim == 2 and out.shape[1] == 1 else out
        return np.asarray(self.predict_proba(X).argmax(axis=1))

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        if not self.has_proba:
            return super().predict_proba(X)
        return scores_to_proba(self.raw(X), self.output)
