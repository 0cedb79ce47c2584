"""A submission's grade record: its files (``feedback.md``, the Gradescope ``results.json``, ``grade.json``),
reading the records of a grades folder back, and their points and text table.

Each submission's files are in its folder, named by the id's filesystem-safe form; ``grade.json`` is the
record every class report is rebuilt from (:mod:`.class_reports`). A manual check not graded yet is
*pending*: it shows as pending everywhere, never as 0.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from labkit.config import LabkitError
from labkit.grading.discover import safe_name

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
    return str(record.get("folder") or safe_name(str(record["id"])))


def pending_points(checks: list[dict[str, Any]]) -> float:
    """Points of a submission's checks that wait for a person (manual checks not merged yet)."""
    return float(sum(c["max"] for c in checks if c.get("pending")))


def format_table(records: list[dict[str, Any]]) -> str:
    """The grades as a text table (pandas)."""
    import pandas as pd
    df = pd.DataFrame([{**{k: r.get(k) for k in CSV_COLUMNS}, "pending": r.get("pending") or 0} for r in records])
    df["reason"] = df["reason"].fillna("").str.slice(0, 80)
    return df.to_string(index=False)
