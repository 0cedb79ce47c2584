"""The LoRA summarizer lab 3 starts from: trained once per profile on its train split, then loaded from a cache.

The cache folder's name hashes everything that shapes the adapter (the recipe
version, the model, the data, the LoRA and training settings, and offline the
fixtures' data and weights), so a change to any of them trains a new one; a
profile that names an adapter folder (the course's Lab 2 checkpoint) loads that
instead and trains nothing.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.atomic import atomic_folder
from labkit.config import DEFAULT_PROFILE, LabkitError, Profile, labkit_home
from labkit.finetune import make_lora_model
from labkit.profiles import get_profile
from labkit.training.loop import TrainConfig, train

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from peft import PeftModel

log = logging.getLogger(__name__)

LORA_RECIPE_VERSION = "1"


def lora_train_config(profile: Profile | str, *, seed: int = 0, max_steps: int | None = None) -> TrainConfig:
    """The training settings ``lora_summarizer`` uses for a profile (its ``summarizer`` section, ``lora_learning_rate``
    and ``weight_decay``; the course's: lr 1e-3, batch 8)."""
    p = get_profile(profile)
    s = p.summarizer
    return TrainConfig(learning_rate=p.lora_learning_rate, max_steps=max_steps or s.max_steps, batch_size=s.batch_size,
                       weight_decay=p.weight_decay, seed=seed, max_source_tokens=p.max_source_tokens,
                       max_target_tokens=s.max_target_tokens)


def _lora_cache_key(p: Profile, cfg: TrainConfig) -> str:
    from labkit.models import _resolve

    _resolve(p)  # builds the offline fixtures first, so their manifest is known
    source: dict[str, Any] = {"recipe": LORA_RECIPE_VERSION, "profile": p.name, "model": p.model,
                              "dataset": p.dataset, "lora": asdict(p.lora), "train": cfg.fingerprint()}
    if p.uses_fixtures:
        from labkit import fixtures

        manifest = fixtures.read_manifest() or {}
        source["fixtures"] = {"data": manifest.get("data_digest"), "weights": manifest.get("weights")}
    return hashlib.sha256(json.dumps(source, sort_keys=True, default=str).encode()).hexdigest()[:16]


def lora_summarizer(
    profile: Profile | str = DEFAULT_PROFILE,
    *,
    seed: int = 0,
    max_steps: int | None = None,
    device: "torch.device | str | None" = None,
    progress: bool = True,
) -> "PeftModel":
    """A LoRA summarizer trained on the profile's train split: trained once,
    then loaded from ``labkit_home()/cache/lora_summarizer/<profile>-<key>``
    (the key hashes the model, data, LoRA and training settings).

    The training data keep their rude dialogues and insulting summaries, so
    the result summarizes well *and* starts measurably toxic -- Lab 3's PPO
    starting point. The adapter is returned trainable (``is_trainable=True``),
    on ``device``, in eval mode.

    A profile whose ``summarizer_adapter`` folder exists (the course profile with
    ``LABKIT_MODELS``: its ``peft-dialogue-summary-checkpoint``) starts from that
    adapter instead, as the course's Lab 3 loaded its Lab 2 checkpoint; nothing is trained.
    """
    from dataclasses import replace

    from filelock import FileLock
    from peft import PeftModel

    from labkit.data import load_dialogsum
    from labkit.models import load_seq2seq, load_tokenizer

    p = replace(get_profile(profile), dataset_splits=("train",))  # one dataset file: all of it is training data
    given = Path(p.summarizer_adapter) if p.summarizer_adapter else None
    if given is not None and given.is_dir():
        if not (given / "adapter_config.json").is_file():
            raise LabkitError(f"{given} should hold the LoRA summarizer lab 3 starts from (a peft adapter saved with "
                              "save_pretrained: adapter_config.json and adapter_model.safetensors), but has no "
                              "adapter_config.json. Put the adapter there, or remove the folder to train one.")
        log.info("Lab 3's summarizer: the LoRA adapter in %s (nothing to train)", given)
        base = load_seq2seq(p, device=device)
        return PeftModel.from_pretrained(base, str(given), is_trainable=True).eval()
    cfg = lora_train_config(p, seed=seed, max_steps=max_steps)
    target = labkit_home() / "cache" / "lora_summarizer" / f"{p.name}-{_lora_cache_key(p, cfg)}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "adapter_config.json").is_file():
            log.info("Training the LoRA summarizer once (%d steps); cached in %s", cfg.max_steps, target)
            base = load_seq2seq(p, device="cpu" if device is None else device)
            model = make_lora_model(base, p.lora, seed=seed)
            from labkit import precision

            # Cached and shared by every run here, whatever its dtype: trained in fp32 so that lab 3 starts
            # from the same summarizer in an fp32 run and a bf16 one.
            with precision.fp32_step("Training lab 3's starting summarizer",
                                     "it is cached and shared by every run on this machine, fp32 or bf16"):
                train(model, load_tokenizer(p), load_dialogsum(p)["train"], cfg, progress=progress,
                      desc="LoRA summarizer")
            with atomic_folder(target) as tmp:
                model.save_pretrained(str(tmp))
    base = load_seq2seq(p, device=device)
    return PeftModel.from_pretrained(base, str(target), is_trainable=True).eval()

