"""Seeded, tempered sampling of responses from a policy, shared by PPO's rollouts (and their length sampler),
DPO's preference pairs, the lab's before/after evaluation and the lab 3 rubric's re-run of a saved adapter.

The policy samples from its whole next-token distribution at a ``temperature`` (top_k 0, top_p 1: the course's
sampling at temperature 1), with at least ``min_length`` new tokens (the course's generation ``min_length``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from labkit.config import MAX_SOURCE_TOKENS
from labkit.policy import PolicyWithValueHead, Rollout

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

MIN_LENGTH = 5  # the course's generation min_length: no empty summaries


def sample_new_tokens(rng: np.random.Generator, low: int, high: int) -> int:
    """The length sampler of PPO's rollouts: a new-token limit drawn uniformly from [low, high]."""
    return int(rng.integers(low, high + 1))


def response_mask(response: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """1 for response tokens up to and including the first EOS, 0 for the padding after it."""
    is_eos = (response == eos_token_id).long()
    after_eos = (torch.cumsum(is_eos, dim=1) - is_eos) > 0
    return (~after_eos).to(torch.float32)


def sample_responses(
    policy: PolicyWithValueHead,
    tokenizer: "PreTrainedTokenizerBase",
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    min_length: int = MIN_LENGTH,
    max_source_tokens: int = MAX_SOURCE_TOKENS,
    temperature: float = 1.0,
) -> Rollout:
    """Sample one response per prompt from the whole next-token distribution at
    ``temperature`` (top_k 0, top_p 1; temperature 1 is the course's sampling).
    Returns the query/response tensors and decoded texts; no scores yet."""
    from transformers import GenerationConfig

    from labkit import precision

    model = policy.model
    enc = tokenizer(list(prompts), padding=True, truncation=True, max_length=max_source_tokens,
                    return_tensors="pt").to(policy.device)
    config = GenerationConfig(
        do_sample=True, top_k=0, top_p=1.0, temperature=float(temperature), max_new_tokens=max_new_tokens,
        min_new_tokens=min(min_length, max_new_tokens),
        decoder_start_token_id=model.config.decoder_start_token_id,
        pad_token_id=model.config.pad_token_id, eos_token_id=model.config.eos_token_id,
    )
    model.eval()
    runner = precision.inference_model(model)  # a bf16 copy where bf16 was chosen on the CPU, else the model
    with torch.no_grad():
        sequences = runner.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                    generation_config=config)
    del runner
    # sequences = [decoder_start, r_1 .. r_L]: the decoder reads all but the last, predicts all but the first.
    response = sequences[:, 1:]
    texts = tokenizer.batch_decode(response, skip_special_tokens=True)
    return Rollout(query_ids=enc["input_ids"], query_mask=enc["attention_mask"], response=response,
                   decoder_input_ids=sequences[:, :-1],
                   mask=response_mask(response, model.config.eos_token_id).to(policy.device), texts=texts)


def sample_summaries(
    policy: PolicyWithValueHead,
    tokenizer: "PreTrainedTokenizerBase",
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    min_length: int = MIN_LENGTH,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = True,
    temperature: float = 1.0,
) -> list[str]:
    """Sample one summary per prompt with the rollout's sampling (top_k 0, top_p 1, at
    ``temperature``: pass the PPO config's), in batches of ``batch_size``, seeded so "before" and "after" evaluations
    draw the same random numbers. The global RNG is left as it was.

    Each batch is seeded from (``seed``, its first index): the draws of a prompt's row at a
    decoding step are then the same before and after training, whatever the earlier batches
    generated (with one stream, a batch that ran a step longer shifted every later draw). Where
    the policy did not change, the same summary comes out, so the paired before/after difference
    keeps the change and sheds much of the sampling noise (common random numbers)."""
    from tqdm.auto import tqdm

    texts: list[str] = []
    with torch.random.fork_rng(devices=[]):
        for start in tqdm(range(0, len(prompts), batch_size), desc="sampling", disable=not progress):
            torch.manual_seed(int(np.random.SeedSequence([seed, start]).generate_state(1)[0]))
            chunk = list(prompts[start:start + batch_size])
            texts += sample_responses(policy, tokenizer, chunk, max_new_tokens=max_new_tokens,
                                      min_length=min_length, temperature=temperature)["texts"]
    return texts
