"""PPO memory: a reference that is the policy with its adapter disabled vs a deep-copied reference.

One PPO step (rollout, reference log-probs, rewards, GAE, one update) at flan-t5-base
shape (random init, separate lm_head, LoRA r32 on q,v + value head), with a
roberta-base-shaped random-init classifier as the reward model. Each variant runs in
a fresh subprocess; the figure is that process's peak RSS.

Prints the peak ratio shared/copied and ``saved_fraction_of_weights``: the memory
the shared reference saves as a fraction of one copy of the policy's weights
(1.0 is the physical best; see shared/DESIGN.md for why the plain ratio cannot
go far below ~0.65 at this shape).

    flock /tmp/bigjob.lock .venv/bin/python bench/ppo_memory.py      # ~3 GB peak, a few minutes
    .venv/bin/python bench/ppo_memory.py --quick   # tiny models, both variants in this process: seconds, no figures
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

import _tiny

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# (batch, mini-batch, new tokens, LoRA rank): the full run's and the quick run's
SHAPES = {False: (8, 4, 32, 32), True: (2, 1, 4, 4)}
PROMPT_CHARS = (200, 1000)


def peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def load_prompts(n: int) -> list[str]:
    from labkit.config import shared_dialogsum_path
    from labkit.data import load_dialogsum, read_jsonl
    from labkit.prompts import summarize_prompt

    path = shared_dialogsum_path()
    rows = read_jsonl(path) if path.is_file() else list(load_dialogsum("offline")["train"])
    dialogues = [r["dialogue"] for r in rows if PROMPT_CHARS[0] <= len(r["dialogue"]) <= PROMPT_CHARS[1]]
    return [summarize_prompt(d) for d in dialogues[:n]]


def build_reward_fn(tokenizer: Any, quick: bool) -> tuple[Any, int]:
    """A random classifier of the course's reward model's shape (roberta-base; tiny with ``quick``); the
    offline tokenizer's ids (< 2000) fit its vocabulary. Returns texts -> logit 0, and its weights' bytes."""
    import torch

    classifier = _tiny.roberta_classifier(quick)

    def reward(texts):  # noqa: ANN001, ANN202
        enc = tokenizer(list(texts), padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.inference_mode():
            return classifier(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[:, 0].numpy()

    return reward, sum(p.numel() * p.element_size() for p in classifier.parameters())


def copied_reference_policy(model: Any, reference: Any) -> Any:
    """The policy whose reference is ``reference``, a frozen deep copy of the model (what trl's
    create_reference_model did), instead of the same model with its adapter disabled. Counts its calls, so the
    bench can tell that PPO really read this reference."""
    import torch

    from labkit.policy import PolicyWithValueHead

    class CopiedReference(PolicyWithValueHead):
        calls = 0

        def reference_logits(self, batch):  # noqa: ANN001, ANN202
            type(self).calls += 1
            with torch.no_grad():
                return reference(input_ids=batch["query_ids"], attention_mask=batch["query_mask"],
                                 decoder_input_ids=batch["decoder_input_ids"], use_cache=False).logits.float()

    return CopiedReference(model)


def run_variant(reference: str, quick: bool = False) -> dict:
    """One PPO step with the given reference ("shared" or "copied"); tiny models with ``quick``."""
    import torch
    from peft import LoraConfig, get_peft_model

    from labkit import ppo
    from labkit.models import count_parameters, load_tokenizer
    from labkit.policy import add_value_head

    batch_size, mini_batch_size, new_tokens, rank = SHAPES[quick]
    torch.set_num_threads(1 if quick else max(1, os.cpu_count() or 1))
    tokenizer = load_tokenizer("offline")
    prompts = load_prompts(batch_size)
    base = _tiny.flan_t5_base_shaped(quick, seed=0).eval()
    weight_bytes = sum(p.numel() * p.element_size() for p in base.parameters())
    copied = copy.deepcopy(base).eval().requires_grad_(False) if reference == "copied" else None
    model = get_peft_model(base, LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.05, target_modules=["q", "v"],
                                            task_type="SEQ_2_SEQ_LM"))
    policy = add_value_head(model) if copied is None else copied_reference_policy(model, copied)
    reward_fn, reward_bytes = build_reward_fn(tokenizer, quick)
    config = ppo.PPOConfig(learning_rate=1.41e-5, batch_size=batch_size, mini_batch_size=mini_batch_size,
                           ppo_epochs=1, init_kl_coef=0.2, target_kl=6.0, min_new_tokens=new_tokens,
                           max_new_tokens=new_tokens, seed=0)
    start = time.perf_counter()
    log = ppo.train(policy, tokenizer, prompts, reward_fn, config, steps=1, progress=False)
    if copied is not None and not type(policy).calls:
        raise SystemExit("the copied reference was never read: PPO no longer asks the policy for "
                         "reference_logits, so this bench compares nothing; update copied_reference_policy")
    return {"reference": reference, "peak_rss_bytes": peak_rss_bytes(), "policy_weight_bytes": weight_bytes,
            "reward_model_bytes": reward_bytes, "step_seconds": time.perf_counter() - start,
            "trainable": count_parameters(policy).trainable, "kl": log[0]["kl"]}


def in_subprocess(variant: str) -> dict | None:
    """``run_variant`` in a fresh interpreter (peak RSS never goes down within a process)."""
    proc = subprocess.run([sys.executable, __file__, "--variant", variant], capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
        print(f"FAIL: the {variant} variant exited with {proc.returncode}", file=sys.stderr)
        return None
    return json.loads(lines[-1][len("RESULT "):])


def report(shared: dict, copied: dict, quick: bool) -> None:
    gib = 1024 ** 3
    batch_size, _, new_tokens, _ = SHAPES[quick]
    weights = shared["policy_weight_bytes"]
    saved = (copied["peak_rss_bytes"] - shared["peak_rss_bytes"]) / weights
    shape = "tiny models (quick: both variants in one process, the memory figures mean nothing)" if quick else \
        "flan-t5-base shape"
    print(f"one PPO step at {shape}, batch {batch_size}, {new_tokens} new tokens, "
          f"trainable {shared['trainable']:,}; reward model roberta-base shape ({shared['reward_model_bytes'] / gib:.2f} GiB)")
    for r in (shared, copied):
        print(f"{r['reference']:>7} reference: peak RSS {r['peak_rss_bytes'] / gib:.2f} GiB, step {r['step_seconds']:.1f} s")
    print(f"one copy of the policy's weights: {weights / gib:.3f} GiB")
    print(f"peak memory ratio shared/copied: {shared['peak_rss_bytes'] / copied['peak_rss_bytes']:.3f}")
    print(f"saved_fraction_of_weights: {saved:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("shared", "copied"), help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="tiny models, both variants in this process (seconds)")
    args = parser.parse_args()
    if args.variant:
        print("RESULT " + json.dumps(run_variant(args.variant)), flush=True)
        return 0
    results = {}
    for variant in ("shared", "copied"):
        results[variant] = run_variant(variant, quick=True) if args.quick else in_subprocess(variant)
        if results[variant] is None:
            return 1
    report(results["shared"], results["copied"], args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
