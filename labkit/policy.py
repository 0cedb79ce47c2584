"""The policy PPO and DPO train: a peft seq2seq model with a value head, whose reference is the same model with
its adapter disabled, and the log-probabilities, entropies and KLs of its responses against that reference.

The reference is never a second copy of the weights: ``PolicyWithValueHead.reference_logits`` runs the same
model inside ``peft``'s ``disable_adapter()``. Every quantity is taken at a sampling ``temperature`` (the
distribution ``softmax(logits / temperature)``), so ratios and KLs are those of the distribution that was sampled.
Callers keep the policy in eval mode (dropout off): with dropout, the rollout, the reference and the update
would each see a different random network.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from labkit.config import LabkitError
from labkit.training import lora_config

if TYPE_CHECKING:  # pragma: no cover
    from peft import PeftModel


class ValueHead(nn.Module):
    """V(s) for every decoder position: one Linear(d_model, 1) on the decoder's
    last hidden state (769 parameters at flan-t5-base's d_model 768)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.summary = nn.Linear(d_model, 1)
        # Small initial values: the first advantages are then mostly the reward.
        nn.init.normal_(self.summary.weight, std=1.0 / (d_model + 1))
        nn.init.zeros_(self.summary.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """V(s), (B, L), from the decoder's hidden states (B, L, d_model)."""
        return self.summary(hidden).squeeze(-1)


class PolicyWithValueHead(nn.Module):
    """A peft-wrapped seq2seq model (the policy; with its adapter disabled, the
    reference) plus a value head. Only the adapter and the head train."""

    def __init__(self, model: "PeftModel", value_head: ValueHead | None = None) -> None:
        super().__init__()
        if not hasattr(model, "disable_adapter"):
            raise LabkitError(
                f"The policy needs a peft model (its reference is the same base with the adapter disabled), got "
                f"{type(model).__name__}. Wrap it with labkit.finetune.make_lora_model or peft.get_peft_model."
            )
        self.model = model
        d_model = int(model.config.d_model)
        self.value_head = value_head or ValueHead(d_model)
        self.value_head.to(device=next(model.parameters()).device, dtype=next(model.parameters()).dtype)

    @property
    def device(self) -> torch.device:
        """Where the policy's weights are."""
        return next(self.model.parameters()).device

    def forward(self, batch: "Rollout | dict[str, torch.Tensor]") -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, L, vocab) and values (B, L) of every response position."""
        from labkit import precision

        with precision.autocast(self.device):  # bf16 matmuls, fp32 weights, where bf16 was chosen on the CPU
            out = self.model(
                input_ids=batch["query_ids"], attention_mask=batch["query_mask"],
                decoder_input_ids=batch["decoder_input_ids"], output_hidden_states=True, use_cache=False,
            )
            values = self.value_head(out.decoder_hidden_states[-1].to(self.value_head.summary.weight.dtype))
        return out.logits.float(), values.float()

    def reference_logits(self, batch: "Rollout | dict[str, torch.Tensor]") -> torch.Tensor:
        """The reference's logits (adapter off, no gradient) at every response position, (B, L, vocab)."""
        with torch.no_grad(), self.model.disable_adapter():
            logits, _ = self(batch)
        return logits

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The adapter's and the value head's parameters (the base is frozen)."""
        return [p for p in self.parameters() if p.requires_grad]


def add_value_head(model: "PeftModel") -> PolicyWithValueHead:
    """Wrap a peft seq2seq model with a fresh value head (seeded by the caller)."""
    return PolicyWithValueHead(model)


def policy_from_summarizer(summarizer: "PeftModel", lora: Any, *, seed: int = 0) -> PolicyWithValueHead:
    """PPO's and DPO's policy from a LoRA summarizer: its adapter is merged into the base
    (so "adapter disabled" means exactly the summarizer, the reference), then a
    fresh LoRA adapter (B = 0: policy == reference at step 0) and a value head go on top.

    Consumes ``summarizer`` (peft merges in place; no copy of the weights is made).
    ``lora`` is a ``labkit.lab_settings.lora.LoraSettings``."""
    from peft import get_peft_model

    if not hasattr(summarizer, "merge_and_unload"):
        raise LabkitError(f"Expected the LoRA summarizer (a peft model), got {type(summarizer).__name__}. "
                          "Load it with labkit.cached_summarizer.lora_summarizer(profile).")
    base = summarizer.merge_and_unload()
    for param in base.parameters():
        param.requires_grad_(False)
    config = lora_config(lora, base)
    torch.manual_seed(seed)
    model = get_peft_model(base, config)
    return PolicyWithValueHead(model.eval())


# ----------------------------------------------------------------------------- batches and log-probs


class Rollout(dict):
    """One batch of prompts and responses as the policy reads it: a dict of tensors (B, ...) plus ``texts``.

    Keys: query_ids, query_mask (B, S); response, decoder_input_ids, mask (B, L); PPO's rollout adds
    logprobs, ref_logprobs, values (B, L) and scores, response_kl (B,)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(name) from err

    def select(self, index: torch.Tensor) -> "Rollout":
        """The rows ``index`` of every tensor (texts dropped)."""
        return Rollout({k: v[index] for k, v in self.items() if isinstance(v, torch.Tensor)})


def logprobs_from_logits(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log pi(token) at every position, (B, L), of the distribution softmax(logits / temperature)."""
    return torch.log_softmax(logits.float() / temperature, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def entropy_from_logits(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Entropy of softmax(logits / temperature) at every position, (B, L)."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def reference_logprobs(policy: PolicyWithValueHead, batch: Rollout, temperature: float = 1.0) -> torch.Tensor:
    """Log-probs of the responses under the reference at ``temperature``: the same base model
    with the LoRA adapter switched off for this pass (no second copy of the weights)."""
    return logprobs_from_logits(policy.reference_logits(batch), batch["response"], temperature)


def state_kl(logits: torch.Tensor, ref_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(policy || reference) of the next-token distributions at every position, (B, L), both at
    ``temperature``: sum_v p(v) (log p(v) - log q(v)), exact over the vocabulary (no sampling noise)."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    logq = torch.log_softmax(ref_logits.float() / temperature, dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1)


def response_kl(
    logits: torch.Tensor, ref_logits: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """The exact KL(policy || reference) of every response, (B,): ``state_kl`` at each response position,
    summed over the response ``mask``. Never negative (each state's KL is clipped at 0 against rounding).

    Along responses the policy sampled, its batch mean is an unbiased estimate of KL(policy || reference) per
    response, like the mean of ``sum_t logp - logp_ref`` (the reward's sampled estimate), but with each sampled
    token replaced by the expectation over the vocabulary: lower variance, and it cannot fall below zero, where
    the sampled one can. Computed one row at a time, so it holds at most one row's extra copies of the logits."""
    rows = [(state_kl(logits[i:i + 1], ref_logits[i:i + 1], temperature).clamp_min(0.0) * mask[i:i + 1]).sum(dim=1)
            for i in range(logits.shape[0])]
    return torch.cat(rows) if rows else torch.zeros(0, device=logits.device)
