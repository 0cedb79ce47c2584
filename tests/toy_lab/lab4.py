"""The toy fourth lab's rubric checks: word counts recomputed from the grader's own test split."""
from __future__ import annotations

from typing import Any

from labkit.rubrics import Outcome, check, verifier
from labkit.rubrics.checks import GradeContext, grader_test_split, read_csv


def _counts(ctx: GradeContext) -> dict[str, int]:
    """id → words of the reference summary, from the grader's data."""
    test = grader_test_split(ctx)
    return {str(i): len(s.split()) for i, s in zip(test["id"], test["summary"])}


@check("lab4_word_counts")
def lab4_word_counts(ctx: GradeContext) -> Outcome:
    """word_counts.csv counts the words of the test split's summaries, and mean_words is their mean."""
    try:
        df = read_csv(ctx, "word_counts.csv", ["id", "words"])
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    truth = _counts(ctx)
    wrong = [i for i, w in zip(df["id"], df["words"]) if truth.get(str(i)) != int(w)]
    if wrong or not len(df):
        return Outcome.fail(f"{len(wrong)} of {len(df)} counts are not the summaries' word counts", forged=bool(wrong))
    mean = float(df["words"].mean())
    recorded = ctx.results.get("mean_words")
    if not isinstance(recorded, (int, float)) or abs(recorded - mean) > 1e-9:
        return Outcome.fail(f"mean_words {recorded} is not the mean of word_counts.csv ({mean:.3f})", forged=True)
    return Outcome.ok(f"{len(df)} summaries, {mean:.2f} words on average")


@verifier("lab4_most_words")
def lab4_most_words(ctx: GradeContext, answer: Any) -> Outcome:
    """The largest word count of the summaries in word_counts.csv."""
    df = read_csv(ctx, "word_counts.csv", ["id", "words"])
    truth = _counts(ctx)
    best = max(truth[str(i)] for i in df["id"])
    return Outcome.ok() if answer == best else Outcome.fail(f"{answer!r} is not the largest count")
