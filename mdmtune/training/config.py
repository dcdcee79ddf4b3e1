"""The reference MDM's training budget and size: plain data, so the `mdmtune train` command can show its defaults
without importing torch (mdmtune.training.loop does the training and re-exports this)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mdmtune.errors import InvalidInput

MODEL_SIZE_FIELDS = ("d_model", "n_layers", "n_heads", "d_ff")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and model size. Defaults train a ~0.8M-parameter model; `steps` sets the budget."""

    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    grad_clip: float = 1.0
    eps: float = 1e-3
    seed: int = 0
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 512

    def model_size(self) -> dict[str, int]:
        """The fields that size the network (d_model, n_layers, n_heads, d_ff), as ReferenceConfig names them."""
        return {name: getattr(self, name) for name in MODEL_SIZE_FIELDS}

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise InvalidInput(name, f"must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InvalidInput("lr", f"must be a positive number, got {self.lr}")
        if not 0 < self.eps < 1:
            raise InvalidInput("eps", f"must lie in (0, 1), got {self.eps}")
        if self.warmup_steps < 0:
            raise InvalidInput("warmup_steps", f"must be >= 0, got {self.warmup_steps}")
