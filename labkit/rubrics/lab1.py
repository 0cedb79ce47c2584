"""Lab 1's rubric checks (prompt engineering): generations.csv and ROUGE recomputed, prompt budgets, the exercises."""
from __future__ import annotations

import json
from typing import Any

from labkit.rubrics import Outcome, check, verifier
from labkit.rubrics.checks import (
    GradeContext, close, grader_profile, grader_test_split, lookup, number, read_csv, recorded_rouge_matches,
    reference_mismatch, references, rouge_of,
)


def _lab1_recomputed(ctx: GradeContext) -> dict[str, Any]:
    """strategy → RougeResult recomputed from generations.csv against the grader's references."""
    if "lab1_rouge" not in ctx.cache:
        df = read_csv(ctx, "generations.csv", ["id", "strategy", "reference", "prediction"])
        refs = references(ctx)
        unknown = sorted({i for i in df["id"] if i not in refs})
        if unknown:
            raise ValueError(f"generations.csv has ids that are not test dialogues: {', '.join(unknown[:3])}")
        out = {}
        for strategy, part in df.groupby("strategy", sort=False):
            out[str(strategy)] = rouge_of(list(part["prediction"]), [refs[i] for i in part["id"]])
            out[str(strategy)].ids = list(part["id"])
        ctx.cache["lab1_rouge"] = out
    return ctx.cache["lab1_rouge"]


@check("lab1_generations_csv")
def lab1_generations_csv(ctx: GradeContext, min_rows: int = 1) -> Outcome:
    """generations.csv exists, has the contract's columns, test ids, and the true references."""
    try:
        df = read_csv(ctx, "generations.csv", ["id", "strategy", "reference", "prediction"])
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    if len(df) < min_rows:
        return Outcome.fail(f"only {len(df)} rows")
    bad = reference_mismatch(ctx, df, "reference")
    if bad:
        # a few differing rows can be an older data release; most rows differing is an edited file
        return Outcome.fail(f"{len(bad)} of {len(df)} rows carry a reference that is not the test split's summary "
                            f"(e.g. id {bad[0]}): edited, or made with another version of data/",
                            forged=len(bad) > len(df) / 2)
    return Outcome.ok(f"{len(df)} generations over {df['strategy'].nunique()} strategies")


@check("lab1_rouge_recomputed")
def lab1_rouge_recomputed(ctx: GradeContext, tolerance: float = 0.005) -> Outcome:
    """Recorded ROUGE per strategy equals ROUGE recomputed from generations.csv (partial credit per strategy;
    a strategy recorded but not saved, or saved but not recorded, fails: see recorded_rouge_matches)."""
    return recorded_rouge_matches(ctx, "rouge_by_strategy", _lab1_recomputed, tolerance=tolerance, what="strategies")


@check("lab1_prompt_budget")
def lab1_prompt_budget(ctx: GradeContext) -> Outcome:
    """Every strategy's prompt fits the encoder's token limit."""
    pt = ctx.results.get("prompt_tokens")
    if not isinstance(pt, dict) or not pt:
        return Outcome.fail("prompt_tokens was not recorded")
    over = [s for s, v in pt.items() if not (isinstance(v, dict) and number(v.get("tokens")) is not None
                                              and number(v.get("limit")) and v["tokens"] <= v["limit"])]
    return Outcome.fail(f"over budget or malformed: {', '.join(over)}") if over else Outcome.ok()


@verifier("lab1_best_strategy")
def lab1_best_strategy(ctx: GradeContext, answer: Any) -> Outcome:
    """The strategy with the highest mean ROUGE-1, recomputed from generations.csv."""
    rec = _lab1_recomputed(ctx)
    best = max(rec, key=lambda s: rec[s].scores["rouge1"])
    top = rec[best].scores["rouge1"]
    tied = {s for s, r in rec.items() if abs(r.scores["rouge1"] - top) < 1e-9}
    return Outcome.ok() if answer in tied else Outcome.fail(f"{json.dumps(answer)} is not the best strategy")


@verifier("lab1_few_vs_zero_ci")
def lab1_few_vs_zero_ci(ctx: GradeContext, answer: Any, tolerance: float = 1e-3) -> Outcome:
    """[low, high] bootstrap CI of per-example ROUGE-1 (few_shot − zero_shot), recomputed."""
    from labkit.metrics import bootstrap_ci
    if not (isinstance(answer, list) and len(answer) == 2 and all(number(x) is not None for x in answer)):
        return Outcome.fail("expected [low, high], two numbers")
    rec = _lab1_recomputed(ctx)
    few, zero = rec["few_shot"], rec["zero_shot"]
    if few.ids != zero.ids:
        return Outcome.fail("few_shot and zero_shot were not scored on the same dialogues")
    diff = few.per_example["rouge1"].to_numpy() - zero.per_example["rouge1"].to_numpy()
    seed = int(ctx.params.get("seed", lookup(ctx.results, "run_info.seed") or 42))
    lo, hi = bootstrap_ci(diff, seed=seed)
    if close(answer[0], lo, tolerance) and close(answer[1], hi, tolerance):
        return Outcome.ok()
    # right idea, different resampling: half the points if it brackets the mean difference
    mean = float(diff.mean())
    if answer[0] <= mean <= answer[1]:
        return Outcome(0.5, f"your interval brackets the mean difference but is not [{lo:.4f}, {hi:.4f}]")
    return Outcome.fail("not the bootstrap interval of the per-example differences")


@verifier("lab1_shots_kept")
def lab1_shots_kept(ctx: GradeContext, answer: Any, max_source_tokens: int = 256) -> Outcome:
    """Number of shots that survive a smaller token budget, rebuilt by the grader."""
    from labkit import models, prompts
    test = grader_test_split(ctx)
    examples = prompts.rows_at(test, list(ctx.setting("example_indices")), what="example_indices")
    shots = prompts.rows_at(test, list(ctx.setting("shot_indices")), what="shot_indices")
    tok = models.load_tokenizer(grader_profile(ctx))
    kept = prompts.build_prompt("few_shot", examples[-1]["dialogue"], tokenizer=tok, shots=shots,
                                max_source_tokens=max_source_tokens).shots_kept
    return Outcome.ok() if answer == kept else Outcome.fail(f"{json.dumps(answer)} worked examples is not right")


@verifier("lab1_tokens_cut")
def lab1_tokens_cut(ctx: GradeContext, answer: Any) -> Outcome:
    """Tokens the course's unbudgeted few-shot prompt (prompts.make_prompt) loses past the encoder limit."""
    from labkit import models, prompts
    test = grader_test_split(ctx)
    examples = prompts.rows_at(test, list(ctx.setting("example_indices")), what="example_indices")
    shots = prompts.rows_at(test, list(ctx.setting("shot_indices")), what="shot_indices")
    prof = grader_profile(ctx)
    tok = models.load_tokenizer(prof)
    cut = max(0, prompts.count_tokens(tok, prompts.make_prompt(shots, examples[-1]["dialogue"])) - prof.max_source_tokens)
    if isinstance(answer, bool) or answer != cut:
        return Outcome.fail(f"{json.dumps(answer)} tokens is not right")
    return Outcome.ok()


@check("lab1_facts_kept")
def lab1_facts_kept(ctx: GradeContext, strategies: tuple[str, ...] = ("zero_shot_flan", "one_shot", "few_shot"),
                    max_invented: float = 0.15, echo_strategies: tuple[str, ...] = ("one_shot", "few_shot"),
                    max_echo: float = 0.10) -> Outcome:
    """Recomputed from generations.csv against the grader's dialogues (``labkit.facts``): each strategy's
    invented-fact rate at most ``max_invented``, and at most ``max_echo`` of the one- and few-shot outputs closer
    (ROUGE-1) to a worked example's summary than to their own reference. Partial credit per condition."""
    from labkit import facts
    from labkit.rubrics.checks import invented_rates
    try:
        df = read_csv(ctx, "generations.csv", ["id", "strategy", "reference", "prediction"])
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    parts, held, total = [], 0.0, 0
    for strategy in strategies:
        part = df[df["strategy"] == strategy].reset_index(drop=True)
        if part.empty:
            parts.append(f"{strategy}: no generations")
            total += 1
            continue
        outcome = invented_rates(ctx, part, {strategy: "prediction"}, max_invented)
        held, total = held + outcome.fraction, total + 1
        parts.append(outcome.detail)
    test = grader_test_split(ctx)
    examples = [r["summary"] for r in _shot_rows(test, ctx.setting("shot_indices"))]
    refs = references(ctx)
    for strategy in echo_strategies:
        part = df[df["strategy"] == strategy]
        total += 1
        if part.empty or not examples:
            parts.append(f"{strategy}: no generations or no worked examples to compare with")
            continue
        share = facts.echo_share([str(p) for p in part["prediction"]], [refs.get(str(i), "") for i in part["id"]],
                                 examples)
        held += share <= max_echo
        parts.append(f"{strategy}: {share:.0%} of outputs closer to a worked example than to their own reference "
                     f"(at most {max_echo:.0%})")
    return Outcome(held / total if total else 1.0, "; ".join(parts))


def _shot_rows(test: Any, indices: Any) -> list[dict]:
    """The test rows at ``indices`` (the run's worked examples), or none when the setting is missing."""
    from labkit import prompts
    return prompts.rows_at(test, list(indices), what="shot_indices") if indices else []
