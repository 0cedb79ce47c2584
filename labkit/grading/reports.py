"""What grading writes: each submission's feedback and grade files, and the class reports.

Per submission (in its folder, named by the id's filesystem-safe form): ``feedback.md``, the Gradescope
``results.json`` and ``grade.json`` (the record everything else is rebuilt from). Per class:
``grades.csv``, ``check_pass_rates.csv``, ``score_histogram.png``, ``summary.md`` / ``summary.html``
(:mod:`.summary`), the TA's sheet ``manual.csv`` (:mod:`.manual`) and ``gradebook.csv`` in the grades root
(:mod:`.gradebook`). A manual check not graded yet is *pending*: it shows as pending everywhere, never as 0.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from labkit.config import LabkitError
from labkit.grading import csvsafe

GRADE_FILE = "grade.json"
CSV_COLUMNS = ["id", "score", "max", "pending", "status", "reason"]
PENDING_TEXT = "to be graded by a person"


def _check_output(c: dict[str, Any]) -> str:
    if c.get("pending"):
        return f"pending: {PENDING_TEXT}"
    return " ".join(x for x in (c.get("message", ""), c.get("detail", "")) if x)


def write_submission_files(record: dict[str, Any], out_dir: Path) -> None:
    """feedback.md, Gradescope results.json and grade.json for one graded submission."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tests = [{"name": c["name"], "score": c["points"], "max_score": c["max"], "output": _check_output(c)}
             for c in record["checks"]]
    gradescope = {"score": record["score"], "execution_time": record.get("grading_seconds"),
                  "output": record["reason"] or "graded", "tests": tests,
                  "extra_data": {"status": record["status"], "isolation": record["isolation"],
                                 "pending_points": record.get("pending", 0.0), "student": record["id"]}}
    (out_dir / "results.json").write_text(json.dumps(gradescope, indent=2, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
    (out_dir / "feedback.md").write_text(feedback_markdown(record), encoding="utf-8")
    (out_dir / GRADE_FILE).write_text(json.dumps(record, indent=2, default=str, ensure_ascii=False) + "\n",
                                      encoding="utf-8")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def feedback_markdown(record: dict[str, Any]) -> str:
    """The student's feedback: score (and points pending), each check with points and message, runtime,
    isolation."""
    pending = record.get("pending") or 0
    lines = [f"# Feedback for {record['id']} ({record.get('lab', '')})", "",
             f"**Score: {record['score']:g} / {record['max']:g}** — status: {record['status']}"
             + (f" — {pending:g} points pending: {PENDING_TEXT}" if pending else "")]
    if record["reason"]:
        lines += ["", f"Reason: {record['reason']}"]
    lines += ["", "| check | points | feedback |", "|---|---|---|"]
    for c in record["checks"]:
        if c.get("pending"):
            lines.append(f"| ✍ {c['name']} | pending / {c['max']:g} | {PENDING_TEXT} |")
            continue
        msg = _cell(" ".join(x for x in (c["message"], c["detail"]) if x))
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
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob(f"*/{GRADE_FILE}"))]
    if not records:
        raise LabkitError(f"No graded submissions under {out} (expected <id>/grade.json from `labkit grade`).")
    return sorted(records, key=lambda r: str(r["id"]))


def folder_of(record: dict[str, Any]) -> str:
    """The record's folder name in the grades folder (its id's filesystem-safe form)."""
    from labkit.grading.discover import safe_name
    return str(record.get("folder") or safe_name(str(record["id"])))


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
    from labkit.grading import gradebook, manual, summary

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


def format_table(records: list[dict[str, Any]]) -> str:
    """The grades as a text table (pandas)."""
    import pandas as pd
    df = pd.DataFrame([{**{k: r.get(k) for k in CSV_COLUMNS}, "pending": r.get("pending") or 0} for r in records])
    df["reason"] = df["reason"].fillna("").str.slice(0, 80)
    return df.to_string(index=False)
