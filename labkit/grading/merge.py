"""Merging a TA's filled-in sheet (``manual.csv``) into a grades folder, without running any notebook.

Every row is checked first (a wrong student, question or number stops the merge before anything is written);
then each changed record's points and feedback are updated from its ``grade.json`` and the class reports
rebuilt (:mod:`.class_reports`).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from labkit.config import LabkitError
from labkit.grading.class_reports import write_class_reports
from labkit.grading.discover import discover
from labkit.grading.manual import NOT_ANSWERED, grade_by_hand, read_sheet, rescore
from labkit.grading.reports import folder_of, read_records, write_submission_files

log = logging.getLogger(__name__)

Update = tuple[dict[str, Any], dict[str, Any], "float | None", str]  # (record, manual check, points, comment)


def _points(text: str, maximum: float, where: str) -> tuple[float | None, str]:
    """(points, problem) of a sheet cell: None for blank (pending)."""
    text = text.strip().replace(",", ".")
    if not text:
        return None, ""
    try:
        value = float(text)
    except ValueError:
        return None, f"{where}: points {text!r} is not a number (expected 0 to {maximum:g}, or empty for pending)"
    if not 0 <= value <= maximum:
        return None, f"{where}: points {value:g} is outside 0 to {maximum:g}"
    return value, ""


def _updates(rows: list[dict[str, str]], by_id: dict[str, dict[str, Any]], *, sheet: str | os.PathLike[str],
             out: Path, lab: str) -> list[Update]:
    """The sheet's rows as updates of the records; LabkitError listing every row to fix when any is wrong."""
    problems: list[str] = []
    updates: list[Update] = []
    seen: set[tuple[str, str]] = set()
    for line, row in enumerate(rows, start=2):
        where = f"{Path(sheet).name} line {line}"
        student, question = row.get("student", ""), row.get("question", "").strip()
        rec = by_id.get(student) or by_id.get(student.strip())
        if rec is None:
            problems.append(f"{where}: student {student!r} has no grade in {out} (the student column must keep the "
                            "ids of grades.csv exactly)")
            continue
        check = next((c for c in rec.get("checks", []) if c["name"] == question and c.get("manual")), None)
        if check is None:
            known = [c["name"] for c in rec.get("checks", []) if c.get("manual")]
            problems.append(f"{where}: {question!r} is not a hand-graded question of {lab} (expected "
                            f"{', '.join(known) or 'none: this submission has no hand-graded answer'})")
            continue
        if (student, question) in seen:
            problems.append(f"{where}: a second row for {student!r}, {question!r}; keep one")
            continue
        seen.add((student, question))
        points, problem = _points(row.get("points", ""), float(check["max"]), where)
        if problem:
            problems.append(problem)
            continue
        updates.append((rec, check, points, " ".join((row.get("comment") or "").split())))
    if problems:
        shown = "\n  ".join(problems[:10]) + (f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise LabkitError(f"--manual {sheet}: nothing merged, {len(problems)} row(s) to fix:\n  {shown}")
    return updates


def merge(out: str | os.PathLike[str], sheet: str | os.PathLike[str], *, lab: str,
          submissions: str | os.PathLike[str] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Merge a filled-in sheet into the grades in ``out`` without running anything: (all records, number of
    answers whose points or comment changed). Every row is validated before anything is written."""
    out = Path(out)
    records = read_records(out)
    other = sorted({str(r.get("lab")) for r in records if r.get("lab") not in (None, lab)})
    if other:
        raise LabkitError(f"{out} holds grades of {', '.join(other)}, not {lab}: pass the grades folder of {lab}.")
    by_id = {str(r["id"]): r for r in records}
    updates = _updates(read_sheet(sheet), by_id, sheet=sheet, out=out, lab=lab)
    changed_records: dict[str, dict[str, Any]] = {}
    changed = 0
    for rec, check, points, comment in updates:
        before = (check.get("points"), check.get("pending"), check.get("message"))
        if not check.get("pending") and not check.get("graded_by_hand") and (
                points is None or (points == check.get("points") and comment in ("", NOT_ANSWERED))):
            continue  # an unanswered question's row left as it was: it stays 0, not answered
        grade_by_hand(check, points, comment)
        if (check.get("points"), check.get("pending"), check.get("message")) != before:
            changed += 1
            changed_records[str(rec["id"])] = rec
    for rec in changed_records.values():
        rescore(rec)
        write_submission_files(rec, out / folder_of(rec))
    write_class_reports(records, out)
    if submissions is not None:
        _warn_ungraded(submissions, by_id, out)
    return records, changed


def _warn_ungraded(submissions: str | os.PathLike[str], by_id: dict[str, Any], out: Path) -> None:
    """Say which submissions of the folder have no grade yet (a sheet merges into existing grades only)."""
    try:
        missing = [s.id for s in discover(submissions) if s.id not in by_id]
    except LabkitError:
        return
    if missing:
        log.warning("%d submission(s) in %s have no grade in %s yet (%s): run labkit grade without --manual to "
                    "grade them, then merge again.", len(missing), submissions, out, ", ".join(missing[:5]))
