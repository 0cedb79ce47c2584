"""Batches for training loops: which rows go together, and padding them.

* ``bucketed_batches``: fixed-size batches of similar length, a pure function of
  (seed, epoch) so a resumed run replays them (``labkit.finetune``);
* ``token_budget_batches``: batches of similar length under a padded-token
  budget, so short and long prompts both fill a step (the fixtures' pre-training);
* ``collate``: pad a batch to its longest input and label (labels with -100).
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Sequence

from labkit.config import LabkitError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def bucketed_batches(lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int, bucket_batches: int = 16) -> list[list[int]]:
    """Index batches of similar length: shuffle, cut into buckets of
    ``bucket_batches`` batches, sort each bucket by length, split, then shuffle
    the batch order. A pure function of (seed, epoch), so resume can replay it."""
    if batch_size < 1:
        raise LabkitError(f"batch_size must be >= 1, got {batch_size}.")
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * bucket_batches
    batches = []
    for start in range(0, len(order), span):
        bucket = sorted(order[start:start + span], key=lambda i: lengths[i])
        batches.extend(bucket[i:i + batch_size] for i in range(0, len(bucket), batch_size))
    rng.shuffle(batches)
    return batches


def collate(examples: Sequence[dict[str, list[int]]], pad_token_id: int) -> dict[str, "torch.Tensor"]:
    """Pad a batch to its longest input/label; label padding is -100 (ignored by the loss)."""
    import torch

    src_len = max(len(e["input_ids"]) for e in examples)
    tgt_len = max(len(e["labels"]) for e in examples)
    ids = torch.full((len(examples), src_len), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(examples), src_len), dtype=torch.long)
    labels = torch.full((len(examples), tgt_len), -100, dtype=torch.long)
    for row, ex in enumerate(examples):
        ids[row, : len(ex["input_ids"])] = torch.tensor(ex["input_ids"])
        mask[row, : len(ex["input_ids"])] = 1
        labels[row, : len(ex["labels"])] = torch.tensor(ex["labels"])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def token_budget_batches(lengths: Sequence[int], max_tokens: int, rng: random.Random, *, window: int = 256) -> list[list[int]]:
    """Index batches of similar length, each at most ``max_tokens`` once padded.

    Rows are shuffled, sorted by length within windows of ``window`` rows, cut
    where another row would push ``rows x longest`` past the budget, and the
    batches shuffled: short prompts travel in big batches, long few-shot prompts
    in small ones, and little compute goes to padding.
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        batch: list[int] = []
        for i in sorted(order[start : start + window], key=lambda i: (lengths[i], i)):
            if batch and (len(batch) + 1) * lengths[i] > max_tokens:
                batches.append(batch)
                batch = []
            batch.append(i)
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches
