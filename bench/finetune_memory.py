"""Peak memory and step time of LoRA vs full fine-tuning at flan-t5-base shape.

Same batch (8 x 256 input / 64 label tokens, every token real, so no padding
and nothing for length bucketing to remove), fp32, AdamW, the same
``labkit.training.train`` loop and the same settings for both methods; each
method runs in its own fresh subprocess so the peaks cannot mix.

What is measured: the process's peak resident set size (VmHWM) *during
training*, i.e. over the steps, after the model is built. The high-water mark
is reset (``/proc/self/clear_refs`` = 5) once the model is ready, because the
build (random init, then ``make_lora_model``/``make_full_model`` deep-copying
the base, which is then freed) has a transient peak of two copies of the
weights that belongs to the benchmark's setup, not to the training method.
The lifetime peak (``ru_maxrss``) is printed too. At least 2 steps run: AdamW
allocates its two moments inside the first ``step()``, so only a steady-state
step shows the full optimizer footprint.

Run:  flock /tmp/bigjob.lock .venv/bin/python bench/finetune_memory.py
(~10 GB peak for full fine-tuning without gradient checkpointing; minutes).
Quick (``--quick``: a tiny model of the same architecture, batch 2 x 16 / 8 tokens, 2 steps, both methods in
this process; seconds, the figures mean nothing): checks the bench itself.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time

import _tiny

BATCH, SRC_TOKENS, TGT_TOKENS = 8, 256, 64
QUICK_BATCH, QUICK_SRC_TOKENS, QUICK_TGT_TOKENS = 2, 16, 8
# glibc raises its mmap threshold dynamically (up to 32 MiB) after large frees, so
# freed activations then stay in the heap and RSS over-counts live memory. A
# fixed threshold makes every tensor-sized block an mmap that is returned on
# free, so RSS follows what is really alive. Same for both methods.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def _vm_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets the peak RSS counter (Linux >= 4.0)
        return True
    except OSError:
        return False


def child(method: str, steps: int, gradient_checkpointing: bool, lora_r: int, quick: bool = False) -> dict:
    """Build the model, train it ``steps`` steps on one random batch and return the figures (tiny with ``quick``)."""
    import torch

    from labkit.lab_settings.lora import LoraSettings
    from labkit.finetune import make_full_model, make_lora_model
    from labkit.training import TrainConfig, train
    from labkit.models import count_parameters

    batch, src_tokens, tgt_tokens = (QUICK_BATCH, QUICK_SRC_TOKENS, QUICK_TGT_TOKENS) if quick else (
        BATCH, SRC_TOKENS, TGT_TOKENS)
    torch.manual_seed(0)
    base = _tiny.flan_t5_base_shaped(quick, seed=0)
    if method == "lora":
        model = make_lora_model(base, LoraSettings(r=lora_r, alpha=lora_r, dropout=0.05, target_modules=("q", "v")), seed=0)
    else:
        model = make_full_model(base)
    del base
    gc.collect()
    gen = torch.Generator().manual_seed(1)
    examples = [
        {"input_ids": torch.randint(3, 32128, (src_tokens - 1,), generator=gen).tolist() + [1],
         "labels": torch.randint(3, 32128, (tgt_tokens - 1,), generator=gen).tolist() + [1]}
        for _ in range(batch)
    ]

    class _Tok:
        pad_token_id = 0

    cfg = TrainConfig(learning_rate=1e-4, max_steps=steps, batch_size=batch, seed=0, max_source_tokens=src_tokens,
                      max_target_tokens=tgt_tokens, gradient_checkpointing=gradient_checkpointing,
                      memory_steps=0)  # no tensor tracker: RSS is the measure here, and timing stays clean
    rss_ready = _vm_kb("VmRSS")
    reset = _reset_peak()
    t0 = time.perf_counter()
    result = train(model, _Tok(), examples, cfg, progress=False)
    wall = time.perf_counter() - t0
    return {
        "method": method, "params": count_parameters(model).as_dict(), "steps": result.steps,
        "step_seconds": result.step_seconds, "seconds_per_step": result.seconds_per_step, "wall_s": wall,
        "rss_before_training_gb": (rss_ready or 0) / 2**20,
        "peak_rss_training_gb": (_vm_kb("VmHWM") or 0) / 2**20 if reset else None,
        "peak_rss_lifetime_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "peak_reset": reset,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="training steps per method (>= 2; default 3)")
    parser.add_argument("--no-gradient-checkpointing", action="store_true", help="turn gradient checkpointing off for both")
    parser.add_argument("--lora-r", type=int, default=32)
    parser.add_argument("--child", choices=["full", "lora"], help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true",
                        help="a tiny model, 2 steps, both methods in this process: checks the bench in seconds")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.lora_r = 2, 4
    if args.steps < 2:
        parser.error("--steps must be >= 2: AdamW allocates its state inside the first step")
    gc_on = not args.no_gradient_checkpointing
    if args.child:
        print(json.dumps(child(args.child, args.steps, gc_on, args.lora_r)))
        return

    print(f"settings: flan-t5-base shape (separate lm_head), fp32, AdamW, batch {BATCH} x {SRC_TOKENS} input / "
          f"{TGT_TOKENS} label tokens (no padding), {args.steps} steps, gradient checkpointing "
          f"{'on' if gc_on else 'off'} for both, LoRA r={args.lora_r} alpha={args.lora_r} on q,v; "
          f"torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}; "
          f"glibc malloc {' '.join(f'{k}={v}' for k, v in MALLOC_ENV.items())} for both")
    if args.quick:
        print("quick: a tiny model of the same architecture, both methods in this process: the figures mean nothing")
    runs = {}
    for method in ("full", "lora"):
        if args.quick:
            runs[method] = child(method, args.steps, gc_on, args.lora_r, quick=True)
        else:
            cmd = [sys.executable, __file__, "--child", method, "--steps", str(args.steps), "--lora-r", str(args.lora_r)]
            if not gc_on:
                cmd.append("--no-gradient-checkpointing")
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **MALLOC_ENV})
            if proc.returncode != 0:
                sys.exit(f"{method} run failed:\n{proc.stderr[-2000:]}")
            runs[method] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = runs[method]
        peak = r["peak_rss_training_gb"]
        print(f"{method:>4}: trainable {r['params']['trainable']:,} of {r['params']['total']:,} ({r['params']['percent']:.2f}%); "
              f"RSS before training {r['rss_before_training_gb']:.2f} GB; peak RSS during training "
              f"{peak if peak is None else f'{peak:.2f}'} GB (lifetime peak {r['peak_rss_lifetime_gb']:.2f} GB); "
              f"step times {', '.join(f'{s:.1f}' for s in r['step_seconds'])} s")
    full, lora = runs["full"], runs["lora"]
    key = "peak_rss_training_gb" if full["peak_reset"] and lora["peak_reset"] else "peak_rss_lifetime_gb"
    print(f"lifetime peak ratio LoRA/full (includes the build's two-copies transient): "
          f"{lora['peak_rss_lifetime_gb'] / full['peak_rss_lifetime_gb']:.3f}")
    print(f"time per step ratio LoRA/full (median of steps 2..{args.steps}): {lora['seconds_per_step'] / full['seconds_per_step']:.2f}")
    print(f"peak memory ratio LoRA/full ({key}): {lora[key] / full[key]:.3f}")


if __name__ == "__main__":
    main()
