"""The class reports of a grades folder, rebuilt from its grade records: ``grades.csv``,
``check_pass_rates.csv``, ``score_histogram.png``, ``summary.md`` / ``summary.html`` (:mod:`.summary`), the TA's
sheet ``manual.csv`` (:mod:`.manual`) and ``gradebook.csv`` in the grades root (:mod:`.gradebook`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.grading import csvsafe, gradebook, manual, summary
from labkit.grading.reports import CSV_COLUMNS


def pass_rates(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """check → passed / graded / pending counts over the submissions (a pending check is not graded yet)."""
    rates: dict[str, dict[str, int]] = {}
    for r in records:
        for c in r.get("checks", []):
            row = rates.setdefault(c["name"], {"passed": 0, "graded": 0, "pending": 0})
            if c.get("pending"):
                row["pending"] += 1
            else:
                row["graded"] += 1
                row["passed"] += 1 if c["passed"] else 0
    return rates


def write_class_reports(records: list[dict[str, Any]], out: Path) -> None:
    """grades.csv, check_pass_rates.csv, score_histogram.png, summary.md/.html, manual.csv, and gradebook.csv in
    the grades root."""
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as fh:
        w = csvsafe.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in records:
            w.writerow({**r, "pending": f"{r.get('pending') or 0:g}",
                        "reason": (r.get("reason") or "").replace("\n", " ")})
    rates = pass_rates(records)
    with open(out / "check_pass_rates.csv", "w", newline="", encoding="utf-8") as fh:
        w = csvsafe.Writer(fh)
        w.writerow(["check", "passed", "graded", "pass_rate", "pending"])
        for name, n in rates.items():
            rate = round(n["passed"] / n["graded"], 3) if n["graded"] else ""
            w.writerow([name, n["passed"], n["graded"], rate, n["pending"]])
    _histogram(records, out / "score_histogram.png")
    summary.write_summary(records, out, rates=rates, histogram=out / "score_histogram.png")
    manual.write_sheet(records, out)
    gradebook.write_gradebook(gradebook.root_of(out))


def _histogram(records: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    scores = [r["score"] for r in records]
    top = max([r.get("max") or 0 for r in records] + [1])
    ax.hist(scores, bins=min(20, max(5, len(scores))), range=(0, top), color="#4C72B0", edgecolor="white")
    ax.set_xlabel("score")
    ax.set_ylabel("submissions")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Scores ({len(scores)} submissions)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
