"""What grading writes: each submission's feedback and grade files, and the class reports."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from labkit.config import LabkitError

GRADE_FILE = "grade.json"
CSV_COLUMNS = ["id", "score", "max", "status", "reason"]


def write_submission_files(record: dict[str, Any], out_dir: Path) -> None:
    """feedback.md, Gradescope results.json and grade.json for one graded submission."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tests = [{"name": c["name"], "score": c["points"], "max_score": c["max"],
              "output": " ".join(x for x in (c["message"], c["detail"]) if x)} for c in record["checks"]]
    gradescope = {"score": record["score"], "execution_time": record.get("grading_seconds"),
                  "output": record["reason"] or "graded", "tests": tests,
                  "extra_data": {"status": record["status"], "isolation": record["isolation"]}}
    (out_dir / "results.json").write_text(json.dumps(gradescope, indent=2) + "\n", encoding="utf-8")
    (out_dir / "feedback.md").write_text(feedback_markdown(record), encoding="utf-8")
    (out_dir / GRADE_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")


def feedback_markdown(record: dict[str, Any]) -> str:
    """The student's feedback: score, each check with points and message, runtime, isolation."""
    lines = [f"# Feedback for {record['id']} ({record.get('lab', '')})", "",
             f"**Score: {record['score']:g} / {record['max']:g}** — status: {record['status']}"]
    if record["reason"]:
        lines += ["", f"Reason: {record['reason']}"]
    lines += ["", "| check | points | feedback |", "|---|---|---|"]
    for c in record["checks"]:
        msg = " ".join(x for x in (c["message"], c["detail"]) if x).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {'✅' if c['passed'] else '❌'} {c['name']} | {c['points']:g} / {c['max']:g} | {msg} |")
    if record["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in record["notes"]]
    run = record.get("run_seconds")
    lines += ["", f"Runtime: notebook {run if run is not None else '-'} s, grading {record.get('grading_seconds')} s.",
              f"Isolation: {record['isolation'] or 'not executed'}.", ""]
    return "\n".join(lines)


def read_records(grades_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The grade records (``<id>/grade.json``) of a grades folder, by id."""
    out = Path(grades_dir)
    records = [json.loads(p.read_text()) for p in sorted(out.glob(f"*/{GRADE_FILE}"))]
    if not records:
        raise LabkitError(f"No graded submissions under {out} (expected <id>/grade.json from `labkit grade`).")
    return records


def _pass_rates(records: list[dict[str, Any]]) -> dict[str, list[int]]:
    rates: dict[str, list[int]] = {}
    for r in records:
        for c in r.get("checks", []):
            rates.setdefault(c["name"], []).append(1 if c["passed"] else 0)
    return rates


def write_class_reports(records: list[dict[str, Any]], out: Path) -> None:
    """grades.csv, check_pass_rates.csv, score_histogram.png and summary.md."""
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in records:
            w.writerow({**r, "reason": (r.get("reason") or "").replace("\n", " ")})
    rates = _pass_rates(records)
    with open(out / "check_pass_rates.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["check", "passed", "graded", "pass_rate"])
        for name, vals in rates.items():
            w.writerow([name, sum(vals), len(vals), round(sum(vals) / len(vals), 3)])
    _histogram(records, out / "score_histogram.png")
    maxes = [r["max"] for r in records if r.get("max")]
    lines = ["# Class summary", "", f"{len(records)} submissions, max score {max(maxes) if maxes else 0:g}.", "",
             "| id | score | status | reason |", "|---|---|---|---|"]
    lines += [f"| {r['id']} | {r['score']:g} / {r['max']:g} | {r['status']} | {(r.get('reason') or '')[:120]} |"
              for r in records]
    lines += ["", "## Pass rate per check", "", "| check | pass rate |", "|---|---|"]
    lines += [f"| {n} | {sum(v)}/{len(v)} |" for n, v in rates.items()]
    lines += ["", "![score histogram](score_histogram.png)", ""]
    (out / "summary.md").write_text("\n".join(lines), encoding="utf-8")


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


def format_table(records: list[dict[str, Any]]) -> str:
    """The grades as a text table (pandas)."""
    import pandas as pd
    df = pd.DataFrame([{k: r.get(k) for k in CSV_COLUMNS} for r in records])
    df["reason"] = df["reason"].fillna("").str.slice(0, 80)
    return df.to_string(index=False)
