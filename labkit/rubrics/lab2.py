"""Lab 2's rubric checks (full fine-tuning, LoRA, prompt tuning, QLoRA where it ran): summaries.csv and ROUGE
recomputed, the saved adapters re-run, the exercises.
"""
from __future__ import annotations

from typing import Any

from labkit.rubrics import Outcome, check, verifier
from labkit.rubrics.checks import (
    GradeContext, MAX_ARTIFACT_MB, close_answer, grader_profile, grader_test_split, hidden_dialogues, read_csv,
    recorded_rouge_matches, reference_mismatch, references, rouge_of, significant_gain,
)


_LAB2_COLUMNS = {"original": "original_model_summaries", "full_ft": "instruct_model_summaries",
                 "lora": "peft_model_summaries", "prompt_tuning": "prompt_tuning_model_summaries"}
# Only where QLoRA ran (bitsandbytes' 4-bit works on the learner's device); a run that skipped it loses nothing.
_LAB2_OPTIONAL_COLUMNS = {"qlora": "qlora_model_summaries"}


def _lab2_recomputed(ctx: GradeContext) -> dict[str, Any]:
    if "lab2_rouge" not in ctx.cache:
        df = read_csv(ctx, "summaries.csv", ["id", "human_baseline_summaries", *_LAB2_COLUMNS.values()])
        refs = references(ctx)
        unknown = [i for i in df["id"] if i not in refs]
        if unknown:
            raise ValueError(f"summaries.csv has ids that are not test dialogues: {', '.join(unknown[:3])}")
        gold = [refs[i] for i in df["id"]]
        columns = {**_LAB2_COLUMNS, **{m: c for m, c in _LAB2_OPTIONAL_COLUMNS.items() if c in df.columns}}
        ctx.cache["lab2_df"] = df
        ctx.cache["lab2_rouge"] = {m: rouge_of(list(df[col]), gold) for m, col in columns.items()}
    return ctx.cache["lab2_rouge"]


@check("lab2_summaries_csv")
def lab2_summaries_csv(ctx: GradeContext) -> Outcome:
    """summaries.csv exists with the contract's columns (QLoRA's only where it ran), test ids and the true human
    summaries."""
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
    """Recorded ROUGE of each model equals ROUGE recomputed from summaries.csv (partial credit per model; QLoRA
    counts only where its column was saved; a model recorded but not saved, or saved but not recorded, fails:
    see recorded_rouge_matches)."""
    return recorded_rouge_matches(ctx, "rouge", _lab2_recomputed, tolerance=tolerance, what="models")


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


def _plain_summaries(model: Any, tok: Any, ps: list[str], cfg: Any) -> list[str]:
    """The base model's summaries: a LoRA adapter is switched off in place, a soft prompt is simply left out."""
    from labkit import generate
    if getattr(getattr(model, "active_peft_config", None), "is_prompt_learning", False):
        return generate.generate(model.get_base_model(), tok, ps, cfg, progress=False)
    with model.disable_adapter():
        return generate.generate(model, tok, ps, cfg, progress=False)


@check("lab2_adapter_regenerates")
def lab2_adapter_regenerates(ctx: GradeContext, n_hidden: int = 32, max_new_tokens: int = 50,
                             confidence: float = 0.95, min_gain: float = 0.0, consistency: float = 0.5,
                             adapter: str = "peft_adapter", column: str = "peft_model_summaries") -> Outcome:
    """Load ``adapter`` (the LoRA adapter, or prompt tuning's soft prompt) on the base and summarise ``n_hidden``
    hidden dialogues (made at grading time, see hidden_dialogues) with and without it, greedily. Half the points:
    its ROUGE-1 beats the base model's by more than noise on that many dialogues reaches (the one-sided
    ``confidence`` bound of the mean per-dialogue gain above ``min_gain``, see significant_gain); an adapter
    that learned nothing (every summary the base model's) earns nothing at all here. The other half:
    regenerating a few of the saved test rows reproduces ``column`` of summaries.csv (a mismatch marks it
    forged)."""
    from labkit import generate, models, prompts
    from labkit.metrics import rouge_scores
    try:
        model, _ = _load_adapter_model(ctx, adapter)
    except (FileNotFoundError, ValueError, OSError, RuntimeError) as err:
        return Outcome.fail(f"could not load the adapter: {err}")
    tok = models.load_tokenizer(grader_profile(ctx))
    hidden = hidden_dialogues(ctx, n_hidden)
    ps = [prompts.summarize_prompt(r["dialogue"]) for r in hidden]
    cfg = generate.make_config("greedy", max_new_tokens=max_new_tokens)
    tuned = generate.generate(model, tok, ps, cfg, progress=False)
    plain = _plain_summaries(model, tok, ps, cfg)
    gold = [r["summary"] for r in hidden]
    r_tuned = rouge_scores([str(t) for t in tuned], gold)["rouge1"].to_numpy()
    r_plain = rouge_scores([str(t) for t in plain], gold)["rouge1"].to_numpy()
    learned, gain, low = significant_gain(r_tuned - r_plain, confidence=confidence, min_gain=min_gain)
    parts = [f"{len(hidden)} hidden dialogues: ROUGE-1 with your adapter {r_tuned.mean():.3f}, without "
             f"{r_plain.mean():.3f} (gain {gain:+.3f}, at least {low:+.3f} at {confidence:.0%} confidence)"]
    if not learned:
        same = sum(a == b for a, b in zip(tuned, plain))
        parts.append(f"no gain beyond noise on {len(hidden)} dialogues ({same} of {len(hidden)} summaries are "
                     "exactly the base model's): the saved adapter learned nothing the grader can measure")
    frac = 0.5 if learned else 0.0
    try:
        _lab2_recomputed(ctx)
        df = ctx.cache["lab2_df"].head(4)
        test = {str(i): d for i, d in zip(grader_test_split(ctx)["id"], grader_test_split(ctx)["dialogue"])}
        again = generate.generate(model, tok, [prompts.summarize_prompt(test[i]) for i in df["id"]], cfg, progress=False)
        agree = rouge_of(again, list(df[column])).scores["rougeL"]
        parts.append(f"saved {column} reproduced (ROUGE-L {agree:.2f})")
        if agree < consistency:
            return Outcome(frac, "; ".join(parts) + ": summaries.csv was not produced by this adapter", forged=True)
        frac += 0.5 if learned else 0.0
    except (FileNotFoundError, ValueError, KeyError) as err:
        parts.append(f"cannot compare with summaries.csv ({err})")
    return Outcome(frac, "; ".join(parts))


@check("lab2_prompt_tuning_reads")
def lab2_prompt_tuning_reads(ctx: GradeContext, max_degenerate: float = 0.05, min_in_vocabulary: float = 0.97) -> Outcome:
    """Recomputed from summaries.csv: prompt tuning beats the original model's ROUGE-1 (half credit), and its
    summaries read as text, few degenerate and nearly all words in the data's vocabulary (half credit)."""
    from labkit.data import load_dialogsum
    from labkit.metrics import dataset_vocabulary, text_quality
    try:
        rec = _lab2_recomputed(ctx)
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    if "lab2_vocab" not in ctx.cache:
        ctx.cache["lab2_vocab"] = dataset_vocabulary(load_dialogsum(grader_profile(ctx)))
    q = text_quality(list(ctx.cache["lab2_df"]["prompt_tuning_model_summaries"].astype(str)), ctx.cache["lab2_vocab"])
    pt, base = rec["prompt_tuning"].scores["rouge1"], rec["original"].scores["rouge1"]
    frac = (0.5 if pt > base else 0.0) + (0.5 if q.degenerate_share <= max_degenerate
                                          and q.in_vocabulary_share >= min_in_vocabulary else 0.0)
    return Outcome(frac, f"prompt tuning ROUGE-1 {pt:.3f} (original {base:.3f}); degenerate {q.degenerate_share:.1%}, "
                         f"in vocabulary {q.in_vocabulary_share:.1%}")


@check("lab2_qlora")
def lab2_qlora(ctx: GradeContext) -> Outcome:
    """QLoRA where it could run, else a stated reason: a run that skipped it (bitsandbytes missing, or its 4-bit
    layers not working on the device) passes; one that ran must have saved its summaries, which must beat the
    original model's recomputed ROUGE-1."""
    recorded = ctx.results.get("qlora")
    if not isinstance(recorded, dict):
        return Outcome.fail("qlora was not recorded (the QLoRA cell records whether it ran, or why not)")
    if recorded.get("skipped"):
        return Outcome.ok(f"QLoRA skipped, not counted against you: {str(recorded['skipped'])[:200]}")
    try:
        rec = _lab2_recomputed(ctx)
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    if "qlora" not in rec:
        return Outcome.fail("QLoRA ran but summaries.csv has no qlora_model_summaries column")
    q, base = rec["qlora"].scores["rouge1"], rec["original"].scores["rouge1"]
    return Outcome(1.0 if q > base else 0.0, f"QLoRA ROUGE-1 {q:.3f} (original {base:.3f})")


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
    from labkit.training.memory import estimate_memory
    return close_answer(answer, estimate_memory(params).training_bytes / 1e9, rel_tol=rel_tol, abs_tol=0,
                         what="the rule-of-thumb memory of full fine-tuning")


@verifier("lab2_prompt_gain_share")
def lab2_prompt_gain_share(ctx: GradeContext, answer: Any, abs_tol: float = 0.005) -> Outcome:
    """(prompt tuning − original) / (full fine-tuning − original) mean ROUGE-1, recomputed from summaries.csv."""
    rec = _lab2_recomputed(ctx)
    o, f, p = (rec[m].scores["rouge1"] for m in ("original", "full_ft", "prompt_tuning"))
    if f == o:
        return Outcome.fail("full fine-tuning scored exactly the original's ROUGE-1, so the share is undefined")
    return close_answer(answer, (p - o) / (f - o), rel_tol=1e-3, abs_tol=abs_tol,
                         what="prompt tuning's share of full fine-tuning's ROUGE-1 gain")


@verifier("lab2_nf4_weights_gb")
def lab2_nf4_weights_gb(ctx: GradeContext, answer: Any, params: int = 247_577_856, rel_tol: float = 1e-3) -> Outcome:
    """flan-t5-base's weights in 4-bit NF4 with double quantization, in GB (labkit.training.qlora)."""
    from labkit.training.qlora import nf4_bytes_per_param
    return close_answer(answer, params * nf4_bytes_per_param() / 1e9, rel_tol=rel_tol, abs_tol=0,
                         what="the NF4 size of flan-t5-base's weights")


@check("lab2_facts_kept")
def lab2_facts_kept(ctx: GradeContext, models: tuple[str, ...] = ("full_ft", "lora"), max_invented: float = 0.10) -> Outcome:
    """Recomputed from summaries.csv against the grader's dialogues (``labkit.facts``): the invented-fact rate
    of each of ``models``' summaries (the share of their names, numbers and days that the dialogue does not
    contain) is at most ``max_invented``; partial credit per model."""
    from labkit.rubrics.checks import invented_rates
    try:
        df = read_csv(ctx, "summaries.csv", ["id", *(_LAB2_COLUMNS[m] for m in models)])
    except (FileNotFoundError, ValueError, KeyError) as err:
        return Outcome.fail(str(err))
    return invented_rates(ctx, df, {m: _LAB2_COLUMNS[m] for m in models}, max_invented)
