"""A model's parameter counts, trainable and total: what the memory rule, the training loop and the lessons count."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass(frozen=True)
class ParamCount:
    """Trainable and total parameter counts of a model."""

    trainable: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / self.total if self.total else 0.0

    def course_format(self) -> str:
        """The course's wording, e.g. 'trainable model parameters: 3538944 ...'."""
        return (
            f"trainable model parameters: {self.trainable}\n"
            f"all model parameters: {self.total}\n"
            f"percentage of trainable model parameters: {self.percent:.2f}%"
        )

    def as_dict(self) -> dict[str, float]:
        return {"trainable": self.trainable, "total": self.total, "percent": round(self.percent, 4)}


def count_parameters(model: "torch.nn.Module") -> ParamCount:
    """Count unique parameters (tied weights once), trainable and all. A bitsandbytes 4-bit weight
    (``Params4bit``, QLoRA's base) counts the weights it packs, two per byte of storage, as peft does."""
    seen: set[int] = set()
    trainable = total = 0
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        n = param.numel() * (2 * param.element_size() if type(param).__name__ == "Params4bit" else 1)
        total += n
        if param.requires_grad:
            trainable += n
    return ParamCount(trainable=trainable, total=total)
