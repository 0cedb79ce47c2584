"""Tiny models of the course's architectures for the benchmarks' quick modes (``--quick``).

flan-t5-base's gated-GELU T5 with its separate ``lm_head`` and the RoBERTa reward classifier, each a few
layers of width 32 instead of 768: a quick run goes through the same labkit code as the full run (the same
builders, loaders, loops and stand-in layout) in seconds, on a CPU, with no download. Its figures mean nothing;
it is there so that a refactor that breaks a benchmark fails ``make test`` (``tests/test_benches.py``).

Not a benchmark itself (the leading underscore keeps it out of ``tests/test_benches.py``'s list).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

# Width and depth of the tiny T5 and RoBERTa; every other setting is the published configuration's.
TINY_T5 = {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 4}
TINY_ROBERTA = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}


def t5_config(quick: bool) -> Any:
    """flan-t5-base's published configuration, made tiny with ``quick``."""
    from labkit.models import flan_t5_base_config

    config = flan_t5_base_config()
    for name, value in (TINY_T5 if quick else {}).items():
        setattr(config, name, value)
    return config


def roberta_config(quick: bool) -> Any:
    """The reward model's configuration (roberta-base, labels nothate/hate), made tiny with ``quick``."""
    from labkit.standin import roberta_classifier_config

    config = roberta_classifier_config()
    for name, value in (TINY_ROBERTA if quick else {}).items():
        setattr(config, name, value)
    return config


def flan_t5_base_shaped(quick: bool, seed: int = 0) -> Any:
    """``labkit.models.build_flan_t5_base_shaped`` (random weights, separate lm_head), tiny with ``quick``."""
    import torch
    from transformers import T5ForConditionalGeneration

    from labkit.models import build_flan_t5_base_shaped, untie_lm_head

    if not quick:
        return build_flan_t5_base_shaped(seed=seed)
    torch.manual_seed(seed)
    return untie_lm_head(T5ForConditionalGeneration(t5_config(True)))


def roberta_classifier(quick: bool, seed: int = 1) -> Any:
    """A random RoBERTa sequence classifier of the reward model's shape (tiny with ``quick``), in eval mode."""
    import torch
    from transformers import RobertaForSequenceClassification

    torch.manual_seed(seed)
    return RobertaForSequenceClassification(roberta_config(quick)).eval()


def build_standin(directory: str | Path, quick: bool) -> dict[str, Any]:
    """The course-shaped stand-in in ``directory`` (``labkit.standin.build``), with tiny models when ``quick``."""
    from labkit import standin

    if not quick:
        return standin.build(directory)
    return standin.build(directory, t5_config=t5_config(True), roberta_config=roberta_config(True))
