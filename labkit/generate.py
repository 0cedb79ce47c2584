"""Batched, length-sorted generation with a progress bar, and GenerationConfig presets.

The course generated one dialogue at a time. Here prompts are tokenized once,
sorted by length (so a batch pads little), generated in batches under
``torch.inference_mode()`` and returned in the caller's order. Right padding
with an attention mask keeps greedy output identical to one-at-a-time output.

For encoder-decoder models on the CPU the two halves want different batches,
so they get them: the encoder is compute-bound and pays for every padding
token, so it runs in small length-packed chunks (``_encoder_chunks``); the
decoder reads all its weights once per step whatever the batch, so it decodes
the whole batch from the stacked encoder states. Measured on flan-t5-base's
shape (``bench/eval_throughput.py``), encoding a sorted batch of 16 at once cost
1.9x the chunked way (12.6 s vs 6.7 s for 32 real dialogues).

``quantize="int8"`` (opt-in, CPU only) runs a dynamically int8-quantized copy of
the model's Linear layers: faster on CPUs, numerically different from fp32, so
``bench/eval_throughput.py`` reports its agreement and ROUGE parity with fp32.

``dtype`` (None: the lab's choice, :mod:`labkit.precision`) runs an fp32 CPU model
as a bf16 copy when bf16 was chosen: where the CPU has fast bf16 (AVX-512 BF16,
AMX), measured, not assumed.
"""
from __future__ import annotations

import copy
import logging
import time
import warnings
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from labkit.config import MAX_SOURCE_TOKENS, LabkitError, suggest, torch_threads

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

# The course's Lab 1 settings: max_new_tokens 50 (and 10 to show truncation),
# sampling at temperatures 0.1 / 0.5 / 1.0.
PRESETS: dict[str, dict[str, Any]] = {
    "greedy": {"max_new_tokens": 50, "do_sample": False},
    "greedy_short": {"max_new_tokens": 10, "do_sample": False},
    "sample_t0.1": {"max_new_tokens": 50, "do_sample": True, "temperature": 0.1},
    "sample_t0.5": {"max_new_tokens": 50, "do_sample": True, "temperature": 0.5},
    "sample_t1.0": {"max_new_tokens": 50, "do_sample": True, "temperature": 1.0},
}
QUANTIZE_MODES = ("int8",)
# Below this size a model's matmuls are too small to split across threads: the
# OpenMP hand-offs cost more than they save, and on a busy shared CPU two
# spinning threads made the offline lab's generation ~8x slower than one (32 s
# vs 4 s for 40 few-shot prompts measured here); with sleeping (passive) threads, two
# were 1.6x slower than one even on an idle machine (3.8 s vs 2.5 s for 200 prompts).
# Larger models keep torch's setting.
SINGLE_THREAD_BELOW_PARAMS = 20_000_000
# The encoder's CPU sweet spot, measured on flan-t5-base's shape: ~1,000 tokens
# per call (a 1-row call of 64 tokens ran 1.6x slower per token, a 16 x 256 one
# 1.3x), and at most 10% padding.
ENCODER_CHUNK_TOKENS = 1024
ENCODER_CHUNK_MAX_PADDING = 0.10


def make_config(config: "str | GenerationConfig | Mapping[str, Any]" = "greedy", **overrides: Any) -> "GenerationConfig":
    """A GenerationConfig from a preset name, a dict of its fields, or a config
    (copied), with ``overrides`` applied (e.g. ``make_config("greedy", max_new_tokens=10)``)."""
    from transformers import GenerationConfig

    if isinstance(config, GenerationConfig):
        fields = config.to_dict()
    elif isinstance(config, str):
        if config not in PRESETS:
            raise LabkitError(
                f"Unknown generation preset {config!r}. Expected one of {', '.join(PRESETS)}, "
                f"a dict such as {{'max_new_tokens': 50}}, or a transformers.GenerationConfig.{suggest(config, list(PRESETS))}"
            )
        fields = dict(PRESETS[config])
    elif isinstance(config, Mapping):
        fields = dict(config)
    else:
        raise LabkitError(
            f"config must be a preset name, a dict or a GenerationConfig, got {type(config).__name__}."
        )
    fields.update(overrides)
    if fields.get("do_sample") and not fields.get("temperature", 1.0) > 0:
        raise LabkitError(
            f"Sampling needs a temperature > 0, got {fields.get('temperature')!r}. Use do_sample=False for greedy decoding."
        )
    return GenerationConfig(**fields)


def sampling_config(temperature: float, max_new_tokens: int = 50) -> "GenerationConfig":
    """The course's sampling setting at one temperature; 0 means greedy."""
    if temperature == 0:
        return make_config("greedy", max_new_tokens=max_new_tokens)
    return make_config({"do_sample": True, "temperature": float(temperature), "max_new_tokens": max_new_tokens})


def quantize_int8(model: "PreTrainedModel") -> "torch.nn.Module":
    """A copy of ``model`` whose Linear layers use dynamic int8 quantization (CPU).

    Uses ``torch.ao.quantization.quantize_dynamic``: deprecated in torch 2.13 in
    favour of torchao, which is not part of this environment; the call still
    works and its deprecation warning is silenced here on purpose.
    """
    import torch

    if any(p.device.type != "cpu" for p in model.parameters()):
        raise LabkitError("quantize='int8' runs on the CPU only. Move the model to the CPU or use quantize=None.")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*deprecat.*")
        from torch.ao.quantization import quantize_dynamic

        # The copy shares the float Linear weights instead of duplicating them (the
        # memo maps each to itself): quantization replaces those modules anyway,
        # and copying ~1 GB first doubled the time on flan-t5-base's shape.
        memo: dict[int, Any] = {}
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                for tensor in (module.weight, module.bias):
                    if tensor is not None:
                        memo[id(tensor)] = tensor
        quantized = quantize_dynamic(copy.deepcopy(model, memo), {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    log.debug("int8 dynamic quantization took %.1f s", time.perf_counter() - start)
    return quantized.eval()


def _check_prompts(prompts: Sequence[str]) -> list[str]:
    if isinstance(prompts, str):
        raise LabkitError("prompts must be a list of strings, got one string. Wrap it: generate(model, tok, [prompt]).")
    out = list(prompts)
    bad = [i for i, p in enumerate(out) if not isinstance(p, str)]
    if bad:
        raise LabkitError(f"prompts must all be strings; item {bad[0]} is a {type(out[bad[0]]).__name__}.")
    return out


def _encode(
    tokenizer: "PreTrainedTokenizerBase", prompts: list[str], max_source_tokens: int
) -> list[list[int]]:
    ids = tokenizer(prompts, add_special_tokens=True)["input_ids"]
    long = [i for i, x in enumerate(ids) if len(x) > max_source_tokens]
    if long:
        # The tokenizer's own truncation keeps the special end token; the cut text
        # is the prompt's end, which is why labkit.prompts budgets prompts first.
        cut = tokenizer([prompts[i] for i in long], truncation=True, max_length=max_source_tokens)["input_ids"]
        for i, c in zip(long, cut):
            ids[i] = c
        log.warning(
            "%d of %d prompts exceeded %d tokens and were truncated at the end (longest: %d). "
            "Build them with labkit.prompts.build_prompt to keep the target dialogue intact.",
            len(long), len(prompts), max_source_tokens, max(len(x) for x in tokenizer([prompts[i] for i in long])["input_ids"]),
        )
    return [list(x) for x in ids]


def _encoder_chunks(lengths: Sequence[int], token_budget: int, max_padding: float) -> list[range]:
    """Split lengths sorted longest first into consecutive chunks whose padded size
    (rows x longest) stays within ``token_budget`` and wastes at most ``max_padding``
    of it on padding. A chunk always holds at least one row."""
    chunks: list[range] = []
    start = 0
    while start < len(lengths):
        end, real = start + 1, lengths[start]
        while end < len(lengths):
            padded = (end - start + 1) * lengths[start]
            if padded > token_budget or real + lengths[end] < (1 - max_padding) * padded:
                break
            real += lengths[end]
            end += 1
        chunks.append(range(start, end))
        start = end
    return chunks


def _prompt_learning(model: Any) -> bool:
    """Whether ``model`` is a peft model with a prompt-learning adapter (prompt tuning, p-tuning, prefix tuning)."""
    config = getattr(model, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


def _generate_batch(runner: Any, tokenizer: Any, rows: list[list[int]], gen_config: Any, device: Any) -> Any:
    """``runner.generate`` on one batch of token-id rows (sorted longest first)."""
    import torch

    # Right padding, built here rather than by tokenizer.pad, whose side is a tokenizer setting.
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    if not (getattr(runner.config, "is_encoder_decoder", False) and device.type == "cpu") or _prompt_learning(runner):
        # A GPU pads for free, and decoder-only models have no separate encoder; a soft prompt (peft prompt
        # tuning) is put before the input inside peft's generate, which must see input_ids.
        return runner.generate(input_ids=input_ids, attention_mask=mask, generation_config=gen_config)
    from transformers.modeling_outputs import BaseModelOutput

    encoder = runner.get_encoder()
    states = None
    for chunk in _encoder_chunks([len(r) for r in rows], ENCODER_CHUNK_TOKENS, ENCODER_CHUNK_MAX_PADDING):
        longest = len(rows[chunk.start])
        part = encoder(
            input_ids=input_ids[chunk.start : chunk.stop, :longest],
            attention_mask=mask[chunk.start : chunk.stop, :longest],
        ).last_hidden_state
        if states is None:
            states = part.new_zeros(len(rows), width, part.shape[-1])
        # Padding positions stay zero; the attention mask hides them from cross-attention.
        states[chunk.start : chunk.stop, :longest] = part
    return runner.generate(
        encoder_outputs=BaseModelOutput(last_hidden_state=states), attention_mask=mask, generation_config=gen_config
    )


def _strip(row: list[int], eos_id: int | None) -> list[int]:
    # generate() returns [decoder_start, tokens..., eos, pad, pad...]: padding only
    # ever follows a finished sequence's eos, so cut after the first eos; a row
    # without eos ran to max_new_tokens and is all generated tokens (even pad ids).
    tokens = row[1:]
    if eos_id is not None and eos_id in tokens:
        return tokens[: tokens.index(eos_id) + 1]
    return tokens


def generate_ids(
    model: "PreTrainedModel",
    tokenizer: "PreTrainedTokenizerBase",
    prompts: Sequence[str],
    config: "str | GenerationConfig | Mapping[str, Any]" = "greedy",
    *,
    batch_size: int = 16,
    max_source_tokens: int = MAX_SOURCE_TOKENS,
    progress: bool = True,
    desc: str = "generating",
    seed: int | None = None,
    quantize: str | None = None,
    dtype: str | None = None,
) -> list[list[int]]:
    """Generated token ids per prompt (decoder start and padding removed, the
    end token kept), in the order of ``prompts``. See ``generate``."""
    import torch
    from tqdm.auto import tqdm

    texts = _check_prompts(prompts)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise LabkitError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise LabkitError(f"quantize must be None or one of {QUANTIZE_MODES}, got {quantize!r}.")
    from labkit import precision

    wanted = None if dtype is None else precision.check_dtype(dtype)
    if quantize is not None and wanted == "bf16":
        raise LabkitError(f"quantize={quantize!r} and dtype='bf16' cannot be combined: pick one (dtype=None with "
                          "quantize, or quantize=None with dtype='bf16').")
    if not texts:
        return []
    gen_config = make_config(config)
    ids = _encode(tokenizer, texts, max_source_tokens)
    # Longest first: the first batch shows the worst-case time and memory at once.
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    runner = quantize_int8(model) if quantize == "int8" else precision.inference_model(model, None if wanted == "auto" else wanted)
    device = next(model.parameters()).device if quantize is None else torch.device("cpu")
    eos_id = tokenizer.eos_token_id
    if seed is not None:
        torch.manual_seed(seed)
    results: list[list[int]] = [[] for _ in texts]
    was_training = runner.training
    runner.eval()
    threads = 1 if sum(p.numel() for p in model.parameters()) < SINGLE_THREAD_BELOW_PARAMS else None
    try:
        with torch_threads(threads), torch.inference_mode(), \
                tqdm(total=len(texts), desc=desc, disable=not progress, leave=False) as bar:
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                out = _generate_batch(runner, tokenizer, [ids[i] for i in batch], gen_config, device)
                for i, row in zip(batch, out.tolist()):
                    results[i] = _strip(row, eos_id)
                bar.update(len(batch))
    finally:
        if was_training:
            runner.train()
    return results


def generate(
    model: "PreTrainedModel",
    tokenizer: "PreTrainedTokenizerBase",
    prompts: Sequence[str],
    config: "str | GenerationConfig | Mapping[str, Any]" = "greedy",
    *,
    batch_size: int = 16,
    max_source_tokens: int = MAX_SOURCE_TOKENS,
    progress: bool = True,
    desc: str = "generating",
    seed: int | None = None,
    quantize: str | None = None,
    dtype: str | None = None,
) -> list[str]:
    """Generate one text per prompt, batched, and return them in input order.

    ``config`` is a preset name (see ``PRESETS``), a dict of GenerationConfig
    fields or a GenerationConfig. Prompts longer than ``max_source_tokens`` are
    truncated with a warning. ``seed`` makes sampling repeatable (same prompts,
    same batch size). ``quantize="int8"`` runs an int8 copy of the model (CPU).
    ``dtype``: "fp32" or "bf16" (a bf16 copy of an fp32 CPU model), "auto" or None for the lab's choice
    (``labkit.precision``; fp32 outside a lab run).
    """
    token_ids = generate_ids(
        model, tokenizer, prompts, config, batch_size=batch_size, max_source_tokens=max_source_tokens,
        progress=progress, desc=desc, seed=seed, quantize=quantize, dtype=dtype,
    )
    return [tokenizer.decode(t, skip_special_tokens=True).strip() for t in token_ids]
