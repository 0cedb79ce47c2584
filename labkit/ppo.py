"""A compact, readable PPO for encoder-decoder (seq2seq) policies, as Lab 3 uses it.

trl removed its seq2seq PPO, so this is the classic algorithm (Ziegler et al.
2019, as trl 0.4 ran it in the course) in small functions. The policy with its
value head and its reference is ``labkit.policy``; sampling is ``labkit.sampling``.

1. ``rollout``: sample responses from the policy (a LoRA adapter on the summarizer) with a
   length sampled per batch; keep per-token log-probs and values (``ValueHead`` on the decoder's
   last hidden state), all at the sampling ``temperature`` (the course: 1, the full distribution).
2. The reference is the *same* model with the adapter disabled (``peft``'s ``disable_adapter()``,
   ``PolicyWithValueHead.reference_logits``): no second copy of the weights.
3. ``compute_rewards``: per-token penalty ``-beta * (logp - logp_ref)`` plus the score of ``reward_fn``
   on the last response token (lab 3 passes the reward its ``reward`` setting names: ``toxicity.REWARDS``).
4. ``gae``: advantages (gamma 1, lambda ``lam``: trl's 0.95 in the course), then ``whiten``.
5. ``ppo_update``: for ``ppo_epochs`` over mini-batches, the clipped policy loss and clipped value
   loss (``policy_loss``, ``value_loss``), gradient clipping. With ``kl_loss_coef`` > 0 the loss also
   carries the exact KL to the reference at every visited state (``state_kl``; 0, the classic and the
   course's, leaves the KL to the reward alone). The reward's KL is one sampled token's estimate per
   position; the exact one also holds back tokens that were not sampled, such as a first word that
   would start a summary of some other dialogue.
6. ``AdaptiveKLController``: beta *= 1 + clip(KL/target - 1, -0.2, 0.2) * n/horizon, where KL is
   the batch mean of the penalty's ``sum_t logp - logp_ref`` (the classic sampled estimate).

The log's ``kl`` is the KL to the reference a learner reads: the exact KL of the next-token
distributions at every position of each sampled response, summed over the response
(``response_kl``); never negative. The controller's sampled estimate, a mean of log-ratios of
sampled tokens that can fall below zero, is logged beside it as ``kl_sampled``; both estimate
the same KL per response.

``train`` drives it with a progress bar, a per-step log and resumable
checkpoints (adapter + value head + optimizer + KL controller + RNG). Every pass
runs with dropout off (see ``labkit.policy``): the ratio starts at 1, the KL at 0.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Iterator, Sequence

import numpy as np
import torch

from labkit.config import MAX_SOURCE_TOKENS, LabkitError
from labkit.lab_settings.detox import PPOSettings
from labkit.policy import PolicyWithValueHead, Rollout, entropy_from_logits, logprobs_from_logits, response_kl, state_kl
from labkit.sampling import MIN_LENGTH, sample_new_tokens, sample_responses
from labkit.atomic import atomic_folder
from labkit.training import checkpoint
from labkit.training.run_config import RunConfig

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

VALUE_HEAD_FILE = "value_head.safetensors"
TRAINER_STATE_FILE = "trainer_state.pt"
LOG_FILE = "ppo_log.json"
RewardFn = Callable[[Sequence[str]], "np.ndarray | Sequence[float] | torch.Tensor"]


# ----------------------------------------------------------------------------- config


@dataclass(frozen=True)
class PPOConfig(PPOSettings, RunConfig):
    """Every knob of one PPO run: a profile's ``PPOSettings`` (inherited, so the
    defaults live in one place) plus the classic defaults of trl 0.4, which the
    course used. ``PPOConfig.from_settings(settings, **overrides)`` builds a validated one."""

    what: ClassVar[str] = "PPO"
    min_length: int = MIN_LENGTH  # the course's generation min_length: no empty summaries
    horizon: int = 10_000
    gamma: float = 1.0
    cliprange: float = 0.2
    cliprange_value: float = 0.2
    vf_coef: float = 0.1
    max_grad_norm: float = 1.0
    max_source_tokens: int = MAX_SOURCE_TOKENS
    seed: int = 0

    def problems(self) -> list[str]:
        """Every setting that cannot work, one phrase each."""
        problems = []
        if self.batch_size < 1 or self.mini_batch_size < 1 or self.ppo_epochs < 1:
            problems.append("batch_size, mini_batch_size and ppo_epochs must be at least 1")
        elif self.batch_size % self.mini_batch_size:
            problems.append(f"batch_size ({self.batch_size}) must be a multiple of mini_batch_size ({self.mini_batch_size})")
        if not 1 <= self.min_new_tokens <= self.max_new_tokens:
            problems.append(f"need 1 <= min_new_tokens ({self.min_new_tokens}) <= max_new_tokens ({self.max_new_tokens})")
        if self.learning_rate <= 0 or self.init_kl_coef < 0 or self.target_kl <= 0:
            problems.append("learning_rate and target_kl must be positive and init_kl_coef non-negative")
        if not 0 <= self.lam <= 1:
            problems.append(f"lam (GAE's lambda) must be in [0, 1], got {self.lam} (trl's default: 0.95)")
        if not 0 < self.temperature <= 2:
            problems.append(f"temperature must be in (0, 2], got {self.temperature} (1: the full distribution, as the course)")
        return problems


# ----------------------------------------------------------------------------- rollout


def rollout(
    policy: PolicyWithValueHead,
    tokenizer: "PreTrainedTokenizerBase",
    prompts: Sequence[str],
    reward_fn: RewardFn,
    *,
    max_new_tokens: int,
    min_length: int = MIN_LENGTH,
    max_source_tokens: int = MAX_SOURCE_TOKENS,
    temperature: float = 1.0,
) -> Rollout:
    """Sample responses at ``temperature`` and collect everything the update needs: old
    log-probs and values (policy), reference log-probs (adapter off) and the scores; and,
    for the log, ``response_kl``: each response's exact KL to the reference (B,)."""
    batch = sample_responses(policy, tokenizer, prompts, max_new_tokens=max_new_tokens, min_length=min_length,
                             max_source_tokens=max_source_tokens, temperature=temperature)
    with torch.no_grad():
        logits, values = policy(batch)
        batch["logprobs"] = logprobs_from_logits(logits, batch["response"], temperature)
        batch["values"] = values.float()
        ref_logits = policy.reference_logits(batch)
        batch["ref_logprobs"] = logprobs_from_logits(ref_logits, batch["response"], temperature)
        batch["response_kl"] = response_kl(logits, ref_logits, batch["mask"], temperature)
        del logits, ref_logits
    scores = reward_fn(batch["texts"])
    batch["scores"] = torch.as_tensor(np.asarray(scores, dtype=np.float32), device=policy.device)
    return batch


# ----------------------------------------------------------------------------- math


def compute_rewards(
    scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards ``-beta * (logp - logp_ref)``, plus ``scores`` on each
    response's last token. Returns (rewards, kl), both (B, L) and zero on padding."""
    kl = (logprobs - ref_logprobs) * mask
    rewards = -beta * kl
    last = mask.long().sum(dim=1) - 1
    rewards[torch.arange(len(scores)), last] += scores
    return rewards * mask, kl


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over the response tokens.

    delta_t = r_t + gamma V_{t+1} - V_t (V after the last token = 0),
    A_t = delta_t + gamma lambda A_{t+1}; returns = A + V. Padding (mask 0,
    always at the end) gets 0. Returns (advantages, returns), both (B, L)."""
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    length = rewards.shape[1]
    for t in reversed(range(length)):
        next_value = values[:, t + 1] if t + 1 < length else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


def whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over the unmasked entries; padding stays 0."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return (x - mean) * torch.rsqrt(var + eps) * mask


def policy_loss(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, cliprange: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate: mean of max(-A r, -A clip(r, 1-eps, 1+eps)),
    r = exp(logp - logp_old). Returns (loss, fraction of tokens clipped)."""
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    return loss, masked_mean((clipped > unclipped).float(), mask)


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, cliprange_value: float = 0.2
) -> torch.Tensor:
    """Clipped value loss: 0.5 * mean of max((V - R)^2, (V_clip - R)^2), where
    V_clip stays within ``cliprange_value`` of the rollout's values."""
    clipped = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)


class AdaptiveKLController:
    """beta *= 1 + clip(KL / target - 1, -0.2, 0.2) * n_steps / horizon (Ziegler et al. 2019).
    KL above the target raises the penalty, below lowers it, by at most 20 % per horizon."""

    def __init__(self, init_kl_coef: float, target: float, horizon: int) -> None:
        self.value, self.target, self.horizon = float(init_kl_coef), float(target), int(horizon)

    def update(self, current_kl: float, n_steps: int) -> float:
        error = float(np.clip(current_kl / self.target - 1.0, -0.2, 0.2))
        self.value *= 1.0 + error * n_steps / self.horizon
        return self.value

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value, self.target, self.horizon = float(state["value"]), float(state["target"]), int(state["horizon"])


class FixedKLController(AdaptiveKLController):
    """A constant beta (adaptive_kl=False)."""

    def update(self, current_kl: float, n_steps: int) -> float:
        return self.value


def make_kl_controller(config: PPOConfig) -> AdaptiveKLController:
    cls = AdaptiveKLController if config.adaptive_kl else FixedKLController
    return cls(config.init_kl_coef, config.target_kl, config.horizon)


# ----------------------------------------------------------------------------- one step


def minibatches(batch_size: int, mini_batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Shuffled index groups of ``mini_batch_size`` covering the batch once."""
    order = torch.randperm(batch_size, generator=generator)
    yield from order.split(mini_batch_size)


def ppo_update(
    policy: PolicyWithValueHead,
    optimizer: torch.optim.Optimizer,
    batch: Rollout,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    config: PPOConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """``ppo_epochs`` passes over shuffled mini-batches: clipped policy + vf_coef *
    clipped value loss (+ kl_loss_coef * the mean state KL to the reference, when set),
    gradient clipping, one optimizer step per mini-batch.
    Returns the mean losses, entropy and clip fraction over all mini-batches."""
    totals: dict[str, float] = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "clipfrac": 0.0, "kl_loss": 0.0}
    count = 0
    params = policy.trainable_parameters()
    policy.model.eval()  # dropout off: see labkit.policy
    for _ in range(config.ppo_epochs):
        for index in minibatches(len(batch["scores"]), config.mini_batch_size, generator):
            mb = batch.select(index)
            logits, values = policy(mb)
            values = values.float()
            logprobs = logprobs_from_logits(logits, mb["response"], config.temperature)
            entropy = entropy_from_logits(logits, config.temperature)
            mask = mb["mask"]
            pg, clipfrac = policy_loss(logprobs, mb["logprobs"], advantages[index], mask, config.cliprange)
            vf = value_loss(values, mb["values"], returns[index], mask, config.cliprange_value)
            loss = pg + config.vf_coef * vf
            kl_term = torch.zeros(())
            if config.kl_loss_coef > 0:
                kl_term = masked_mean(state_kl(logits, policy.reference_logits(mb), config.temperature), mask)
                loss = loss + config.kl_loss_coef * kl_term
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            for key, value in (("policy_loss", pg), ("value_loss", vf), ("clipfrac", clipfrac),
                               ("entropy", masked_mean(entropy, mask)), ("kl_loss", kl_term)):
                totals[key] += float(value.detach())
            count += 1
    return {key: value / count for key, value in totals.items()}


@dataclass
class TrainState:
    """What a resumed run needs besides the weights: the step, the KL
    controller, the RNGs and the log so far."""

    step: int
    kl_controller: AdaptiveKLController
    rng: np.random.Generator
    generator: torch.Generator
    log: list[dict[str, float]] = field(default_factory=list)


def new_state(config: PPOConfig) -> TrainState:
    """A fresh run's state; seeds torch's global RNG (used by sampling) with config.seed."""
    torch.manual_seed(config.seed)  # also seeds CUDA
    return TrainState(step=0, kl_controller=make_kl_controller(config), rng=np.random.default_rng(config.seed),
                      generator=torch.Generator().manual_seed(config.seed))


def ppo_step(
    policy: PolicyWithValueHead,
    tokenizer: "PreTrainedTokenizerBase",
    optimizer: torch.optim.Optimizer,
    prompts: Sequence[str],
    reward_fn: RewardFn,
    config: PPOConfig,
    state: TrainState,
) -> dict[str, float]:
    """One PPO iteration on a batch of ``config.batch_size`` prompts drawn from
    ``prompts``: rollout, rewards with KL penalty, GAE, update, KL controller.
    Appends and returns the step's log entry (``seconds``: the step's wall time)."""
    started = time.perf_counter()
    index = state.rng.choice(len(prompts), size=config.batch_size, replace=len(prompts) < config.batch_size)
    max_new = sample_new_tokens(state.rng, config.min_new_tokens, config.max_new_tokens)
    batch = rollout(policy, tokenizer, [prompts[i] for i in index], reward_fn, max_new_tokens=max_new,
                    min_length=config.min_length, max_source_tokens=config.max_source_tokens,
                    temperature=config.temperature)
    beta = state.kl_controller.value
    mask = batch["mask"]
    rewards, kl = compute_rewards(batch["scores"], batch["logprobs"], batch["ref_logprobs"], mask, beta)
    advantages, returns = gae(rewards, batch["values"], mask, config.gamma, config.lam)
    advantages = whiten(advantages, mask)
    losses = ppo_update(policy, optimizer, batch, advantages, returns, config, state.generator)
    # The controller reads the classic sampled estimate (the sum of the penalty's logp - logp_ref), as trl does;
    # the log reports the exact KL along the same responses ("kl", never negative) beside it ("kl_sampled").
    kl_sampled = float(kl.sum(dim=1).mean())
    state.kl_controller.update(kl_sampled, config.batch_size)
    state.step += 1
    entry = {"step": state.step, "reward_mean": float(batch["scores"].mean()),
             "reward_std": float(batch["scores"].std()) if len(batch["scores"]) > 1 else 0.0,
             "kl": float(batch["response_kl"].mean()), "kl_sampled": kl_sampled, "beta": beta, **losses,
             "response_tokens": float(mask.sum(dim=1).mean()),
             "seconds": time.perf_counter() - started}
    state.log.append(entry)
    return entry


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    policy: PolicyWithValueHead, optimizer: torch.optim.Optimizer, state: TrainState, directory: str | Path
) -> Path:
    """Write the adapter (peft ``save_pretrained``), ``value_head.safetensors``, the optimizer + KL controller +
    RNG state and the log as the folder ``directory``, atomically (a kill mid-save leaves the previous one)."""
    from safetensors.torch import save_file

    with atomic_folder(directory) as tmp:
        policy.model.save_pretrained(tmp)
        save_file({k: v.detach().cpu().contiguous() for k, v in policy.value_head.state_dict().items()},
                  tmp / VALUE_HEAD_FILE)
        checkpoint.save_state(tmp / TRAINER_STATE_FILE, {
            "step": state.step, "optimizer": optimizer.state_dict(), "kl_controller": state.kl_controller.state_dict(),
            "generator": state.generator.get_state(), "sampler": state.rng.bit_generator.state})
        (tmp / LOG_FILE).write_text(json.dumps(state.log, indent=1), encoding="utf-8")
    return Path(directory)


def load_checkpoint(
    policy: PolicyWithValueHead, optimizer: torch.optim.Optimizer, config: PPOConfig, directory: str | Path
) -> TrainState:
    """Restore what ``save_checkpoint`` wrote into ``policy`` and ``optimizer``
    and return the TrainState to continue from (RNGs included)."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    src = Path(directory)
    missing = [name for name in ("adapter_model.safetensors", VALUE_HEAD_FILE, TRAINER_STATE_FILE)
               if not (src / name).is_file()]
    if missing:
        raise LabkitError(f"{src} is not a complete PPO checkpoint (missing {', '.join(missing)}). "
                          "Start without resume, or point to the folder save_checkpoint wrote.")
    device = policy.device
    set_peft_model_state_dict(policy.model, load_file(src / "adapter_model.safetensors", device=str(device)))
    policy.value_head.load_state_dict(load_file(src / VALUE_HEAD_FILE, device=str(device)))
    saved = checkpoint.load_state(src / TRAINER_STATE_FILE, restore_rng=False)
    optimizer.load_state_dict(saved["optimizer"])
    state = new_state(config)  # seeds torch: the saved RNG states are put back after it
    state.step = int(saved["step"])
    state.kl_controller.load_state_dict(saved["kl_controller"])
    checkpoint.restore_rng_state(saved["rng"])
    state.generator.set_state(saved["generator"])
    state.rng.bit_generator.state = saved["sampler"]
    state.log = json.loads((src / LOG_FILE).read_text(encoding="utf-8")) if (src / LOG_FILE).is_file() else []
    return state


# ----------------------------------------------------------------------------- driver


def make_optimizer(policy: PolicyWithValueHead, config: PPOConfig) -> torch.optim.Optimizer:
    """Adam over the adapter and the value head (the base stays frozen)."""
    return torch.optim.Adam(policy.trainable_parameters(), lr=config.learning_rate)


def train(
    policy: PolicyWithValueHead,
    tokenizer: "PreTrainedTokenizerBase",
    prompts: Sequence[str],
    reward_fn: RewardFn,
    config: PPOConfig,
    *,
    steps: int,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Run PPO until ``steps`` steps are done and return the per-step log
    (step, reward_mean, kl: the exact KL to the reference per response, kl_sampled: the controller's
    sampled estimate, beta, policy_loss, value_loss, entropy, ...).

    With ``checkpoint_dir``, a checkpoint is written there when the run ends and, with
    ``checkpoint_every`` (as in ``labkit.training.loop``: N >= 1, or None for none), also every N steps;
    ``resume=True`` continues from the checkpoint there, so a resumed run repeats an uninterrupted one."""
    from tqdm.auto import tqdm

    config = config.validated()
    if checkpoint_every is not None and checkpoint_every < 1:
        raise LabkitError(f"checkpoint_every must be >= 1 or None, got {checkpoint_every!r}.")
    if not prompts:
        raise LabkitError("PPO needs at least one prompt; check the prompt filter and split.")
    optimizer = make_optimizer(policy, config)
    if resume and checkpoint_dir is not None and (Path(checkpoint_dir) / TRAINER_STATE_FILE).is_file():
        state = load_checkpoint(policy, optimizer, config, checkpoint_dir)
        log.info("resumed PPO from %s at step %d", checkpoint_dir, state.step)
    else:
        state = new_state(config)
    bar = tqdm(total=steps, initial=min(state.step, steps), desc="PPO", disable=not progress)
    saved_at = None
    while state.step < steps:
        entry = ppo_step(policy, tokenizer, optimizer, prompts, reward_fn, config, state)
        bar.update(1)
        bar.set_postfix(reward=f"{entry['reward_mean']:.2f}", kl=f"{entry['kl']:.2f}")
        log.debug("ppo step %s", entry)
        if checkpoint_dir is not None and checkpoint_every is not None and state.step % checkpoint_every == 0:
            save_checkpoint(policy, optimizer, state, checkpoint_dir)
            saved_at = state.step
    bar.close()
    if checkpoint_dir is not None and saved_at != state.step:  # the run's end, unless just saved
        save_checkpoint(policy, optimizer, state, checkpoint_dir)
    return list(state.log)
