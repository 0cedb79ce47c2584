"""Lab 2's rubric checks (full fine-tuning vs LoRA): summaries.csv and ROUGE recomputed, the saved adapter re-run,
the exercises.
"""
from __future__ import annotations

from typing import Any

from labkit.rubrics import Outcome, check, verifier
from labkit.rubrics.checks import (
    GradeContext, MAX_ARTIFACT_MB, close, close_answer, grader_profile, grader_test_split, hidden_dialogues,
    mean_of, read_csv, reference_mismatch, references, rouge_of,
)


_LAB2_COLUMNS = {"original": "original_model_summaries", "full_ft": "instruct_model_summaries",
                 "lora": "peft_model_summaries"}


def _lab2_recomputed(ctx: GradeContext) -> dict[str, Any]:
    if "lab2_rouge" not in ctx.cache:
        df = read_csv(ctx, "summaries.csv", ["id", "human_baseline_summaries", *_LAB2_COLUMNS.values()])
        refs = references(ctx)
        unknown = [i for i in df["id"] if i not in refs]
        if unknown:
            raise ValueError(f"summaries.csv has ids that are not test dialogues: {', '.join(unknown[:3])}")
        gold = [refs[i] for i in df["id"]]
        ctx.cache["lab2_df"] = df
        ctx.cache["lab2_rouge"] = {m: rouge_of(list(df[col]), gold) for m, col in _LAB2_COLUMNS.items()}
    return ctx.cache["lab2_rouge"]


@check("lab2_summaries_csv")
def lab2_summaries_csv(ctx: GradeContext) -> Outcome:
    """summaries.csv exists with the contract's columns, test ids and the true human summaries."""
    try:
        df = read_csv(ctx, "summaries.csv", ["id", "human_baseline_summaries", *_LAB2_COLUMNS.values()])
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    bad = reference_mismatch(ctx, df, "human_baseline_summaries")
    if bad:
        return Outcome.fail(f"{len(bad)} of {len(df)} rows carry a human summary that is not the test split's "
                            f"(e.g. id {bad[0]}): edited, or made with another version of data/",
                            forged=len(bad) > len(df) / 2)
    return Outcome.ok(f"{len(df)} dialogues")


@check("lab2_rouge_recomputed")
def lab2_rouge_recomputed(ctx: GradeContext, tolerance: float = 0.005) -> Outcome:
    """Recorded ROUGE of each model equals ROUGE recomputed from summaries.csv (partial credit per model)."""
    recorded = ctx.results.get("rouge")
    if not isinstance(recorded, dict):
        return Outcome.fail("rouge was not recorded")
    try:
        rec = _lab2_recomputed(ctx)
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    good, bad = [], []
    for model, r in rec.items():
        mine, theirs = r.scores["rouge1"], mean_of(recorded.get(model))
        (good if close(mine, theirs, tolerance) else bad).append(f"{model} (recorded {theirs}, recomputed {mine:.4f})")
    return Outcome(len(good) / len(rec), "mismatch: " + "; ".join(bad) if bad else "all models match", forged=bool(bad))


@check("lab2_finetuning_helps")
def lab2_finetuning_helps(ctx: GradeContext, margin: float = 0.0) -> Outcome:
    """Recomputed ROUGE-1: full fine-tuning and LoRA each beat the original model (half credit each)."""
    try:
        rec = _lab2_recomputed(ctx)
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    base = rec["original"].scores["rouge1"]
    wins = [m for m in ("full_ft", "lora") if rec[m].scores["rouge1"] > base + margin]
    detail = ", ".join(f"{m} {rec[m].scores['rouge1']:.3f}" for m in ("original", "full_ft", "lora"))
    return Outcome(len(wins) / 2, detail)


def _load_adapter_model(ctx: GradeContext, adapter: str) -> Any:
    """Base model of the profile with the submission's adapter (safetensors only; no pickles)."""
    from peft import PeftModel

    from labkit import models
    adir = ctx.artifacts / adapter
    if any(adir.glob("*.bin")) or any(adir.glob("*.pt")) or any(adir.glob("*.pkl")):
        raise ValueError(f"{adapter}/ holds pickle files; only safetensors adapters are loaded")
    if not (adir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter}/adapter_config.json was not saved")
    if sum(p.stat().st_size for p in adir.rglob("*") if p.is_file()) > MAX_ARTIFACT_MB * 2**20:
        raise ValueError(f"{adapter}/ is larger than {MAX_ARTIFACT_MB} MB")
    prof = grader_profile(ctx)
    import torch
    from safetensors import safe_open
    base = models.load_seq2seq(prof, torch.device("cpu"), torch.float32)
    # an adapter saved after resize_token_embeddings carries the embeddings: give the base the same size
    with safe_open(str(adir / "adapter_model.safetensors"), framework="pt") as fh:
        rows = {fh.get_slice(k).get_shape()[0] for k in fh.keys() if k.endswith(("shared.weight", "embed_tokens.weight"))}
    if len(rows) == 1 and next(iter(rows)) != base.get_input_embeddings().weight.shape[0]:
        base.resize_token_embeddings(next(iter(rows)))
    return PeftModel.from_pretrained(base, str(adir), is_trainable=False).eval(), base


@check("lab2_adapter_regenerates")
def lab2_adapter_regenerates(ctx: GradeContext, n_hidden: int = 16, max_new_tokens: int = 50,
                             min_gain: float = -0.02, consistency: float = 0.5) -> Outcome:
    """Load peft_adapter on the base, summarise hidden dialogues: the adapter must not be worse than the
    base model (ROUGE-1), and regenerating a few of the saved test rows must reproduce summaries.csv."""
    from labkit import generate, models, prompts
    try:
        model, base = _load_adapter_model(ctx, "peft_adapter")
    except (FileNotFoundError, ValueError, OSError, RuntimeError) as err:
        return Outcome.fail(f"could not load the adapter: {err}")
    tok = models.load_tokenizer(grader_profile(ctx))
    hidden = hidden_dialogues(ctx, n_hidden)
    ps = [prompts.summarize_prompt(r["dialogue"]) for r in hidden]
    cfg = generate.make_config("greedy", max_new_tokens=max_new_tokens)
    tuned = generate.generate(model, tok, ps, cfg, progress=False)
    with model.disable_adapter():
        plain = generate.generate(model, tok, ps, cfg, progress=False)
    gold = [r["summary"] for r in hidden]
    r_tuned, r_plain = rouge_of(tuned, gold).scores["rouge1"], rouge_of(plain, gold).scores["rouge1"]
    parts, frac = [f"hidden dialogues: adapter ROUGE-1 {r_tuned:.3f}, base {r_plain:.3f}"], 0.0
    if r_tuned >= r_plain + min_gain:
        frac += 0.5
    try:
        _lab2_recomputed(ctx)
        df = ctx.cache["lab2_df"].head(4)
        test = {str(i): d for i, d in zip(grader_test_split(ctx)["id"], grader_test_split(ctx)["dialogue"])}
        again = generate.generate(model, tok, [prompts.summarize_prompt(test[i]) for i in df["id"]], cfg, progress=False)
        agree = rouge_of(again, list(df["peft_model_summaries"])).scores["rougeL"]
        parts.append(f"saved LoRA summaries reproduced (ROUGE-L {agree:.2f})")
        if agree >= consistency:
            frac += 0.5
        else:
            return Outcome(frac, "; ".join(parts) + ": summaries.csv was not produced by this adapter", forged=True)
    except (FileNotFoundError, ValueError, KeyError) as err:
        parts.append(f"cannot compare with summaries.csv ({err})")
    return Outcome(frac, "; ".join(parts))


@verifier("lab2_lora_gain_percent")
def lab2_lora_gain_percent(ctx: GradeContext, answer: Any, rel_tol: float = 1e-3, abs_tol: float = 0.05) -> Outcome:
    """100 * (LoRA − original) / original mean ROUGE-1, recomputed from summaries.csv."""
    rec = _lab2_recomputed(ctx)
    o, lo = rec["original"].scores["rouge1"], rec["lora"].scores["rouge1"]
    return close_answer(answer, 100 * (lo - o) / o, rel_tol=rel_tol, abs_tol=abs_tol,
                         what="the relative ROUGE-1 gain of LoRA over the original model")


@verifier("lab2_checkpoint_ratio")
def lab2_checkpoint_ratio(ctx: GradeContext, answer: Any, rel_tol: float = 0.01) -> Outcome:
    """Size of full_model/model.safetensors over peft_adapter/adapter_model.safetensors, measured on the files."""
    full = ctx.artifacts / "full_model" / "model.safetensors"
    adapter = ctx.artifacts / "peft_adapter" / "adapter_model.safetensors"
    if not (full.is_file() and adapter.is_file()):
        return Outcome.fail("the saved full model or adapter is missing, so the ratio cannot be checked")
    return close_answer(answer, full.stat().st_size / adapter.stat().st_size, rel_tol=rel_tol, abs_tol=0,
                         what="the size ratio of the saved weights")


@verifier("lab2_full_ft_memory_gb")
def lab2_full_ft_memory_gb(ctx: GradeContext, answer: Any, params: int = 247_577_856, rel_tol: float = 1e-3) -> Outcome:
    """The course's rule-of-thumb training memory of flan-t5-base, in GB (labkit.finetune.estimate_memory)."""
    from labkit.finetune import estimate_memory
    return close_answer(answer, estimate_memory(params).training_bytes / 1e9, rel_tol=rel_tol, abs_tol=0,
                         what="the rule-of-thumb memory of full fine-tuning")
