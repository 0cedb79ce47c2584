"""Full fine-tuning and the PEFT methods (LoRA, prompt tuning, QLoRA where it runs) through one training loop,
with parameter counts, the course's memory rule of thumb, measured peak memory and time per step, checkpoints
every N steps and exact resume.

One code path for every method
------------------------------
``make_full_model(base)``, ``make_lora_model(base, lora)`` and
``make_prompt_tuning_model(base, n, ...)`` each return a *new* model (the base
is deep-copied first, so the original and each tuned model stay distinct
models; the course's ``get_peft_model(original_model, ...)`` silently turned its
baseline into the adapter model); ``make_qlora_model(profile, lora, ...)`` loads
a fresh 4-bit base. ``train(model, ...)`` then trains whatever parameters have
``requires_grad`` -- every weight for full fine-tuning, only the adapter for
LoRA and QLoRA, only the soft prompt for prompt tuning. Nothing else differs
between the methods.

Why a compact loop and not ``Seq2SeqTrainer``
---------------------------------------------
The loop is ~80 lines, and on the 2-core CPU the labs run on it wins on every
point that matters here:

* speed and overhead: the tiny offline model takes ~0.4 s per step, so the
  Trainer's per-step machinery (accelerate wrapping, callbacks, logging,
  evaluation hooks, its own dataloader workers) is a visible share of a
  3-minute lab; the loop does nothing per step it does not need;
* deterministic resume: a checkpoint holds the trainable weights, the AdamW
  and scheduler state, every RNG state and the step; batch order is a pure
  function of (seed, epoch), so a resumed run replays exactly the batches and
  dropout masks the uninterrupted run saw and ends with bit-identical weights
  (the tests check ``torch.equal``);
* exact control of peak-memory measurement: AdamW allocates its two moments
  inside the first ``step()``, so the peak is read at steady state over steps
  2-3 (see :class:`TensorMemoryTracker`), and step time is taken from steps
  that were not being measured;
* length bucketing: batches are built from examples of similar length and
  padded only to their longest member (never to a fixed 512), which is most
  of the speed on a CPU. The Trainer's ``group_by_length`` does a similar
  thing with a different sampler; here it is explicit and testable.

Peak memory, what is measured
-----------------------------
On CUDA: ``torch.cuda.max_memory_allocated`` reset after step 1; on a CPU the
peak bytes of live tensors (:class:`labkit.training.TensorMemoryTracker`).
Checkpoint folders, their RNG state, the LoRA config and the memory rule of
thumb come from :mod:`labkit.training`, which lab 3's PPO shares.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from labkit.config import LabkitError, LoraSettings, Profile, get_profile, labkit_home
from labkit.models import ParamCount, count_parameters
from labkit.training import checkpoint, lora_config
from labkit.training.batching import bucketed_batches, collate  # noqa: F401  (part of finetune's API)
from labkit.training.checkpoint import directory_size_mb
from labkit.training.memory import MemoryEstimate, PeakMeter, TensorMemoryTracker, estimate_memory
from labkit.training.qlora import QloraSupport, footprint_mb, qlora_support

__all__ = ["MemoryEstimate", "QloraSupport", "TensorMemoryTracker", "TrainConfig", "TrainResult", "bucketed_batches",
           "collate", "costs_table", "directory_size_mb", "estimate_memory", "footprint_mb", "list_checkpoints",
           "lora_summarizer", "lora_train_config", "make_full_model", "make_lora_model", "make_prompt_tuning_model",
           "make_qlora_model", "prompt_tuning_verdict", "qlora_support", "rouge_improvements", "share_of_gain",
           "tokenize_for_training", "train"]

if TYPE_CHECKING:  # pragma: no cover
    import datasets
    import torch
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "step-"
# The soft prompt starts as the embeddings of the summarize instruction (the first line of labs 2 and 3's prompt).
PROMPT_INIT_TEXT = "Summarize the following conversation."
LORA_RECIPE_VERSION = "1"


# ---------------------------------------------------------------- the models


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


# ---------------------------------------------------------------- data


def tokenize_for_training(
    dataset: "datasets.Dataset | Sequence[dict[str, Any]]",
    tokenizer: "PreTrainedTokenizerBase",
    *,
    max_source_tokens: int = 512,
    max_target_tokens: int = 128,
) -> list[dict[str, list[int]]]:
    """Course prompts (``labkit.prompts.summarize_prompt``) as inputs and the
    human summaries as labels; truncated, never padded (batches pad later, to
    their own longest example)."""
    from labkit.prompts import summarize_prompt

    if hasattr(dataset, "column_names"):  # a datasets.Dataset: read whole columns at once
        dialogues, summaries = list(dataset["dialogue"]), list(dataset["summary"])
    else:
        dialogues, summaries = [r["dialogue"] for r in dataset], [r["summary"] for r in dataset]
    if not dialogues:
        raise LabkitError("tokenize_for_training: the training set is empty. Use train_size >= 1.")
    sources = tokenizer([summarize_prompt(d) for d in dialogues], truncation=True, max_length=max_source_tokens)
    targets = tokenizer(text_target=list(summaries), truncation=True, max_length=max_target_tokens)
    return [
        {"input_ids": list(s), "labels": list(t)}
        for s, t in zip(sources["input_ids"], targets["input_ids"])
    ]


# ---------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run (full fine-tuning or LoRA alike).

    ``checkpoint_every``: save weights+optimizer+scheduler+RNG+step every N
    steps (and at the end) into ``output_dir``; None saves nothing.
    ``memory_steps``: how many steps, from step 2 on, the peak is measured over.
    """

    learning_rate: float
    max_steps: int
    batch_size: int = 8
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float | None = 1.0
    seed: int = 0
    max_source_tokens: int = 512
    max_target_tokens: int = 128
    checkpoint_every: int | None = None
    keep_checkpoints: int = 1
    gradient_checkpointing: bool = False
    memory_steps: int = 2

    def validate(self) -> None:
        if not (isinstance(self.max_steps, int) and self.max_steps >= 1):
            raise LabkitError(f"max_steps must be a positive integer, got {self.max_steps!r}.")
        if not self.learning_rate > 0:
            raise LabkitError(f"learning_rate must be > 0, got {self.learning_rate!r} (e.g. 1e-3).")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise LabkitError(f"checkpoint_every must be >= 1 or None, got {self.checkpoint_every!r}.")

    def fingerprint(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run it continues."""
        skip = {"checkpoint_every", "keep_checkpoints", "memory_steps"}
        return {k: v for k, v in asdict(self).items() if k not in skip}


@dataclass
class TrainResult:
    """What a training run measured."""

    steps: int
    losses: list[float]
    seconds_per_step: float | None
    peak_memory_mb: float | None
    memory_method: str
    params: ParamCount
    resumed_from: int | None = None
    checkpoint_dir: str | None = None
    step_seconds: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps, "final_loss": self.losses[-1] if self.losses else None,
            "seconds_per_step": self.seconds_per_step, "peak_memory_mb": self.peak_memory_mb,
            "memory_method": self.memory_method, "params": self.params.as_dict(),
            "resumed_from": self.resumed_from,
        }


def _trainable(model: "torch.nn.Module") -> list[tuple[str, "torch.nn.Parameter"]]:
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise LabkitError(
            "The model has no trainable parameters. Use make_full_model(...) or make_lora_model(...) to prepare it."
        )
    return named


def _optimizer(named: list[tuple[str, "torch.nn.Parameter"]], cfg: TrainConfig) -> "torch.optim.Optimizer":
    import torch

    # Like the Trainer: no weight decay on biases and layer norms.
    decay = [p for n, p in named if not (n.endswith("bias") or "layer_norm" in n)]
    no_decay = [p for n, p in named if n.endswith("bias") or "layer_norm" in n]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.learning_rate)


def list_checkpoints(output_dir: str | os.PathLike[str]) -> list[Path]:
    """Checkpoint folders under ``output_dir``, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def _save_checkpoint(root: Path, step: int, named, optimizer, scheduler, cfg: TrainConfig, info: dict[str, Any]) -> Path:  # noqa: ANN001
    """``root/step-NNNNNN``: the trainable weights, optimizer + scheduler + RNG state and the run's record,
    written atomically; older checkpoints beyond ``cfg.keep_checkpoints`` are removed."""
    from safetensors.torch import save_file

    final = root / f"{CHECKPOINT_PREFIX}{step:06d}"
    with checkpoint.atomic_folder(final) as tmp:
        save_file({n: p.detach().contiguous().cpu() for n, p in named}, str(tmp / "trainable.safetensors"))
        checkpoint.save_state(tmp / "training_state.pt", {"optimizer": optimizer.state_dict(),
                                                          "scheduler": scheduler.state_dict()})
        (tmp / "state.json").write_text(json.dumps({"step": step, "config": cfg.fingerprint(), **info}, indent=2))
    for old in list_checkpoints(root)[: -cfg.keep_checkpoints]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _load_checkpoint(path: Path, named, optimizer, scheduler, cfg: TrainConfig) -> dict[str, Any]:  # noqa: ANN001
    import torch
    from safetensors.torch import load_file

    state = json.loads((path / "state.json").read_text())
    if state["config"] != json.loads(json.dumps(cfg.fingerprint())):
        raise LabkitError(
            f"Cannot resume from {path}: it was trained with different settings "
            f"({state['config']}) than now ({cfg.fingerprint()}). Use the same parameters, "
            "or resume=False (or a new output_dir) to start over."
        )
    weights = load_file(str(path / "trainable.safetensors"))
    names = [n for n, _ in named]
    if sorted(weights) != sorted(names):
        raise LabkitError(
            f"Cannot resume from {path}: its trainable parameters do not match this model's "
            "(full fine-tuning vs LoRA vs prompt tuning, or different LoRA or prompt settings?). "
            "Use a separate output_dir per method."
        )
    with torch.no_grad():
        for n, p in named:
            p.copy_(weights[n])
    training = checkpoint.load_state(path / "training_state.pt")
    optimizer.load_state_dict(training["optimizer"])
    scheduler.load_state_dict(training["scheduler"])
    return state


def _forward_backward(model, batch: dict[str, "torch.Tensor"], named, cfg: TrainConfig, optimizer, scheduler) -> float:  # noqa: ANN001
    import torch

    from labkit import precision

    # bf16 autocast where bf16 was chosen on the CPU (fp32 master weights and optimizer state); QLoRA's
    # 4-bit layers already compute in bf16 and are left to bitsandbytes.
    quantized = getattr(model, "is_loaded_in_4bit", False)
    with precision.autocast(batch["input_ids"].device) if not quantized else contextlib.nullcontext():
        loss = model(**batch).loss
    loss.float().backward()
    if cfg.max_grad_norm:
        torch.nn.utils.clip_grad_norm_([p for _, p in named], cfg.max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def _examples(dataset: Any, tokenizer: "PreTrainedTokenizerBase", config: TrainConfig) -> list[dict[str, list[int]]]:
    """Tokenized ``{input_ids, labels}`` rows: as given, or made from dialogue/summary rows."""
    rows = list(dataset) if not hasattr(dataset, "column_names") else None
    if rows is not None and rows and "input_ids" in rows[0]:
        return rows
    return tokenize_for_training(dataset, tokenizer, max_source_tokens=config.max_source_tokens,
                                 max_target_tokens=config.max_target_tokens)


class _BatchOrder:
    """The example indices of each step's batch: epochs of length-bucketed batches, a pure function of
    (seed, epoch), so a resumed run replays them."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int) -> None:
        self.lengths, self.batch_size, self.seed = lengths, batch_size, seed
        self.per_epoch: int | None = None
        self._epoch: int | None = None
        self._batches: list[list[int]] = []

    def __call__(self, step: int) -> list[int]:
        if self.per_epoch is None:
            self.per_epoch = len(bucketed_batches(self.lengths, self.batch_size, seed=self.seed, epoch=0))
        epoch, index = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._batches = bucketed_batches(self.lengths, self.batch_size, seed=self.seed, epoch=epoch)
        return self._batches[index]


def _resume(ckpt_root: Path | None, named, optimizer, scheduler, config: TrainConfig, desc: str) -> dict[str, Any]:  # noqa: ANN001
    """Load the newest checkpoint under ``ckpt_root`` into the model, optimizer and scheduler; its record, or {}."""
    if ckpt_root is None:
        raise LabkitError("resume=True needs output_dir (where the checkpoints are).")
    existing = list_checkpoints(ckpt_root)
    if not existing:
        log.info("%s: no checkpoint in %s, starting from step 0", desc, ckpt_root)
        return {}
    info = _load_checkpoint(existing[-1], named, optimizer, scheduler, config)
    log.info("%s: resumed from %s (step %d of %d)", desc, existing[-1].name, info["step"], config.max_steps)
    return info


def train(
    model: "torch.nn.Module",
    tokenizer: "PreTrainedTokenizerBase",
    dataset: "datasets.Dataset | Sequence[dict[str, Any]] | list[dict[str, list[int]]]",
    config: TrainConfig,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    desc: str = "training",
    stop_after_steps: int | None = None,
) -> TrainResult:
    """Train ``model``'s trainable parameters in place (AdamW, linear schedule).

    ``dataset`` holds dialogue/summary rows (tokenized here with length
    bucketing) or already-tokenized ``{input_ids, labels}`` rows.
    With ``output_dir`` and ``config.checkpoint_every``, a checkpoint is saved
    every N steps and at the end; ``resume=True`` continues from the newest one
    (an already finished run is loaded without training; its measurements come
    from the checkpoint). ``stop_after_steps`` stops early as if the process
    had been killed there (for tests and the lab's resume demonstration).
    """
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    from labkit.config import seed_everything

    config.validate()
    examples = _examples(dataset, tokenizer, config)
    order = _BatchOrder([len(e["input_ids"]) + len(e["labels"]) for e in examples], config.batch_size, config.seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    if config.gradient_checkpointing:
        # Non-reentrant checkpointing needs no input-grad hooks for a frozen embedding (LoRA).
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    named = _trainable(model)
    params = count_parameters(model)
    optimizer = _optimizer(named, config)
    scheduler = get_linear_schedule_with_warmup(optimizer, config.warmup_steps, config.max_steps)
    seed_everything(config.seed)
    ckpt_root = Path(output_dir) if output_dir is not None else None
    info = _resume(ckpt_root, named, optimizer, scheduler, config, desc) if resume else {}
    step = start = info.get("step", 0)
    losses, step_seconds = list(info.get("losses", [])), list(info.get("step_seconds", []))
    # steady state: AdamW allocates its state inside step 1, so the peak is read from step 2 on
    meter = PeakMeter(device, first=2, last=1 + config.memory_steps, peak_mb=info.get("peak_memory_mb"))
    live = lambda: (*model.parameters(), *model.buffers(), *_optimizer_tensors(optimizer))  # noqa: E731
    bar = tqdm(total=config.max_steps, initial=start, desc=desc, disable=not progress, leave=False)
    try:
        while step < config.max_steps:
            if stop_after_steps is not None and step >= stop_after_steps:
                log.info("%s: stopped after step %d (simulated interruption)", desc, step)
                break
            batch = {k: v.to(device) for k, v in collate([examples[i] for i in order(step)], pad_id).items()}
            step, measured = step + 1, meter.measures(step + 1)
            with meter.step(step, live, last_step=config.max_steps):
                t0 = time.perf_counter()
                loss = _forward_backward(model, batch, named, config, optimizer, scheduler)
                elapsed = time.perf_counter() - t0
            if not measured:
                step_seconds.append(elapsed)
            losses.append(loss)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
            if ckpt_root is not None and config.checkpoint_every and (step % config.checkpoint_every == 0 or step == config.max_steps):
                _save_checkpoint(ckpt_root, step, named, optimizer, scheduler, config,
                                 {"losses": losses, "step_seconds": step_seconds, "peak_memory_mb": meter.peak_mb})
    finally:
        bar.close()
    if config.gradient_checkpointing:
        model.gradient_checkpointing_disable()
    model.eval()
    # Step 1 pays for AdamW's state allocation and warm-up; leave it out.
    timed = step_seconds[1:] if len(step_seconds) > 1 else step_seconds
    return TrainResult(
        steps=step, losses=losses, seconds_per_step=statistics.median(timed) if timed else None,
        peak_memory_mb=meter.peak_mb, memory_method=meter.method, params=params, resumed_from=info.get("step"),
        checkpoint_dir=str(ckpt_root) if ckpt_root else None, step_seconds=step_seconds,
    )


def _optimizer_tensors(optimizer: "torch.optim.Optimizer") -> Iterable[Any]:
    for state in optimizer.state.values():
        yield from state.values()


# ---------------------------------------------------------------- lab 3's starting point


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
    profile: Profile | str = "offline",
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
            with checkpoint.atomic_folder(target) as tmp:
                model.save_pretrained(str(tmp))
    base = load_seq2seq(p, device=device)
    return PeftModel.from_pretrained(base, str(target), is_trainable=True).eval()


# ---------------------------------------------------------------- reporting


def rouge_improvements(rouge: dict[str, dict[str, dict[str, Any]]], baseline: str = "original") -> dict[str, dict[str, dict[str, float]]]:
    """Absolute and relative (%) gain of every model over ``baseline`` per metric.

    ``rouge`` maps model → ``RougeResult.as_dict()``. Returns
    ``{model: {metric: {"absolute": x, "relative_percent": y}}}`` (the course
    printed e.g. "PEFT vs original: rouge1 +17.5%").
    """
    if baseline not in rouge:
        raise LabkitError(f"rouge_improvements: no {baseline!r} entry among {sorted(rouge)}.")
    base = rouge[baseline]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, scores in rouge.items():
        if name == baseline:
            continue
        out[name] = {}
        for metric, value in scores.items():
            b, v = float(base[metric]["mean"]), float(value["mean"])
            out[name][metric] = {"absolute": v - b, "relative_percent": 100.0 * (v - b) / b if b else float("nan")}
    return out


def costs_table(runs: dict[str, TrainResult], checkpoint_mb: dict[str, float],
                weights_mb: dict[str, float] | None = None) -> "Any":
    """A pandas DataFrame, one row per method: trainable share, measured peak
    memory next to the rule-of-thumb estimate, seconds per step, checkpoint size.

    ``weights_mb`` gives a method's measured weight memory where the rule's 4 bytes per parameter does not
    hold (QLoRA's 4-bit base: :func:`footprint_mb`); its estimate is then those weights plus the rule's 20
    bytes per trainable parameter."""
    import pandas as pd

    rows = {}
    for name, run in runs.items():
        est = estimate_memory(run.params)
        weights, training = est.weights_mb, est.training_mb
        if weights_mb and name in weights_mb:
            weights = weights_mb[name]
            training = weights + est.training_mb - est.weights_mb
        rows[name] = {
            "trainable": run.params.trainable, "total": run.params.total, "percent": round(run.params.percent, 2),
            "peak_memory_mb": run.peak_memory_mb, "estimate_mb": training,
            "weights_mb": weights, "seconds_per_step": run.seconds_per_step,
            "checkpoint_mb": checkpoint_mb.get(name),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def share_of_gain(rouge: dict[str, dict[str, Any]], method: str, *, reference: str = "full_ft",
                  baseline: str = "original", metric: str = "rouge1") -> float:
    """How much of ``reference``'s gain over ``baseline`` ``method`` got: (method - baseline) / (reference -
    baseline) of the mean ``metric`` (1.0: all of full fine-tuning's gain; 0: none; below 0: worse than the
    baseline). ``rouge`` maps model → ``RougeResult.as_dict()`` (or {metric: mean})."""
    missing = [m for m in (method, reference, baseline) if m not in rouge]
    if missing:
        raise LabkitError(f"share_of_gain: no ROUGE for {missing} among {sorted(rouge)}; evaluate those models first.")

    def mean(model: str) -> float:
        value = rouge[model][metric]
        return float(value["mean"] if isinstance(value, dict) else value)

    gain = mean(reference) - mean(baseline)
    if gain == 0:
        raise LabkitError(f"share_of_gain: {reference} scored exactly what {baseline} did ({metric}), so a share of "
                          "its gain means nothing; train it (more steps, another learning rate) first.")
    return (mean(method) - mean(baseline)) / gain


def prompt_tuning_verdict(share: float, percent_trained: float,
                          vs_hard_prompt: tuple[float, float, float] | None = None) -> str:
    """What a measured share of full fine-tuning's gain (:func:`share_of_gain`) says about scale, in the terms of
    Lester et al. 2021 (soft prompts catch up with full fine-tuning only for very large models, ~10B parameters),
    whichever way the number came out. ``vs_hard_prompt``: the soft prompt's mean ROUGE-1 minus a hand-written
    prompt's on the same dialogues, with the paired 95% CI of that difference (mean, low, high)."""
    head = f"Prompt tuning trained {percent_trained:.2f}% of the parameters and got {share:.0%} of full fine-tuning's gain."
    if share >= 0.8:
        text = head + (" That is most of it, on a tiny model, where Lester et al. needed ~10B parameters. The reason "
                       "is theirs, though: a soft prompt can only select what the frozen model already does, and "
                       "this stand-in was pre-trained on this very task (see 'The offline stand-in'), the way a very "
                       "large model has the skill from pre-training. At flan-t5-base's 250M, Lester et al. measured "
                       "a clear gap.")
    elif share >= 0.4:
        text = head + (" Part of it: far below ~10B parameters, where Lester et al. saw soft prompts catch up, the "
                       "frozen model knows too little for a prompt to steer, and full fine-tuning or LoRA, which "
                       "change the weights, stay ahead.")
    else:
        text = head + (" Little of it: as Lester et al. found for small models, a soft prompt cannot make a small "
                       "frozen model do what it does not already know; only changing the weights (full "
                       "fine-tuning, LoRA) teaches it the task.")
    if vs_hard_prompt is None:
        return text
    diff, low, high = vs_hard_prompt
    ci = f"ROUGE-1 {diff:+.3f}, paired 95% CI [{low:+.3f}, {high:+.3f}]"
    if low > 0:
        return text + f" It also beat the hand-written prompt the model was pre-trained with ({ci}): it found more than a template."
    if high < 0:
        return text + (f" Yet it scored below the hand-written prompt the model was pre-trained with ({ci}): "
                       "gradient descent did not even find what a good template gives.")
    return text + (f" And it did no better than the hand-written prompt the model was pre-trained with ({ci}): what "
                   "the soft prompt found is, in effect, that template's switch; the skill was in the frozen weights.")
