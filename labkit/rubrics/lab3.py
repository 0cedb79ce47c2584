"""Lab 3's rubric checks (PPO and DPO detoxification): toxicity rescored by the grader, the saved PPO and DPO
adapters re-run on hidden rude dialogues, DPO's summaries still summaries, the exercises.
"""
from __future__ import annotations

import json
from typing import Any

from labkit.rubrics import Outcome, check, verifier
from labkit.rubrics.checks import (
    GradeContext, close, close_answer, grader_profile, hidden_dialogues, lookup, number, read_csv, significant_gain,
)


def _classifier(ctx: GradeContext) -> Any:
    if "clf" not in ctx.cache:
        from labkit import models
        ctx.cache["clf"] = models.load_toxicity_classifier(grader_profile(ctx), "cpu")
    return ctx.cache["clf"]


def _hate(ctx: GradeContext, texts: list[str]) -> Any:
    from labkit.toxicity import hate_probabilities
    clf, tok = _classifier(ctx)
    return hate_probabilities([str(t) for t in texts], clf, tok)


@check("lab3_toxicity_recomputed")
def lab3_toxicity_recomputed(ctx: GradeContext, *, tolerance: float) -> Outcome:
    """Recorded mean toxicity before/after equals the classifier's scores of toxicity_eval.csv's summaries, within
    ``tolerance`` (the YAML's)."""
    try:
        before, after = _lab3_hate_columns(ctx)
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    good, bad = 0, []
    for key, mine in (("toxicity_before", before.mean()), ("toxicity_after", after.mean())):
        theirs = number(lookup(ctx.results, f"{key}.mean"))
        if close(theirs, float(mine), tolerance):
            good += 1
        else:
            bad.append(f"{key} recorded {theirs}, recomputed {float(mine):.4f}")
    return Outcome(good / 2, "; ".join(bad) or f"before {before.mean():.3f}, after {after.mean():.3f}", forged=bool(bad))


@check("lab3_detoxified")
def lab3_detoxified(ctx: GradeContext) -> Outcome:
    """Recomputed mean toxicity after PPO is lower than before."""
    try:
        before_p, after_p = _lab3_hate_columns(ctx)
    except (FileNotFoundError, ValueError):
        return Outcome.fail("toxicity_eval.csv could not be scored")
    before, after = float(before_p.mean()), float(after_p.mean())
    return Outcome.ok(f"{before:.3f} → {after:.3f}") if after < before else Outcome.fail(f"{before:.3f} → {after:.3f}")


def _look_sizes(first: int, last: int) -> list[int]:
    """The sample sizes a sequential test looks at: ``first``, doubling, up to ``last``."""
    sizes, size = [], max(2, int(first))
    while size < last:
        sizes.append(size)
        size *= 2
    return sizes + [max(int(last), 2)]


def _saved_policy(ctx: GradeContext, adapter: str) -> tuple[Any, Any, Any] | Outcome:
    """The policy with the submission's saved ``adapter`` loaded (LoRA summarizer merged + the adapter), the
    tokenizer and the grader's profile; or the failed Outcome that says why the adapter cannot be used."""
    import torch
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    from labkit import models
    from labkit.cached_summarizer import lora_summarizer
    from labkit.policy import policy_from_summarizer
    adir = ctx.artifacts / adapter
    if not (adir / "adapter_model.safetensors").is_file():
        return Outcome.fail(f"{adapter}/adapter_model.safetensors was not saved")
    prof = grader_profile(ctx)
    summarizer = lora_summarizer(prof, seed=0, device=torch.device("cpu"), progress=False)
    policy = policy_from_summarizer(summarizer, prof.lora, seed=0)
    try:
        result = set_peft_model_state_dict(policy.model, load_file(str(adir / "adapter_model.safetensors")))
    except (RuntimeError, ValueError, OSError) as err:
        return Outcome.fail(f"the saved adapter does not fit the policy: {err}")
    if getattr(result, "unexpected_keys", None):
        return Outcome.fail(f"the saved adapter has unexpected tensors ({len(result.unexpected_keys)})")
    return policy, models.load_tokenizer(prof), prof


@check("lab3_adapter_regenerates")
def lab3_adapter_regenerates(ctx: GradeContext, *, adapter: str, n_hidden: int, max_hidden: int, confidence: float,
                             max_new_tokens: int = 32, margin: float = 0.0, seed: int = 0) -> Outcome:
    """Rebuild the policy (LoRA summarizer merged + the saved ``adapter``: PPO's, or DPO's ``dpo_adapter``) and
    sample one summary of each hidden rude dialogue (made at grading time, see hidden_dialogues) with the same
    random numbers with and without the adapter: the adapter's must be less toxic by more than noise reaches.

    A sequential test: it looks at ``n_hidden`` dialogues, then twice as many, up to ``max_hidden``, and
    passes at the first look where the one-sided bound of the mean per-dialogue drop in P(hate) lies above
    ``margin`` (see significant_gain). The looks share the error ``1 - confidence`` in proportion to their
    sizes (Bonferroni: a model with no effect passes at most that often, however many looks it takes), so a
    strong adapter passes after a few seconds and a weak but real one (lab 3's PPO lowers P(hate) by a few
    hundredths) as the dialogues add up. An adapter that changed nothing writes the very same summaries at the
    first look, a drop of exactly 0, and fails there. Sampled at the profile's PPO temperature, the
    distribution PPO trained (at 1 the offline stand-in writes word salad whose stray insults swamp what the
    adapter changed). The rubric's YAML sets ``adapter``, ``n_hidden``, ``max_hidden`` and ``confidence``."""
    import numpy as np

    from labkit import prompts
    from labkit.sampling import sample_summaries
    loaded = _saved_policy(ctx, adapter)
    if isinstance(loaded, Outcome):
        return loaded
    policy, tok, prof = loaded
    sizes = _look_sizes(n_hidden, max_hidden)
    hidden = hidden_dialogues(ctx, sizes[-1], toxic_only=True)
    sizes = sorted({min(n, len(hidden)) for n in sizes})
    weights = np.asarray(sizes, dtype=float) / sum(sizes)
    before_p, after_p, same = np.zeros(0), np.zeros(0), 0
    passed, drop, low, level = False, 0.0, 0.0, confidence
    for size, weight in zip(sizes, weights):
        done = len(before_p)
        ps = [prompts.summarize_prompt(r["dialogue"]) for r in hidden[done:size]]
        sampling = dict(max_new_tokens=max_new_tokens, seed=seed + done, progress=False,
                        temperature=prof.ppo.temperature)
        after = sample_summaries(policy, tok, ps, **sampling)
        with policy.model.disable_adapter():
            before = sample_summaries(policy, tok, ps, **sampling)
        same += sum(a == b for a, b in zip(after, before))
        before_p = np.concatenate([before_p, np.asarray(_hate(ctx, before), dtype=float)])
        after_p = np.concatenate([after_p, np.asarray(_hate(ctx, after), dtype=float)])
        level = 1 - (1 - confidence) * weight
        passed, drop, low = significant_gain(before_p - after_p, confidence=level, min_gain=margin)
        if passed or same == len(before_p):  # passed, or the adapter changes no summary at all: nothing to add
            break
    n = len(before_p)
    detail = (f"{n} hidden rude dialogues: mean P(hate) with your adapter {after_p.mean():.3f}, without "
              f"{before_p.mean():.3f} (drop {drop:+.3f}, at least {low:+.3f} at {level:.2%} confidence)")
    if not passed:
        detail += (f": {same} of {n} summaries are exactly those without the adapter; not less toxic by more than "
                   "noise on this many dialogues reaches")
    return Outcome.ok(detail) if passed else Outcome.fail(detail)


def _ppo_log(ctx: GradeContext) -> list[dict[str, Any]]:
    saved = ctx.artifacts / "ppo_adapter"
    for name in ("ppo_log.json", "log.json"):
        if (saved / name).is_file():
            try:
                data = json.loads((saved / name).read_text(encoding="utf-8"))
                if isinstance(data, list) and data:
                    return data
            except ValueError:
                pass
    log_ = ctx.results.get("ppo_log")
    return log_ if isinstance(log_, list) else []


@verifier("lab3_best_reward_step")
def lab3_best_reward_step(ctx: GradeContext, answer: Any) -> Outcome:
    """The PPO step with the highest mean reward (from the log saved beside the adapter, else the recorded one)."""
    entries = [e for e in _ppo_log(ctx) if isinstance(e, dict) and number(e.get("reward_mean")) is not None]
    if not entries:
        return Outcome.fail("no PPO log to check the answer against")
    best = max(e["reward_mean"] for e in entries)
    steps = {int(e["step"]) for e in entries if e["reward_mean"] == best}
    return Outcome.ok() if answer in steps else Outcome.fail(f"step {json.dumps(answer)} did not have the highest reward")


def _lab3_hate_columns(ctx: GradeContext) -> tuple[Any, Any]:
    """P(hate) of toxicity_eval.csv's summaries before and after PPO, rescored by the grader (once per context)."""
    if "lab3_hate" not in ctx.cache:
        df = read_csv(ctx, "toxicity_eval.csv", ["id", "summary_before", "summary_after"])
        ctx.cache["lab3_hate"] = (_hate(ctx, list(df["summary_before"])), _hate(ctx, list(df["summary_after"])))
    return ctx.cache["lab3_hate"]


@verifier("lab3_toxicity_drop_percent")
def lab3_toxicity_drop_percent(ctx: GradeContext, answer: Any, rel_tol: float = 0.01, abs_tol: float = 0.1) -> Outcome:
    """100 * (before − after) / before of the mean P(hate), rescored by the grader from toxicity_eval.csv."""
    before, after = _lab3_hate_columns(ctx)
    b, a = float(before.mean()), float(after.mean())
    return close_answer(answer, 100 * (b - a) / b, rel_tol=rel_tol, abs_tol=abs_tol, what="the relative drop in toxicity")


@verifier("lab3_share_detoxified")
def lab3_share_detoxified(ctx: GradeContext, answer: Any, abs_tol: float = 0.0125) -> Outcome:
    """Share of prompts hateful before (P > 0.5) and not after, rescored by the grader."""
    before, after = _lab3_hate_columns(ctx)
    share = float(((before > 0.5) & (after <= 0.5)).mean())
    return close_answer(answer, share, rel_tol=0, abs_tol=abs_tol, what="the share of summaries detoxified")


# ---------------------------------------------------------------- DPO


def _dpo_hate(ctx: GradeContext) -> tuple[Any, Any, Any]:
    """(before, after DPO) P(hate) of toxicity_eval.csv's summaries, rescored by the grader, and the table."""
    if "lab3_dpo_hate" not in ctx.cache:
        df = read_csv(ctx, "toxicity_eval.csv", ["id", "summary_before", "summary_after_dpo"])
        ctx.cache["lab3_dpo_hate"] = (_hate(ctx, list(df["summary_before"])),
                                      _hate(ctx, list(df["summary_after_dpo"])), df)
    return ctx.cache["lab3_dpo_hate"]


@check("lab3_dpo_toxicity_recomputed")
def lab3_dpo_toxicity_recomputed(ctx: GradeContext, *, tolerance: float) -> Outcome:
    """Recorded mean toxicity after DPO equals the classifier's scores of toxicity_eval.csv's summary_after_dpo,
    within ``tolerance`` (the YAML's)."""
    try:
        _, after, _ = _dpo_hate(ctx)
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    theirs = number(lookup(ctx.results, "toxicity_after_dpo.mean"))
    if close(theirs, float(after.mean()), tolerance):
        return Outcome.ok(f"after DPO {after.mean():.3f}")
    return Outcome(0.0, f"toxicity_after_dpo recorded {theirs}, recomputed {float(after.mean()):.4f}", forged=True)


@check("lab3_dpo_detoxified")
def lab3_dpo_detoxified(ctx: GradeContext) -> Outcome:
    """Recomputed mean toxicity after DPO is lower than before (the same summaries before as PPO's)."""
    try:
        before, after, _ = _dpo_hate(ctx)
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    detail = f"{before.mean():.3f} → {after.mean():.3f}"
    return Outcome.ok(detail) if after.mean() < before.mean() else Outcome.fail(detail)


@check("lab3_dpo_kept_summaries")
def lab3_dpo_kept_summaries(ctx: GradeContext, *, min_length_ratio: float, min_in_vocabulary: float) -> Outcome:
    """DPO's summaries are still summaries: their total words at least ``min_length_ratio`` of the summaries'
    before, and at least ``min_in_vocabulary`` of their words found in the dataset (from toxicity_eval.csv; both
    thresholds are the YAML's)."""
    from labkit.data import load_dialogsum
    from labkit.metrics import dataset_vocabulary, text_quality
    try:
        df = read_csv(ctx, "toxicity_eval.csv", ["id", "summary_before", "summary_after_dpo"])
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    if "lab3_vocab" not in ctx.cache:
        ctx.cache["lab3_vocab"] = dataset_vocabulary(load_dialogsum(grader_profile(ctx)))
    before = sum(len(str(t).split()) for t in df["summary_before"])
    after = sum(len(str(t).split()) for t in df["summary_after_dpo"])
    ratio = after / max(before, 1)
    vocab_share = text_quality([str(t) for t in df["summary_after_dpo"]], ctx.cache["lab3_vocab"]).in_vocabulary_share
    detail = f"length after DPO {ratio:.0%} of before, {vocab_share:.1%} of its words in the data"
    ok = ratio >= min_length_ratio and vocab_share >= min_in_vocabulary
    return Outcome.ok(detail) if ok else Outcome.fail(detail)


@verifier("lab3_dpo_chosen_shorter_share")
def lab3_dpo_chosen_shorter_share(ctx: GradeContext, answer: Any, abs_tol: float = 1e-6) -> Outcome:
    """Share of DPO's pairs whose chosen summary has fewer words than the rejected one, recounted by the grader
    from the texts in dpo_pairs.csv."""
    df = read_csv(ctx, "dpo_pairs.csv", ["chosen", "rejected"])
    if not len(df):
        return Outcome.fail("dpo_pairs.csv has no pairs")
    shorter = [len(str(c).split()) < len(str(r).split()) for c, r in zip(df["chosen"], df["rejected"])]
    return close_answer(answer, sum(shorter) / len(shorter), rel_tol=0, abs_tol=abs_tol,
                        what="the share of pairs whose chosen summary is the shorter")


@check("lab3_facts_kept")
def lab3_facts_kept(ctx: GradeContext, *, max_invented: float,
                    columns: tuple[str, ...] = ("summary_before", "summary_after", "summary_after_dpo")) -> Outcome:
    """Recomputed from toxicity_eval.csv against the grader's dialogues (``labkit.facts``): the invented-fact
    rate of the summaries before PPO, after PPO and after DPO is at most ``max_invented`` (the YAML's); partial
    credit per column."""
    from labkit.rubrics.checks import invented_rates
    try:
        df = read_csv(ctx, "toxicity_eval.csv", ["id", *columns])
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    return invented_rates(ctx, df, {c: c for c in columns}, max_invented)
