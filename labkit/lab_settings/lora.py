"""The shape of a LoRA adapter (course: r=32, alpha 32, q and v, dropout 0.05): lab 2 trains one, lab 3 starts from one."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoraSettings:
    """LoRA hyperparameters (course: r=32, alpha=32, q/v, dropout 0.05)."""

    r: int = 32
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q", "v")
