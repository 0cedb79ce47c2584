"""A compact DPO (direct preference optimization) for encoder-decoder policies, as Lab 3 uses it beside PPO.

trl's DPO trainer is causal-LM only since its 0.29 refactor, so this is Rafailov et al. (2023) in small
functions, on the policy PPO trains too (``labkit.policy``) and its sampling (``labkit.sampling``):

1. ``sample_pairs``: sample several summaries per training prompt from the policy itself with the
   evaluation's sampling (``labkit.sampling.sample_summaries``), score them with the reward (lab 3 passes the one
   its ``reward`` setting names, one of ``labkit.toxicity.REWARDS``) and ``build_pairs``: the best is
   *chosen*, the worst *rejected*; ties carry no preference and are dropped.
2. ``reference_logprobs``: each response's sequence log-probability (the sum of its token log-probs over the
   response mask) under the reference, which is the *same* model with its LoRA adapter disabled
   (``labkit.policy.reference_logprobs``); computed once, since the reference never changes.
3. ``dpo_loss``: ``-log sigmoid(beta * ((logp_c - ref_c) - (logp_r - ref_r)))``, with the implicit rewards
   ``beta * (logp - ref)`` of chosen and rejected.
4. ``train``: Adam over the adapter, shuffled mini-batches of pairs, a progress bar and a per-step log.

No reward model runs inside the loop: it only ranked the samples once. ``sequence_kl`` measures how far a
trained policy moved from the reference on its own samples (nats per summary), the way PPO's log reports KL:
the exact KL of the next-token distributions at every position, summed over the summary (never negative).
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from labkit.config import MAX_SOURCE_TOKENS, LabkitError
from labkit.lab_settings.detox import DPOSettings
from labkit.policy import PolicyWithValueHead, Rollout, logprobs_from_logits, response_kl
from labkit.policy import reference_logprobs as token_reference_logprobs
from labkit.sampling import sample_summaries
from labkit.atomic import atomic_folder
from labkit.training.run_config import RunConfig

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

Policy = PolicyWithValueHead
ScoreFn = Callable[[Sequence[str]], "np.ndarray | Sequence[float] | torch.Tensor"]
# DPO re-encodes the policy's own samples (at most max_new_tokens, 400 in the course, plus EOS) as targets:
# a cap that never cuts one.
MAX_RESPONSE_TOKENS = 512


# ----------------------------------------------------------------------------- config


@dataclass(frozen=True)
class DPOConfig(DPOSettings, RunConfig):
    """Every knob of one DPO run: a profile's ``DPOSettings`` (inherited) plus the plumbing's.
    ``DPOConfig.from_settings(settings, **overrides)`` builds a validated one."""

    what: ClassVar[str] = "DPO"
    temperature: float = 1.0  # the sampling temperature (PPO's): log-probs are those of the sampled distribution
    max_grad_norm: float = 1.0
    max_source_tokens: int = MAX_SOURCE_TOKENS
    max_target_tokens: int = MAX_RESPONSE_TOKENS
    seed: int = 0

    def problems(self) -> list[str]:
        """Every setting that cannot work, one phrase each."""
        problems = []
        for name in ("dpo_steps", "dpo_batch_size", "dpo_prompts"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.dpo_samples_per_prompt < 2:
            problems.append(f"dpo_samples_per_prompt must be at least 2 to rank a pair "
                            f"(got {self.dpo_samples_per_prompt})")
        if self.dpo_beta <= 0 or self.dpo_learning_rate <= 0 or self.temperature <= 0:
            problems.append(f"dpo_beta ({self.dpo_beta}), dpo_learning_rate ({self.dpo_learning_rate}) and "
                            f"temperature ({self.temperature}) must be positive")
        return problems


# ----------------------------------------------------------------------------- preference pairs


@dataclass(frozen=True)
class PreferencePair:
    """One prompt with two of the policy's own summaries, ranked by the reward model."""

    prompt: str
    chosen: str
    rejected: str
    chosen_score: float
    rejected_score: float


def build_pairs(
    prompts: Sequence[str], candidates: Sequence[Sequence[str]], scores: Sequence[Sequence[float]],
    *, min_margin: float = 0.0,
) -> list[PreferencePair]:
    """One pair per prompt: the candidate with the highest score is chosen, the lowest rejected (the first of
    equal scores wins both ways). A prompt whose best and worst scores are equal (or closer than
    ``min_margin``: a near-tie is noise, not a preference), or whose best and worst texts are the same,
    gives no pair."""
    if not len(prompts) == len(candidates) == len(scores):
        raise LabkitError(f"build_pairs needs one list of candidates and of scores per prompt; got {len(prompts)} "
                          f"prompts, {len(candidates)} candidate lists and {len(scores)} score lists.")
    pairs = []
    for prompt, texts, values in zip(prompts, candidates, scores):
        values = [float(v) for v in values]
        if len(texts) != len(values) or len(texts) < 2:
            raise LabkitError(f"Each prompt needs at least 2 candidates with one score each; got {len(texts)} "
                              f"candidates and {len(values)} scores for {prompt[:60]!r}.")
        best, worst = int(np.argmax(values)), int(np.argmin(values))
        gap = values[best] - values[worst]
        if gap > 0 and gap >= min_margin and texts[best] != texts[worst]:
            pairs.append(PreferencePair(prompt, texts[best], texts[worst], values[best], values[worst]))
    return pairs


def choose_prompts(prompts: Sequence[str], n: int, *, seed: int) -> list[str]:
    """``n`` distinct prompts drawn with a seed (the pairs' prompts)."""
    if n > len(prompts):
        raise LabkitError(f"dpo_prompts={n} is more than the {len(prompts)} training prompts there are. "
                          f"Use dpo_prompts <= {len(prompts)}.")
    index = np.random.default_rng(seed).choice(len(prompts), size=n, replace=False)
    return [prompts[int(i)] for i in sorted(index)]


def sample_pairs(
    policy: Policy,
    tokenizer: "PreTrainedTokenizerBase",
    prompts: Sequence[str],
    score_fn: ScoreFn,
    *,
    samples_per_prompt: int,
    seed: int,
    min_margin: float = 0.0,
    progress: bool = True,
    **sampling: Any,
) -> list[PreferencePair]:
    """Sample ``samples_per_prompt`` summaries per prompt from ``policy`` with ``sample_summaries`` (pass
    the same ``sampling`` keywords the evaluation uses, e.g. ``max_new_tokens``, ``min_length``), score them
    with ``score_fn`` (the reward: higher is better) and ``build_pairs`` (pairs closer than ``min_margin`` dropped)."""
    repeated = [p for p in prompts for _ in range(samples_per_prompt)]
    texts = sample_summaries(policy, tokenizer, repeated, seed=seed, progress=progress, **sampling)
    values = np.asarray(score_fn(texts), dtype=np.float64).reshape(len(prompts), samples_per_prompt)
    grouped = [texts[i * samples_per_prompt:(i + 1) * samples_per_prompt] for i in range(len(prompts))]
    pairs = build_pairs(prompts, grouped, values.tolist(), min_margin=min_margin)
    if not pairs:
        raise LabkitError(f"No preference pairs: for each of the {len(prompts)} prompts all {samples_per_prompt} "
                          f"samples scored the same (or within dpo_min_margin={min_margin}). Raise "
                          "dpo_samples_per_prompt or dpo_prompts, or lower dpo_min_margin.")
    log.info("%d preference pairs from %d prompts x %d samples", len(pairs), len(prompts), samples_per_prompt)
    return pairs


def pairs_table(pairs: Sequence[PreferencePair]) -> "Any":
    """The pairs as a pandas DataFrame (prompt, chosen, rejected, their scores and word counts)."""
    import pandas as pd

    table = pd.DataFrame([asdict(p) for p in pairs],
                         columns=["prompt", "chosen", "rejected", "chosen_score", "rejected_score"])
    table["chosen_words"] = table["chosen"].str.split().str.len()
    table["rejected_words"] = table["rejected"].str.split().str.len()
    return table


# ----------------------------------------------------------------------------- sequence log-probs


def encode_responses(
    policy: Policy,
    tokenizer: "PreTrainedTokenizerBase",
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    max_source_tokens: int = MAX_SOURCE_TOKENS,
    max_target_tokens: int = MAX_RESPONSE_TOKENS,
) -> Rollout:
    """The batch a policy reads (``labkit.policy.Rollout``), for given (prompt, response) texts: the tokenized prompts,
    the response tokens (ending in EOS), the decoder inputs (shifted right) and the response mask."""
    if len(prompts) != len(responses):
        raise LabkitError(f"Need one response per prompt, got {len(prompts)} prompts and {len(responses)} responses.")
    enc = tokenizer(list(prompts), padding=True, truncation=True, max_length=max_source_tokens, return_tensors="pt")
    target = tokenizer(list(responses), padding=True, truncation=True, max_length=max_target_tokens,
                       return_tensors="pt")
    response = target["input_ids"]
    start = torch.full_like(response[:, :1], int(policy.model.config.decoder_start_token_id))
    device = policy.device
    return Rollout(query_ids=enc["input_ids"].to(device), query_mask=enc["attention_mask"].to(device),
                       response=response.to(device),
                       decoder_input_ids=torch.cat([start, response[:, :-1]], dim=1).to(device),
                       mask=target["attention_mask"].to(device=device, dtype=torch.float32))


def sequence_logprobs(policy: Policy, batch: Rollout, temperature: float = 1.0) -> torch.Tensor:
    """log pi(response | prompt) of each row, (B,): token log-probs (of softmax(logits / temperature), the
    distribution sampled) summed over the response mask. Gradients flow (the training pass)."""
    policy.model.eval()  # dropout off, as in PPO: the reference and the policy see the same network
    logits, _ = policy(batch)
    return (logprobs_from_logits(logits, batch["response"], temperature) * batch["mask"]).sum(dim=1)


def reference_logprobs(policy: Policy, batch: Rollout, temperature: float = 1.0) -> torch.Tensor:
    """The same sums under the reference: the policy's base with the adapter disabled (``policy.reference_logprobs``)."""
    policy.model.eval()
    return (token_reference_logprobs(policy, batch, temperature) * batch["mask"]).sum(dim=1)


def _batched(fn: Callable[..., torch.Tensor], policy: Policy, tokenizer: "PreTrainedTokenizerBase",
             prompts: Sequence[str], responses: Sequence[str], batch_size: int, temperature: float,
             **encode: Any) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            batch = encode_responses(policy, tokenizer, prompts[start:start + batch_size],
                                     responses[start:start + batch_size], **encode)
            out.append(fn(policy, batch, temperature).float().cpu())
    return torch.cat(out) if out else torch.zeros(0)


def sequence_log_ratio(
    policy: Policy, tokenizer: "PreTrainedTokenizerBase", prompts: Sequence[str], responses: Sequence[str],
    *, temperature: float = 1.0, batch_size: int = 32,
) -> np.ndarray:
    """``log pi(y|x) - log pi_ref(y|x)`` of each response, in nats (at the sampling ``temperature``): the
    sampled estimate of the KL. Its mean over responses the policy sampled estimates KL(policy || reference)
    per summary, but one response's value, and on few responses even the mean, can be negative; the KL a lab
    reports is ``sequence_kl``."""
    policy_lp = _batched(sequence_logprobs, policy, tokenizer, prompts, responses, batch_size, temperature)
    ref_lp = _batched(reference_logprobs, policy, tokenizer, prompts, responses, batch_size, temperature)
    return (policy_lp - ref_lp).numpy().astype(np.float64)


def _response_kl(policy: Policy, batch: Rollout, temperature: float = 1.0) -> torch.Tensor:
    policy.model.eval()
    logits, _ = policy(batch)
    return response_kl(logits, policy.reference_logits(batch), batch["mask"], temperature)


def sequence_kl(
    policy: Policy, tokenizer: "PreTrainedTokenizerBase", prompts: Sequence[str], responses: Sequence[str],
    *, temperature: float = 1.0, batch_size: int = 8,
) -> np.ndarray:
    """The exact KL(policy || reference) along each response, in nats (at the sampling ``temperature``):
    at every position of the response, the KL of the two next-token distributions over the whole vocabulary
    (``labkit.policy.state_kl``), summed over the response's tokens (``labkit.policy.response_kl``). Never
    negative. For responses the policy itself sampled, the mean estimates KL(policy || reference) per summary, as
    PPO's log reports ``kl``: for PPO's and DPO's policies alike it says how far training moved them."""
    return _batched(_response_kl, policy, tokenizer, prompts, responses, batch_size, temperature).numpy().astype(np.float64)


# ----------------------------------------------------------------------------- the loss


def dpo_loss(
    policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor, ref_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Rafailov et al. (2023), eq. 7: mean of ``-log sigmoid(beta * ((logp_c - ref_c) - (logp_r - ref_r)))``
    over the pairs (sequence log-probs, each (B,)). Also returns the implicit rewards ``beta * (logp - ref)``
    of chosen and rejected (B,), their margin and whether the chosen one is ahead (accuracy)."""
    chosen_reward = beta * (policy_chosen - ref_chosen)
    rejected_reward = beta * (policy_rejected - ref_rejected)
    margin = chosen_reward - rejected_reward
    loss = -F.logsigmoid(margin).mean()
    return loss, {"chosen_reward": chosen_reward.detach(), "rejected_reward": rejected_reward.detach(),
                  "margin": margin.detach(), "accuracy": (margin > 0).float().detach()}


# ----------------------------------------------------------------------------- training


@dataclass
class PairTensors:
    """The pairs with their reference log-probs, computed once before training."""

    pairs: list[PreferencePair]
    ref_chosen: torch.Tensor    # (N,)
    ref_rejected: torch.Tensor  # (N,)


def prepare_pairs(policy: Policy, tokenizer: "PreTrainedTokenizerBase", pairs: Sequence[PreferencePair],
                  config: DPOConfig, *, batch_size: int = 32) -> PairTensors:
    """The reference log-probs of every chosen and rejected response (adapter disabled, no gradients)."""
    prompts = [p.prompt for p in pairs]
    encode = {"max_source_tokens": config.max_source_tokens, "max_target_tokens": config.max_target_tokens}
    ref_c = _batched(reference_logprobs, policy, tokenizer, prompts, [p.chosen for p in pairs], batch_size,
                     config.temperature, **encode)
    ref_r = _batched(reference_logprobs, policy, tokenizer, prompts, [p.rejected for p in pairs], batch_size,
                     config.temperature, **encode)
    return PairTensors(list(pairs), ref_c, ref_r)


def dpo_step(policy: Policy, tokenizer: "PreTrainedTokenizerBase", optimizer: torch.optim.Optimizer,
             data: PairTensors, index: Sequence[int], config: DPOConfig) -> dict[str, float]:
    """One optimizer step on the pairs ``index``: chosen and rejected through the policy in one batch, the DPO
    loss against the stored reference log-probs, gradient clipping. Returns the step's means."""
    started = time.perf_counter()
    chosen = [data.pairs[i] for i in index]
    batch = encode_responses(policy, tokenizer, [p.prompt for p in chosen] * 2,
                             [p.chosen for p in chosen] + [p.rejected for p in chosen],
                             max_source_tokens=config.max_source_tokens, max_target_tokens=config.max_target_tokens)
    logp = sequence_logprobs(policy, batch, config.temperature)
    n = len(chosen)
    idx = torch.as_tensor(list(index))
    ref_c, ref_r = data.ref_chosen[idx].to(logp.device), data.ref_rejected[idx].to(logp.device)
    loss, stats = dpo_loss(logp[:n], logp[n:], ref_c, ref_r, config.dpo_beta)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
    optimizer.step()
    return {"loss": float(loss.detach()), "accuracy": float(stats["accuracy"].mean()),
            "margin": float(stats["margin"].mean()), "chosen_reward": float(stats["chosen_reward"].mean()),
            "rejected_reward": float(stats["rejected_reward"].mean()),
            "chosen_logp": float(logp[:n].detach().mean()), "rejected_logp": float(logp[n:].detach().mean()),
            "seconds": time.perf_counter() - started}


def pair_batches(n_pairs: int, batch_size: int, steps: int, generator: torch.Generator) -> list[list[int]]:
    """``steps`` index groups of ``min(batch_size, n_pairs)``: shuffled passes over the pairs, each pair once
    per pass (a pass's last short group is topped up from the next pass)."""
    size = min(batch_size, n_pairs)
    order: list[int] = []
    while len(order) < steps * size:
        order += torch.randperm(n_pairs, generator=generator).tolist()
    return [order[k * size:(k + 1) * size] for k in range(steps)]


def make_optimizer(policy: Policy, config: DPOConfig) -> torch.optim.Optimizer:
    """Adam over the LoRA adapter only (the base is frozen; a PPO value head, if any, plays no part)."""
    params = [p for p in policy.model.parameters() if p.requires_grad]
    if not params:
        raise LabkitError("The policy has no trainable parameters: DPO trains its LoRA adapter. Build it with "
                          "labkit.policy.policy_from_summarizer.")
    return torch.optim.Adam(params, lr=config.dpo_learning_rate)


def train(
    policy: Policy,
    tokenizer: "PreTrainedTokenizerBase",
    pairs: Sequence[PreferencePair],
    config: DPOConfig,
    *,
    steps: int | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Run ``steps`` (default ``config.dpo_steps``) DPO steps over ``pairs`` and return the per-step log
    (step, loss, accuracy, margin, chosen/rejected implicit rewards and log-probs, seconds). The first
    entry's ``seconds`` includes the reference log-probs. With ``checkpoint_dir``, the adapter is saved
    there at the end (peft ``save_pretrained``, atomically)."""
    from tqdm.auto import tqdm

    config = config.validated()
    steps = config.dpo_steps if steps is None else int(steps)
    if not pairs:
        raise LabkitError("DPO needs at least one preference pair; see dpo.sample_pairs.")
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    data = prepare_pairs(policy, tokenizer, pairs, config)
    optimizer = make_optimizer(policy, config)
    batches = pair_batches(len(pairs), config.dpo_batch_size, steps, torch.Generator().manual_seed(config.seed))
    history: list[dict[str, float]] = []
    bar = tqdm(batches, desc="DPO", disable=not progress)
    for step, index in enumerate(bar, start=1):
        entry = {"step": step, **dpo_step(policy, tokenizer, optimizer, data, index, config)}
        if step == 1:
            entry["seconds"] = time.perf_counter() - started
        history.append(entry)
        bar.set_postfix(loss=f"{entry['loss']:.3f}", acc=f"{entry['accuracy']:.2f}")
        log.debug("dpo step %s", entry)
    bar.close()
    if checkpoint_dir is not None:
        with atomic_folder(checkpoint_dir) as tmp:
            policy.model.save_pretrained(tmp)
    return history


# ----------------------------------------------------------------------------- PPO vs DPO


def method_summary(
    texts: Sequence[str],
    hate: Sequence[float],
    references: Sequence[str],
    vocab: set[str],
    *,
    hate_before: Sequence[float] | None = None,
    kl: Sequence[float] | None = None,
    seconds: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """One row of the PPO vs DPO table for the summaries one policy sampled on the held-out prompts: mean
    P(hate), with ``hate_before`` the paired-bootstrap change and its 95% CI (``toxicity.paired_bootstrap``),
    words per summary, in-vocabulary and degenerate shares (``metrics.text_quality``), ROUGE-1 against the
    references, the mean exact KL to the reference (``sequence_kl``: never negative) and the training wall time."""
    from labkit import metrics, toxicity

    hate = np.asarray(hate, dtype=np.float64)
    quality = metrics.text_quality(list(texts), vocab)
    row: dict[str, Any] = {"toxicity": float(hate.mean()), "change": None, "change_ci": None,
                           "mean_words": quality.mean_words, "in_vocabulary_share": quality.in_vocabulary_share,
                           "degenerate_share": quality.degenerate_share,
                           "rouge1": metrics.rouge(list(texts), list(references), seed=seed).scores["rouge1"],
                           "kl": float(np.mean(kl)) if kl is not None else 0.0, "seconds": seconds}
    if hate_before is not None:
        change = toxicity.paired_bootstrap(hate_before, hate, seed=seed)
        row["change"], row["change_ci"] = change["mean_difference"], change["ci"]
    return row


def comparison_table(rows: dict[str, dict[str, Any]]) -> "Any":
    """The rows of ``method_summary`` as a DataFrame, one row per method, with the toxicity change's CI as two
    columns and the length ratio to the first row (the summaries before training)."""
    import pandas as pd

    first_words = float(next(iter(rows.values()))["mean_words"])
    records = []
    for name, row in rows.items():
        low, high = row.get("change_ci") or (None, None)
        records.append({"method": name, "toxicity": row["toxicity"], "change": row.get("change"), "ci_low": low,
                        "ci_high": high, "mean_words": row["mean_words"],
                        "length_ratio": float(row["mean_words"]) / first_words if first_words else None,
                        "in_vocabulary_share": row["in_vocabulary_share"], "degenerate_share": row["degenerate_share"],
                        "rouge1": row["rouge1"], "kl": row["kl"], "seconds": row.get("seconds")})
    return pd.DataFrame(records).set_index("method")
