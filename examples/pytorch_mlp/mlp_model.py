"""The example's model: a small PyTorch MLP that tells malignant from benign tumours.

``model()`` is the factory named in pyproject.toml (``model = "mlp_model:model"``): it trains the
network on the reference split with a fixed seed, so every run sees the same weights. The
standardisation is part of the module (as buffers), so the exported ONNX graph takes the raw
feature values, exactly like the module.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

HERE = Path(__file__).parent
TRAIN = HERE / "data" / "train.csv.gz"
TARGET = "target"


class MLP(nn.Module):
    """Standardise, then two hidden layers; outputs two logits (benign, malignant)."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, hidden: int = 32) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.layers = nn.Sequential(
            nn.Linear(len(mean), hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers((x - self.mean) / self.scale)


def train(frame: pd.DataFrame, *, epochs: int = 300, seed: int = 0) -> MLP:
    """Fit the network on *frame* (full-batch Adam, deterministic on CPU)."""
    torch.manual_seed(seed)
    X = frame.drop(columns=[TARGET]).to_numpy(np.float32)
    y = torch.tensor(frame[TARGET].to_numpy(np.int64))
    net = MLP(X.mean(axis=0), X.std(axis=0) + 1e-6)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-4)
    inputs = torch.from_numpy(X.copy())
    for _ in range(epochs):
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(net(inputs), y)
        loss.backward()
        optimiser.step()
    return net.eval()


@functools.lru_cache(maxsize=1)
def model() -> MLP:
    """The factory pytest-mlops calls: the network trained on the reference split."""
    return train(pd.read_csv(TRAIN))
