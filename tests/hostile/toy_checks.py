"""Rubric plugin of the toy lab used by the grading tests: verifies squares.csv instead of trusting it."""
from __future__ import annotations

import csv

from labkit.rubrics import Outcome, check, verifier


@check("toy_squares")
def toy_squares(ctx, n: int = 5) -> Outcome:
    """squares.csv holds x, x**2 for x in 0..n-1, and the recorded total is their sum."""
    path = ctx.artifacts / "squares.csv"
    if not path.is_file():
        return Outcome.fail("squares.csv was not saved")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    try:
        pairs = [(int(r["x"]), int(r["y"])) for r in rows]
    except (KeyError, ValueError):
        return Outcome.fail("squares.csv is malformed")
    if [x for x, _ in pairs] != list(range(n)) or any(y != x * x for x, y in pairs):
        return Outcome.fail("squares.csv does not hold the squares", forged=True)
    total = ctx.results.get("total")
    if total != sum(y for _, y in pairs):
        return Outcome.fail(f"recorded total {total} is not the sum of squares.csv", forged=True)
    return Outcome.ok(f"total {total}")


@verifier("toy_total_plus_one")
def toy_total_plus_one(ctx, answer) -> Outcome:
    """Exercise 1 of the toy lab: the recorded total plus one."""
    return Outcome.ok() if answer == (ctx.results.get("total") or 0) + 1 else Outcome.fail("not total + 1")
