"""One lab's heavy part at the course's full settings on a GPU (bf16), on the course-shaped stand-in: time per
step and peak memory beside the course's rule of thumb. ``bench/course_gpu.sh`` runs it once per lab, each in a
fresh process so that ``torch.cuda.max_memory_allocated`` is that lab's own peak.

It calls the labkit functions the notebooks call, with the notebooks' course settings, rather than the notebooks
themselves: a GPU machine here has torch, transformers and peft but not papermill or datasets. What each lab does:

* lab1: the five prompting strategies on ``--n-eval`` dialogues (course 40), 50 new tokens, greedy, batches of 16;
* lab2: the four models the lab holds (original, full fine-tuning copy, LoRA copy, prompt-tuning copy),
  ``--steps`` optimizer steps of each at batch 8 (lr 1e-5 full, 1e-3 LoRA r=32 alpha 32 on q,v, 0.3 prompt
  tuning with 20 virtual tokens), sources of up to 512 tokens, labels of 64;
* qlora: lab 2's QLoRA beside plain LoRA, each alone in memory: LoRA on the bf16 base, then the same LoRA on the
  base loaded in 4-bit NF4 with double quantization and bf16 compute (bitsandbytes; skipped with the reason
  where its 4-bit layers do not work on the device), ``--steps`` steps each at batch 8; time per step, peak
  memory and the weights' footprint;
* lab3: the PPO policy (lab 3's starting adapter merged, a fresh course LoRA and the value head) and the
  RoBERTa reward model; ``--steps`` PPO steps at batch 16, mini-batch 4, new-token limits drawn from 100-400,
  then one step at 400 (the worst case a random model, which never ends a summary early, reaches).

Without the real DialogSum split (``--dataset``) it uses data/dialogsum-mini with dialogues joined until a
prompt fills the 512-token encoder: the longest inputs the course's settings allow.

Run: python3 bench/course_gpu.py LAB [LAB ...] --models DIR [--dataset FILE] [--steps N] [--device cuda] [--quick]
(``all --quick --device cpu``: tiny sizes on a tiny stand-in built for the run, to check the script itself in
seconds on a machine without a GPU.)
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _tiny

GB = 1e9


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_gb(device: Any) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / GB if device.type == "cuda" else None


def dialogues(dataset: str | None, tokenizer: Any, n: int, *, fill: bool) -> list[dict[str, str]]:
    """``n`` dialogue/summary rows: the given DialogSum file or folder, else data/dialogsum-mini; with ``fill``,
    the project's short dialogues are joined until each reaches the 512-token encoder limit."""
    from labkit.config import MAX_SOURCE_TOKENS, data_dir
    from labkit.data import read_jsonl

    path = Path(dataset) if dataset else data_dir() / "dialogsum-mini" / "train.jsonl"
    if path.is_dir():
        path = sorted(path.glob("*train*.jsonl") or path.glob("*.jsonl"))[0]
    rows = read_jsonl(path)
    if dataset or not fill:
        return [rows[i % len(rows)] for i in range(n)]
    out, i = [], 0
    while len(out) < n:
        text, summary = rows[i % len(rows)]["dialogue"], rows[i % len(rows)]["summary"]
        while len(tokenizer(text)["input_ids"]) < MAX_SOURCE_TOKENS:
            i += 1
            text += "\n" + rows[i % len(rows)]["dialogue"]
        out.append({"dialogue": text, "summary": summary})
        i += 1
    return out


def lab1(args: argparse.Namespace, profile: Any, device: Any) -> dict[str, Any]:
    from labkit import generate, models, prompts
    from labkit.config import MAX_SOURCE_TOKENS

    tokenizer = models.load_tokenizer(profile)
    model = models.load_seq2seq(profile, device=device)
    rows = dialogues(args.dataset, tokenizer, args.n_eval + 3, fill=False)
    shots, evals = rows[:3], [r["dialogue"] for r in rows[3:]]
    greedy = generate.make_config("greedy", max_new_tokens=2 if args.quick else 50)
    generate.generate(model, tokenizer, evals[:2], greedy, progress=False)  # warm-up
    times = {}
    for strategy in prompts.STRATEGIES:
        batch = prompts.build_prompts(strategy, evals, tokenizer=tokenizer, shots=shots,
                                      max_source_tokens=MAX_SOURCE_TOKENS)
        _sync(device)
        t0 = time.perf_counter()
        generate.generate(model, tokenizer, [b.prompt for b in batch], greedy, batch_size=16, progress=False)
        _sync(device)
        times[strategy] = (time.perf_counter() - t0) / len(evals)
    params = models.count_parameters(model).total
    return {"seconds_per_summary": times, "weights_gb": params * next(model.parameters()).element_size() / GB,
            "rule_of_thumb": f"weights {params * 4 / GB:.2f} GB in fp32 (4 B/param), {params * 2 / GB:.2f} GB in bf16"}


def lab2(args: argparse.Namespace, profile: Any, device: Any) -> dict[str, Any]:
    from labkit import finetune, models, training
    from labkit.config import MAX_SOURCE_TOKENS

    fine = profile.fine_tuning
    tokenizer = models.load_tokenizer(profile)
    original = models.load_seq2seq(profile, device=device)
    rows = dialogues(args.dataset, tokenizer, fine.batch_size * (args.steps + 1), fill=True)
    batch = 2 if args.quick else fine.batch_size
    out: dict[str, Any] = {}
    kept = []  # the lab keeps every model it trained while it trains the next
    for name, make, lr in (("full_ft", lambda: finetune.make_full_model(original), fine.learning_rate_full),
                           ("lora", lambda: finetune.make_lora_model(original, profile.lora, seed=0),
                            fine.learning_rate_lora),
                           ("prompt_tuning", lambda: finetune.make_prompt_tuning_model(
                               original, fine.virtual_tokens, init_text=finetune.PROMPT_INIT_TEXT,
                               tokenizer_path=profile.tokenizer, seed=0), fine.learning_rate_prompt)):
        model = make()
        config = training.TrainConfig(learning_rate=lr, max_steps=args.steps, batch_size=batch,
                                      weight_decay=profile.weight_decay, max_source_tokens=MAX_SOURCE_TOKENS, max_target_tokens=fine.max_target_tokens)
        run = training.train(model, tokenizer, rows, config, progress=False, desc=name)
        estimate = training.estimate_memory(run.params)
        out[name] = {"seconds_per_step": run.seconds_per_step, "peak_step_gb": (run.peak_memory_mb or 0) * 2**20 / GB,
                     "memory_method": run.memory_method, "trainable": run.params.trainable,
                     "rule_of_thumb_gb": estimate.training_bytes / GB}
        kept.append(model)
    del kept
    out["rule_of_thumb"] = (f"full FT {out['full_ft']['rule_of_thumb_gb']:.1f} GB (24 B/param, fp32), LoRA "
                            f"{out['lora']['rule_of_thumb_gb']:.1f} GB, prompt tuning "
                            f"{out['prompt_tuning']['rule_of_thumb_gb']:.1f} GB + activations")
    return out


def qlora(args: argparse.Namespace, profile: Any, device: Any) -> dict[str, Any]:
    import gc

    import torch

    from labkit import finetune, models, training
    from labkit.config import MAX_SOURCE_TOKENS
    from labkit.training import qlora as q

    support = q.qlora_support(device)
    out: dict[str, Any] = {"support": support.as_dict()}
    if not support.ok:
        return out
    fine = profile.fine_tuning
    tokenizer = models.load_tokenizer(profile)
    rows = dialogues(args.dataset, tokenizer, fine.batch_size * (args.steps + 1), fill=True)
    config = training.TrainConfig(learning_rate=fine.learning_rate_lora, max_steps=args.steps,
                                  batch_size=2 if args.quick else fine.batch_size, weight_decay=profile.weight_decay,
                                  max_source_tokens=MAX_SOURCE_TOKENS, max_target_tokens=fine.max_target_tokens)
    makers = (("lora", lambda: finetune.make_lora_model(models.load_seq2seq(profile, device=device), profile.lora, seed=0)),
              ("qlora", lambda: finetune.make_qlora_model(profile, profile.lora, device=device, seed=0)))
    for name, make in makers:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        model = make()
        weights_gb = training.footprint_mb(model) * 2**20 / GB
        run = training.train(model, tokenizer, rows, config, progress=False, desc=name)  # trains before it generates
        out[name] = {"seconds_per_step": run.seconds_per_step, "peak_step_gb": (run.peak_memory_mb or 0) * 2**20 / GB,
                     "peak_gb": _peak_gb(device), "weights_gb": weights_gb, "trainable": run.params.trainable,
                     "memory_method": run.memory_method, "final_loss": run.losses[-1]}
        del model, run
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    out["rule_of_thumb"] = (f"NF4 with double quantization: {q.nf4_bytes_per_param():.3f} B per quantized weight "
                            "(bf16: 2, fp32: 4); embeddings, lm_head and T5's wo stay in full precision")
    return out


def lab3(args: argparse.Namespace, profile: Any, device: Any) -> dict[str, Any]:
    from dataclasses import replace

    from labkit import cached_summarizer, models, ppo, prompts, toxicity
    from labkit.policy import policy_from_summarizer

    tokenizer = models.load_tokenizer(profile)
    policy = policy_from_summarizer(cached_summarizer.lora_summarizer(profile, device=device, progress=False),
                                    profile.lora, seed=0)
    classifier, classifier_tokenizer = models.load_toxicity_classifier(profile, device=device)
    reward = toxicity.reward_function(classifier, classifier_tokenizer)
    settings = profile.ppo if not args.quick else replace(profile.ppo, batch_size=2, mini_batch_size=1,
                                                          min_new_tokens=4, max_new_tokens=8)
    config = ppo.PPOConfig.from_settings(settings, seed=0)
    texts = [prompts.summarize_prompt(r["dialogue"]) for r in dialogues(args.dataset, tokenizer, 64, fill=True)]
    state, optimizer = ppo.new_state(config), ppo.make_optimizer(policy, config)
    steps = []
    for worst in [False] * args.steps + [True]:
        cfg = replace(config, min_new_tokens=config.max_new_tokens) if worst else config
        _sync(device)
        t0 = time.perf_counter()
        entry = ppo.ppo_step(policy, tokenizer, optimizer, texts, reward, cfg, state)
        _sync(device)
        steps.append({"seconds": time.perf_counter() - t0, "response_tokens": entry["response_tokens"],
                      "worst_case": worst, "peak_gb": _peak_gb(device)})
    weights = models.count_parameters(policy).total * 4 / GB
    reward_gb = models.count_parameters(classifier).total * 4 / GB
    timed = [s["seconds"] for s in steps[1:-1]] or [steps[0]["seconds"]]
    return {"steps": steps, "seconds_per_step": statistics.median(timed), "seconds_worst_case_step": steps[-1]["seconds"],
            "batch_size": config.batch_size, "mini_batch_size": config.mini_batch_size,
            "new_tokens": [config.min_new_tokens, config.max_new_tokens],
            "rule_of_thumb": f"policy {weights:.2f} GB + reward model {reward_gb:.2f} GB in fp32 (half in bf16), "
                             "plus rollouts"}


PARTS = {"lab1": lab1, "lab2": lab2, "qlora": qlora, "lab3": lab3}
STEPS = {"lab1": 0, "lab2": 20, "qlora": 20, "lab3": 3}  # each part's default --steps (quick: 2)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labs", nargs="+", choices=[*PARTS, "all"], metavar="LAB",
                        help=f"one or more of {', '.join(PARTS)}, or all (bench/course_gpu.sh runs each in its own process)")
    parser.add_argument("--models", default=None, help="the stand-in folder (labkit fixtures --course-shaped DIR); with "
                        "--quick and no stand-in there, a tiny one is built there (without --models: once, in "
                        "LABKIT_HOME/course-shaped-tiny)")
    parser.add_argument("--dataset", default=None, help="a DialogSum .jsonl file or folder (default: data/, filled)")
    parser.add_argument("--steps", type=int, default=None,
                        help="lab2, qlora: steps per method (20); lab3: PPO steps before the 400-token one (3; 0: that one only)")
    parser.add_argument("--n-eval", type=int, default=40, help="lab1: dialogues per strategy (course: 40)")
    parser.add_argument("--device", default=None, help="cuda (default when there is one) or cpu")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (and a tiny stand-in unless --models has one): check the script, measure nothing")
    parser.add_argument("--json", default=None, help="also write the figures to this file (one lab)")
    parser.add_argument("--json-dir", default=None, help="also write each lab's figures to DIR/course_gpu_<lab>.json")
    args = parser.parse_args()
    args.labs = list(PARTS) if "all" in args.labs else list(dict.fromkeys(args.labs))
    if args.json and len(args.labs) > 1:
        parser.error("--json takes one lab; use --json-dir for several")
    if args.models is None and not args.quick:
        parser.error("--models DIR is required (build the stand-in with: labkit fixtures --course-shaped DIR)")
    args.n_eval = 2 if args.quick else args.n_eval
    return args


def models_folder(args: argparse.Namespace) -> Path:
    """The folder LABKIT_MODELS names: ``--models``; with ``--quick``, a tiny stand-in is built there unless it
    holds one of this recipe (without ``--models``: in LABKIT_HOME/course-shaped-tiny, kept for the next run)."""
    from labkit import standin
    from labkit.config import labkit_home

    folder = Path(args.models or labkit_home() / "course-shaped-tiny").resolve()
    manifest = standin.read_manifest(folder)
    if args.quick and (manifest is None or manifest.get("recipe_version") != standin.RECIPE_VERSION):
        _tiny.build_standin(folder, quick=True)
        print(f"quick: a tiny stand-in (the course's layout and tokenizers, width 32) in {folder}", file=sys.stderr)
    return folder


def main() -> int:
    args = parse_args()
    return run(args, models_folder(args))


def run(args: argparse.Namespace, models: Path) -> int:
    """Each chosen lab's heavy part with LABKIT_MODELS=``models``: its figures printed as JSON (and written)."""
    import os

    import torch

    os.environ["LABKIT_MODELS"] = str(models)
    from labkit.config import choose_device, choose_dtype
    from labkit.profiles import get_profile

    device = choose_device(args.device)
    profile = get_profile("course")
    steps = args.steps
    for lab in args.labs:
        args.steps = steps if steps is not None else 2 if args.quick else STEPS[lab]
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        figures = PARTS[lab](args, profile, device)
        figures.update({"lab": lab, "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
                        "dtype": str(choose_dtype(device)).replace("torch.", ""), "wall_seconds": time.perf_counter() - t0,
                        "peak_gb": _peak_gb(device), "stand_in": True, "quick": args.quick})
        print(json.dumps(figures, default=str), flush=True)
        for path in ([args.json] if args.json else []) + (
                [str(Path(args.json_dir) / f"course_gpu_{lab}.json")] if args.json_dir else []):
            Path(path).write_text(json.dumps(figures, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
