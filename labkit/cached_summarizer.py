"""The LoRA summarizer lab 3 starts from: trained once per profile on its train split, then loaded from a cache.

The cache folder's name hashes everything that shapes the adapter (the recipe
version, the model, the data, the LoRA and training settings, and offline the
fixtures' data and weights), so a change to any of them trains a new one; a
profile that names an adapter folder (the course's Lab 2 checkpoint) loads that
instead and trains nothing.

Offline, the project ships the adapter its default settings train (``data/lab3-summarizer``, with the key it
was trained under and its files' hashes; :func:`ship` writes it): where the key matches, it is installed into
the cache in a fraction of a second instead of trained (about 100 s), and every machine starts lab 3 from the
same summarizer, as it starts from the same original model. Other settings, data or models train as before.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.atomic import atomic_folder
from labkit.config import DEFAULT_PROFILE, LabkitError, Profile, labkit_home
from labkit.finetune import make_lora_model
from labkit.fixtures import MANIFEST as SHIPPED_INFO, file_hashes  # one manifest name and one hasher for shipped files
from labkit.profiles import get_profile
from labkit.training.loop import TrainConfig, train

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from peft import PeftModel

log = logging.getLogger(__name__)

LORA_RECIPE_VERSION = "1"
SHIPPED_FOLDER = "lab3-summarizer"   # under data/: the offline adapter, trained once and shipped


def lora_train_config(profile: Profile | str, *, seed: int = 0, max_steps: int | None = None) -> TrainConfig:
    """The training settings ``lora_summarizer`` uses for a profile (its ``summarizer`` section, ``lora_learning_rate``
    and ``weight_decay``; the course's: lr 1e-3, batch 8)."""
    p = get_profile(profile)
    s = p.summarizer
    return TrainConfig(learning_rate=p.lora_learning_rate, max_steps=max_steps or s.max_steps, batch_size=s.batch_size,
                       weight_decay=p.weight_decay, seed=seed, max_source_tokens=p.max_source_tokens,
                       max_target_tokens=s.max_target_tokens)


def _portable(path: Any) -> Any:
    """A model's or dataset's location as the cache key names it: inside the project's data/ or LABKIT_HOME, the
    path below them (the same on every machine, so a shipped adapter's key holds everywhere); else as given."""
    from labkit.config import data_dir

    for root, name in ((data_dir(), "data"), (labkit_home(), "LABKIT_HOME")):
        try:
            return f"{name}/{Path(str(path)).resolve().relative_to(root.resolve()).as_posix()}"
        except (ValueError, OSError):
            continue
    return path


def _lora_cache_key(p: Profile, cfg: TrainConfig) -> str:
    from labkit.models import _resolve

    _resolve(p)  # builds the offline fixtures first, so their manifest is known
    source: dict[str, Any] = {"recipe": LORA_RECIPE_VERSION, "profile": p.name, "model": _portable(p.model),
                              "dataset": _portable(p.dataset), "lora": asdict(p.lora), "train": cfg.fingerprint()}
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

    from labkit.models import load_seq2seq

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
    key = _lora_cache_key(p, cfg)
    target = _cache_dir(p, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "adapter_config.json").is_file() and p.uses_fixtures:
            _install_shipped(key, target)
        if not (target / "adapter_config.json").is_file():
            _train_into(target, p, cfg, seed=seed, device=device, progress=progress)
    base = load_seq2seq(p, device=device)
    return PeftModel.from_pretrained(base, str(target), is_trainable=True).eval()



def _train_into(target: Path, p: Profile, cfg: TrainConfig, *, seed: int, device: Any, progress: bool) -> None:
    """Train the summarizer with ``cfg`` and save it as the cache folder ``target`` (atomically)."""
    from labkit import precision
    from labkit.data import load_dialogsum
    from labkit.models import load_seq2seq, load_tokenizer

    log.info("Training the LoRA summarizer once (%d steps); cached in %s", cfg.max_steps, target)
    model = make_lora_model(load_seq2seq(p, device="cpu" if device is None else device), p.lora, seed=seed)
    # Cached and shared by every run here, whatever its dtype: trained in fp32 so that lab 3 starts from the same
    # summarizer in an fp32 run and a bf16 one.
    with precision.fp32_step("Training lab 3's starting summarizer",
                             "it is cached and shared by every run on this machine, fp32 or bf16"):
        train(model, load_tokenizer(p), load_dialogsum(p)["train"], cfg, progress=progress, desc="LoRA summarizer")
    with atomic_folder(target) as tmp:
        model.save_pretrained(str(tmp))


def shipped_dir() -> Path:
    """``data/lab3-summarizer``: the offline profile's starting summarizer as the project ships it."""
    from labkit.config import data_dir

    return data_dir() / SHIPPED_FOLDER


def _cache_dir(p: Profile, key: str) -> Path:
    """The cache folder of the summarizer trained under ``key``."""
    return labkit_home() / "cache" / "lora_summarizer" / f"{p.name}-{key}"


def _install_shipped(key: str, target: Path, source: Path | None = None) -> bool:
    """Copy the shipped adapter into the cache folder ``target`` when it was trained under ``key`` (the same
    settings, data and original model) and its files match their hashes; False, and nothing copied, otherwise."""
    source = source or shipped_dir()
    try:
        info = json.loads((source / SHIPPED_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if info.get("key") != key:
        log.info("The shipped summarizer was trained with other settings or data (key %s, not %s): training one.",
                 info.get("key"), key)
        return False
    if file_hashes(source) != info.get("files"):
        log.warning("The shipped summarizer in %s does not match its hashes; training one instead. Restore it with "
                    "'git checkout -- data/%s'.", source, SHIPPED_FOLDER)
        return False
    with atomic_folder(target) as tmp:
        for name in info["files"]:
            shutil.copyfile(source / name, tmp / name)
    log.info("Lab 3's summarizer: installed the shipped adapter from %s", source)
    return True


def ship(dest: Path | None = None, *, max_steps: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Train the offline profile's summarizer (or take it from the cache) and write it, with the key it was
    trained under and its files' hashes, to ``dest`` (default ``data/lab3-summarizer``): what lora_summarizer
    installs instead of training. Run it after a change to the offline LoRA or summarizer settings, the data
    or the original model (``python -m labkit.cached_summarizer``)."""
    from dataclasses import replace

    import torch

    from labkit import precision
    from labkit.config import OFFLINE_PROFILE

    lora_summarizer(OFFLINE_PROFILE, seed=seed, max_steps=max_steps, device="cpu", progress=True)
    p = replace(get_profile(OFFLINE_PROFILE), dataset_splits=("train",))
    cfg = lora_train_config(p, seed=seed, max_steps=max_steps)
    key = _lora_cache_key(p, cfg)
    cached = _cache_dir(p, key)
    dest = Path(dest) if dest is not None else shipped_dir()
    info = {"key": key, "files": file_hashes(cached), "trained_on": precision.cpu_model(), "torch": torch.__version__,
            "max_steps": cfg.max_steps, "seed": seed}
    with atomic_folder(dest) as tmp:
        for name in info["files"]:
            shutil.copyfile(cached / name, tmp / name)
        (tmp / SHIPPED_INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return info


if __name__ == "__main__":  # pragma: no cover - the documented command
    print(json.dumps(ship(), indent=2))
