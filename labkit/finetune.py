"""A model for each fine-tuning method of lab 2: full fine-tuning, LoRA, prompt tuning and QLoRA.

``make_full_model(base)``, ``make_lora_model(base, lora)`` and
``make_prompt_tuning_model(base, n, ...)`` each return a *new* model (the base
is deep-copied first, so the original and each tuned model stay distinct
models; the course's ``get_peft_model(original_model, ...)`` silently turned its
baseline into the adapter model); ``make_qlora_model(profile, lora, ...)`` loads
a fresh 4-bit base. What differs between the methods is only which parameters
have ``requires_grad`` -- every weight for full fine-tuning, only the adapter for
LoRA and QLoRA, only the soft prompt for prompt tuning -- so one loop trains
them all: :func:`labkit.training.loop.train`, which lab 2 calls as ``finetune.train`` beside the model
makers (``finetune.TrainConfig`` likewise). The peft configs come from
:mod:`labkit.training.lora`, :mod:`labkit.training.prompt_tuning` and
:mod:`labkit.training.qlora`.
"""
from __future__ import annotations

import copy
import os
from typing import TYPE_CHECKING

from labkit.config import Profile
from labkit.lab_settings.lora import LoraSettings
from labkit.training.lora import lora_config
# The course's memory rule of thumb, named here as well: lab 2's exercise and lab 1's text call it
# finetune.estimate_memory. Its home is labkit.training.memory.
from labkit.training.memory import estimate_memory  # noqa: F401
from labkit.training.loop import TrainConfig, TrainResult, train  # noqa: F401  (lab 2 trains every method with finetune.train)

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from peft import PeftModel
    from transformers import PreTrainedModel

# The soft prompt starts as the embeddings of the summarize instruction (the first line of labs 2 and 3's prompt).
PROMPT_INIT_TEXT = "Summarize the following conversation."


def make_full_model(base_model: "PreTrainedModel") -> "PreTrainedModel":
    """A deep copy of ``base_model`` with every parameter trainable (full fine-tuning).
    The base is left untouched."""
    model = copy.deepcopy(base_model)
    for param in model.parameters():
        param.requires_grad_(True)
    return model.train()


def make_lora_model(base_model: "PreTrainedModel", lora: LoraSettings, *, seed: int | None = None) -> "PeftModel":
    """A LoRA model (peft, task SEQ_2_SEQ_LM, bias "none") on a deep copy of
    ``base_model``; the base keeps its type, modules and weights.

    ``seed`` makes the adapter's random init repeatable (lora_B starts at 0,
    so the new model first computes exactly what the base does).
    """
    import torch
    from peft import get_peft_model

    config = lora_config(lora, base_model)
    if seed is not None:
        torch.manual_seed(seed)
    # peft injects layers in place: it must only ever see a copy.
    return get_peft_model(copy.deepcopy(base_model), config)


def make_prompt_tuning_model(base_model: "PreTrainedModel", num_virtual_tokens: int, *,
                             init_text: str | None, tokenizer_path: str | os.PathLike[str] | None,
                             seed: int | None = None) -> "PeftModel":
    """A prompt-tuning model (peft ``PromptTuningConfig``, task SEQ_2_SEQ_LM) on a deep copy of ``base_model``:
    every weight of the model is frozen and only the soft prompt, ``num_virtual_tokens`` vectors for the encoder
    and as many for the decoder (peft's layout), is trainable. ``init_text`` (the summarize instruction in the lab)
    initialises the vectors from its tokens' embeddings, tokenized by the tokenizer at ``tokenizer_path``; None
    draws them at random (with ``seed``). See :mod:`labkit.training.prompt_tuning`.
    """
    import torch
    from peft import get_peft_model

    from labkit.training.prompt_tuning import prompt_tuning_config

    config = prompt_tuning_config(num_virtual_tokens, init_text, None if tokenizer_path is None else str(tokenizer_path),
                                  base_model)
    if seed is not None:
        torch.manual_seed(seed)
    return get_peft_model(copy.deepcopy(base_model), config)


def make_qlora_model(profile: Profile | str, lora: LoraSettings, *, device: "torch.device | str",
                     seed: int | None = None) -> "PeftModel":
    """QLoRA: the course's LoRA (``lora``) on a *fresh* load of the profile's summarizer with its linear layers
    in 4-bit NF4, double quantization and bf16 compute (:func:`labkit.training.qlora.load_4bit_seq2seq`). Check
    :func:`qlora_support` first; train the model before generating with it (bitsandbytes' CPU trap, see
    :mod:`labkit.training.qlora`)."""
    import torch
    from peft import get_peft_model

    from labkit.training.qlora import load_4bit_seq2seq

    base = load_4bit_seq2seq(profile, device)
    config = lora_config(lora, base)
    if seed is not None:
        torch.manual_seed(seed)
    return get_peft_model(base, config)

