"""The training loop every fine-tuning method of lab 2 (and lab 3's starting summarizer) runs through.

``train(model, tokenizer, dataset, config)`` trains whatever parameters of ``model``
have ``requires_grad`` -- every weight for full fine-tuning, only the adapter for
LoRA and QLoRA, only the soft prompt for prompt tuning (the models are made by
:mod:`labkit.finetune`). It measures peak memory and time per step, saves a
checkpoint every ``checkpoint_every`` steps (None: none), and resumes exactly.

Why a compact loop and not ``Seq2SeqTrainer``
---------------------------------------------
The loop is short, and on the 2-core CPU the labs run on it wins on every
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
  padded only to their longest member (never to the encoder limit), which is most
  of the speed on a CPU. The Trainer's ``group_by_length`` does a similar
  thing with a different sampler; here it is explicit and testable.

Peak memory, what is measured
-----------------------------
On CUDA: ``torch.cuda.max_memory_allocated`` reset after step 1; on a CPU the
peak bytes of live tensors (:class:`labkit.training.memory.TensorMemoryTracker`).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from labkit.atomic import atomic_folder
from labkit.config import MAX_SOURCE_TOKENS, LabkitError
from labkit.training import checkpoint
from labkit.training.batching import bucketed_batches, collate
from labkit.training.memory import PeakMeter
from labkit.training.params import ParamCount, count_parameters

if TYPE_CHECKING:  # pragma: no cover
    import datasets
    import torch
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "step-"


# ---------------------------------------------------------------- data


def tokenize_for_training(
    dataset: "datasets.Dataset | Sequence[dict[str, Any]]",
    tokenizer: "PreTrainedTokenizerBase",
    *,
    max_source_tokens: int = MAX_SOURCE_TOKENS,
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
    max_source_tokens: int = MAX_SOURCE_TOKENS
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
    with atomic_folder(final) as tmp:
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


class _Run:
    """One training run's state: the trainable parameters, optimizer, scheduler, step, measurements, checkpoints."""

    def __init__(self, model: "torch.nn.Module", config: TrainConfig, ckpt_root: Path | None, resume: bool,
                 desc: str) -> None:
        from transformers import get_linear_schedule_with_warmup

        from labkit.config import seed_everything

        self.config, self.ckpt_root = config, ckpt_root
        self.device = next(model.parameters()).device
        if config.gradient_checkpointing:
            # Non-reentrant checkpointing needs no input-grad hooks for a frozen embedding (LoRA).
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        self.model, self.named, self.params = model, _trainable(model), count_parameters(model)
        self.optimizer = _optimizer(self.named, config)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, config.warmup_steps, config.max_steps)
        seed_everything(config.seed)
        self.info = _resume(ckpt_root, self.named, self.optimizer, self.scheduler, config, desc) if resume else {}
        self.step: int = self.info.get("step", 0)
        self.losses: list[float] = list(self.info.get("losses", []))
        self.step_seconds: list[float] = list(self.info.get("step_seconds", []))
        # steady state: AdamW allocates its state inside step 1, so the peak is read from step 2 on
        self.meter = PeakMeter(self.device, first=2, last=1 + config.memory_steps,
                               peak_mb=self.info.get("peak_memory_mb"))

    def live(self) -> tuple[Any, ...]:
        """Every tensor that exists before a step: weights, buffers, optimizer state (for the CPU peak meter)."""
        return (*self.model.parameters(), *self.model.buffers(), *_optimizer_tensors(self.optimizer))

    def advance(self, batch: dict[str, "torch.Tensor"]) -> float:
        """Train one step on ``batch``, time and measure it, save a checkpoint when one is due; the loss."""
        config = self.config
        self.step, measured = self.step + 1, self.meter.measures(self.step + 1)
        with self.meter.step(self.step, self.live, last_step=config.max_steps):
            t0 = time.perf_counter()
            loss = _forward_backward(self.model, batch, self.named, config, self.optimizer, self.scheduler)
            elapsed = time.perf_counter() - t0
        if not measured:
            self.step_seconds.append(elapsed)
        self.losses.append(loss)
        due = config.checkpoint_every and (self.step % config.checkpoint_every == 0 or self.step == config.max_steps)
        if self.ckpt_root is not None and due:
            record = {"losses": self.losses, "step_seconds": self.step_seconds, "peak_memory_mb": self.meter.peak_mb}
            _save_checkpoint(self.ckpt_root, self.step, self.named, self.optimizer, self.scheduler, config, record)
        return loss

    def result(self) -> TrainResult:
        """What the run measured. Step 1 pays for AdamW's state allocation and warm-up: its time is left out."""
        timed = self.step_seconds[1:] if len(self.step_seconds) > 1 else self.step_seconds
        return TrainResult(
            steps=self.step, losses=self.losses, seconds_per_step=statistics.median(timed) if timed else None,
            peak_memory_mb=self.meter.peak_mb, memory_method=self.meter.method, params=self.params,
            resumed_from=self.info.get("step"), checkpoint_dir=str(self.ckpt_root) if self.ckpt_root else None,
            step_seconds=self.step_seconds,
        )


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

    config.validate()
    examples = _examples(dataset, tokenizer, config)
    order = _BatchOrder([len(e["input_ids"]) + len(e["labels"]) for e in examples], config.batch_size, config.seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    run = _Run(model, config, Path(output_dir) if output_dir is not None else None, resume, desc)
    bar = tqdm(total=config.max_steps, initial=run.step, desc=desc, disable=not progress, leave=False)
    try:
        while run.step < config.max_steps:
            if stop_after_steps is not None and run.step >= stop_after_steps:
                log.info("%s: stopped after step %d (simulated interruption)", desc, run.step)
                break
            batch = collate([examples[i] for i in order(run.step)], pad_id)
            loss = run.advance({k: v.to(run.device) for k, v in batch.items()})
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
    finally:
        bar.close()
    if config.gradient_checkpointing:
        model.gradient_checkpointing_disable()
    model.eval()
    return run.result()


def _optimizer_tensors(optimizer: "torch.optim.Optimizer") -> Iterable[Any]:
    for state in optimizer.state.values():
        yield from state.values()

