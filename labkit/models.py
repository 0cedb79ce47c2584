"""Load the profile's models through ``from_pretrained``, count parameters, and
build the flan-t5-base-shaped test model.

Both profiles go through the same ``from_pretrained`` calls; the offline
profile just points them at the local fixture directories (built on first use).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit.config import LabkitError, Profile, choose_device, choose_dtype, get_profile

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, T5Config, T5ForConditionalGeneration


def _resolve(profile: Profile | str | None) -> Profile:
    resolved = get_profile(profile) if not isinstance(profile, Profile) else profile
    if resolved.uses_fixtures:
        from labkit import fixtures

        fixtures.ensure()
    return resolved


def _from_pretrained(loader: Any, name: str, what: str, *, fixture: bool = False, **kwargs: Any) -> Any:
    try:
        return loader.from_pretrained(name, **kwargs)
    except Exception as err:
        if fixture:  # a local file we built: the network advice below would mislead
            raise LabkitError(
                f"Could not load the {what} from the offline fixtures in {name} ({type(err).__name__}). "
                "The cache looks damaged: rebuild it with 'labkit fixtures --force' in a terminal "
                "(or '!labkit fixtures --force' in a cell, about 2 minutes), then re-run this cell."
            ) from err
        if not isinstance(err, OSError):
            raise
        raise LabkitError(
            f"Could not load the {what} from {name!r} ({err.__class__.__name__}). "
            "The course profile downloads it from the Hugging Face Hub and needs a network; "
            "use profile='offline' to run with the local models (built by 'labkit fixtures')."
        ) from err


def load_tokenizer(profile: Profile | str | None = None) -> "PreTrainedTokenizerBase":
    """The summarizer's tokenizer for a profile."""
    from transformers import AutoTokenizer

    p = _resolve(profile)
    return _from_pretrained(AutoTokenizer, p.tokenizer, "tokenizer", fixture=p.uses_fixtures)


def load_seq2seq(
    profile: Profile | str | None = None,
    device: "torch.device | str | None" = None,
    dtype: "torch.dtype | None" = None,
) -> "PreTrainedModel":
    """The profile's original summarizer (eval mode) on ``device`` in ``dtype``
    (defaults: best available device; bf16 on capable GPUs, fp32 otherwise)."""
    from transformers import AutoModelForSeq2SeqLM

    p = _resolve(profile)
    dev = choose_device() if device is None else device
    model = _from_pretrained(AutoModelForSeq2SeqLM, p.model, "summarization model", fixture=p.uses_fixtures, dtype=dtype or choose_dtype(dev))
    return model.to(dev).eval()


def load_toxicity_classifier(
    profile: Profile | str | None = None, device: "torch.device | str | None" = None
) -> tuple["PreTrainedModel", "PreTrainedTokenizerBase"]:
    """The hate-speech classifier and its tokenizer (fp32: it is small, and
    rewards should not carry bf16 rounding)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    p = _resolve(profile)
    dev = choose_device() if device is None else device
    model = _from_pretrained(AutoModelForSequenceClassification, p.toxicity_model, "toxicity classifier", fixture=p.uses_fixtures)
    tokenizer = _from_pretrained(AutoTokenizer, p.toxicity_model, "toxicity classifier's tokenizer", fixture=p.uses_fixtures)
    return model.to(dev).eval(), tokenizer


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
    """Count unique parameters (tied weights once), trainable and all."""
    seen: set[int] = set()
    trainable = total = 0
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return ParamCount(trainable=trainable, total=total)


def flan_t5_base_config(vocab_size: int = 32128) -> "T5Config":
    """flan-t5-base's published configuration (no download)."""
    from transformers import T5Config

    return T5Config(
        vocab_size=vocab_size, d_model=768, d_kv=64, d_ff=2048, num_layers=12, num_decoder_layers=12,
        num_heads=12, relative_attention_num_buckets=32, relative_attention_max_distance=128,
        dropout_rate=0.1, layer_norm_epsilon=1e-6, feed_forward_proj="gated-gelu",
        tie_word_embeddings=False, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )


def build_flan_t5_base_shaped(seed: int = 0, vocab_size: int = 32128) -> "T5ForConditionalGeneration":
    """A randomly initialised model with flan-t5-base's exact shape, for tests and
    benchmarks. transformers 5 ties ``lm_head`` to the shared embedding when a T5
    is built from a config; the real checkpoint has a separate ``lm_head``
    (247,577,856 parameters), so it is untied here to match."""
    import torch
    from torch import nn
    from transformers import T5ForConditionalGeneration

    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(flan_t5_base_config(vocab_size))
    model.lm_head.weight = nn.Parameter(model.shared.weight.detach().clone())
    model.config.tie_word_embeddings = False
    return model
