"""Load the profile's models through ``from_pretrained``, say where they come from (a stand-in or not), and
build the flan-t5-base-shaped test model.

Both profiles go through the same ``from_pretrained`` calls; the offline
profile just points them at the local fixture directories (built on first use),
the course profile at Hub ids or, with ``LABKIT_MODELS=DIR``, at the folders
``DIR/<hub id>/`` (:func:`labkit.config.models_dir`). :func:`model_sources` says
where each model of a profile comes from, and whether it is the course-shaped
stand-in (random weights, built by :mod:`labkit.standin`; :func:`is_stand_in` reads
the marker it leaves). ``count_parameters`` is :mod:`labkit.training.params`',
named here too because the lessons count the models they load.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.config import (
    COURSE_MODEL,
    COURSE_PROFILE,
    COURSE_SUMMARIZER_ADAPTER,
    COURSE_TOXICITY_MODEL,
    MODELS_ENV,
    LabkitError,
    Profile,
    choose_device,
    choose_dtype,
)
from labkit.profiles import get_profile
from labkit.training.params import count_parameters  # noqa: F401  (the lessons count a model's parameters here)

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, T5Config, T5ForConditionalGeneration

log = logging.getLogger(__name__)

# The file :mod:`labkit.standin` writes into every model folder it builds (random weights).
STAND_IN_FILE = "labkit_stand_in.json"


def marker(folder: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The stand-in record of a model folder (``STAND_IN_FILE``), or None for anything else (a real model,
    a Hub id, a folder that does not exist)."""
    if not folder:
        return None
    path = Path(folder) / STAND_IN_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("stand_in") else None


def is_stand_in(folder: str | os.PathLike[str] | None) -> bool:
    """Whether ``folder`` holds a model that :func:`labkit.standin.build` made (random weights)."""
    return marker(folder) is not None


def _resolve(profile: Profile | str | None) -> Profile:
    resolved = get_profile(profile) if not isinstance(profile, Profile) else profile
    if resolved.uses_fixtures:
        from labkit import fixtures

        fixtures.ensure()
    return resolved


# What belongs in each LABKIT_MODELS folder, for the error that finds one missing.
_FOLDER_CONTENTS = {
    COURSE_MODEL: "google/flan-t5-base saved with save_pretrained: config.json, model.safetensors and its tokenizer "
                  "(tokenizer.json or spiece.model, tokenizer_config.json)",
    COURSE_TOXICITY_MODEL: "facebook/roberta-hate-speech-dynabench-r4-target saved with save_pretrained: config.json, "
                           "model.safetensors and its tokenizer (vocab.json, merges.txt, tokenizer_config.json)",
}


def _check_local_folder(p: Profile, name: str, what: str) -> None:
    """With LABKIT_MODELS, a missing or empty model folder gets an error naming it and what belongs there."""
    if not p.models_dir:
        return
    folder = Path(name)
    if (folder / "config.json").is_file() or (folder / "tokenizer_config.json").is_file():
        return
    hub_id = folder.relative_to(p.models_dir).as_posix() if folder.is_relative_to(p.models_dir) else name
    contents = _FOLDER_CONTENTS.get(hub_id, f"{hub_id} saved with save_pretrained")
    state = "is empty or has no config.json" if folder.is_dir() else "does not exist"
    raise LabkitError(
        f"The course profile loads the {what} from {folder} ({MODELS_ENV}={p.models_dir}), which {state}. "
        f"That folder should hold {contents}. On a machine with the Hub: "
        f"AutoModel...from_pretrained('{hub_id}').save_pretrained('{folder}') and the same for its tokenizer; "
        f"for a random-weight stand-in of the same shapes: 'labkit fixtures --course-shaped {p.models_dir}'; "
        f"or unset {MODELS_ENV} to download from the Hub."
    )


def _note_stand_in(name: str, what: str) -> None:
    if is_stand_in(name):
        log.warning("The %s in %s is the course-shaped stand-in: random weights, for shapes and memory only "
                    "(its text is word salad, its scores noise).", what, name)


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
        if not isinstance(err, OSError) or Path(name).is_dir():
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
    _check_local_folder(p, p.tokenizer, "summarizer's tokenizer")
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
    _check_local_folder(p, p.model, "summarization model")
    _note_stand_in(p.model, "summarization model")
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
    _check_local_folder(p, p.toxicity_model, "toxicity classifier")
    _note_stand_in(p.toxicity_model, "toxicity classifier")
    model = _from_pretrained(AutoModelForSequenceClassification, p.toxicity_model, "toxicity classifier", fixture=p.uses_fixtures)
    tokenizer = _from_pretrained(AutoTokenizer, p.toxicity_model, "toxicity classifier's tokenizer", fixture=p.uses_fixtures)
    return model.to(dev).eval(), tokenizer


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
    from transformers import T5ForConditionalGeneration

    torch.manual_seed(seed)
    return untie_lm_head(T5ForConditionalGeneration(flan_t5_base_config(vocab_size)))


def untie_lm_head(model: "T5ForConditionalGeneration") -> "T5ForConditionalGeneration":
    """Give a T5 built from a config (transformers 5 ties ``lm_head`` to ``shared``) its own ``lm_head``, as
    flan-t5-base's checkpoint has, with its own random values (std d_model**-0.5: logits of about unit scale).
    Own values matter: ``from_pretrained`` ties the two again when the saved file holds equal ones."""
    import torch
    from torch import nn

    weight = torch.empty_like(model.shared.weight)
    if weight.device.type != "meta":
        nn.init.normal_(weight, std=model.config.d_model ** -0.5)
    model.lm_head.weight = nn.Parameter(weight)
    model.config.tie_word_embeddings = False
    return model


@dataclass(frozen=True)
class ModelSource:
    """Where one model of a profile comes from: ``where`` (a folder or Hub id), ``how`` in words, and whether
    it is the course-shaped stand-in."""

    part: str
    where: str
    how: str
    stand_in: bool = False


def model_sources(profile: Profile | str | None = None) -> list[ModelSource]:
    """Where a profile's summarizer, tokenizer, reward model and (course) lab 3 starting adapter come from.
    Reads no weights."""
    p = get_profile(profile) if not isinstance(profile, Profile) else profile

    def source(part: str, name: str) -> ModelSource:
        if p.uses_fixtures:
            return ModelSource(part, name, "offline fixture (labkit fixtures)")
        if p.models_dir:
            present = Path(name).is_dir()
            how = f"{MODELS_ENV} folder" + ("" if present else " (MISSING)")
            stand = is_stand_in(name)
            if stand:
                how += (": course-shaped stand-in (trained on the project's data, a 32,100-token vocabulary)"
                        if part == "tokenizer" else ": course-shaped stand-in, random weights (shapes and memory only)")
            return ModelSource(part, name, how, stand)
        return ModelSource(part, name, "Hugging Face Hub (needs a network, or set " + MODELS_ENV + ")")

    rows = [source("summarizer", p.model), source("tokenizer", p.tokenizer), source("reward model", p.toxicity_model)]
    if p.name == COURSE_PROFILE or p.summarizer_adapter:
        adapter = p.summarizer_adapter
        if adapter and Path(adapter).is_dir():
            rows.append(ModelSource("lab 3 summarizer adapter", adapter,
                                    f"{MODELS_ENV} folder" + (": course-shaped stand-in, untrained"
                                                              if is_stand_in(adapter) else ""),
                                    is_stand_in(adapter)))
        else:
            rows.append(ModelSource("lab 3 summarizer adapter", adapter or "-",
                                    "trained by lab 3 on first use (cached); put the course's Lab 2 checkpoint in "
                                    f"{MODELS_ENV}/{COURSE_SUMMARIZER_ADAPTER} to skip that"))
    return rows


def uses_stand_in(profile: Profile | str | None = None) -> bool:
    """Whether any model of the profile is the course-shaped stand-in (random weights)."""
    return any(s.stand_in for s in model_sources(profile))
