"""Hand-graded questions: the TA's sheet ``manual.csv`` and merging it back into the grades.

``labkit grade`` writes one row per submission and ``manual`` check of the
rubric (columns ``student, question, answer, points, max_points, comment``):
the recorded answer, ``points`` empty while a person has not graded it
(pending, never 0), or 0 with "not answered" when there was nothing to read.
A cell that would start a spreadsheet formula (a student id such as ``=1+2``,
an answer starting with ``-``) is written with a leading ``'``
(:mod:`.csvsafe`) and read back without it, so ids still match exactly.
A TA fills in ``points`` (and optionally ``comment``), then
``labkit grade SUBMISSIONS --lab LAB --out GRADES --manual SHEET`` calls
:func:`merge`: every row is checked first (a wrong student, question or number
stops the merge before anything is written), then each record's points and
feedback are updated from its ``grade.json`` and the class reports rebuilt;
no notebook runs again. A row left empty stays (or becomes again) pending.
"""
from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any

from labkit.config import LabkitError
from labkit.grading import csvsafe

log = logging.getLogger(__name__)

SHEET = "manual.csv"
COLUMNS = ["student", "question", "answer", "points", "max_points", "comment"]
BY_HAND = "graded by a person"
NOT_ANSWERED = "not answered"


def sheet_rows(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per submission and manual check, in student order."""
    rows = []
    for r in records:
        for c in r.get("checks", []):
            if not c.get("manual"):
                continue
            if c.get("pending"):
                points, comment = "", ""
            else:
                points = f"{c['points']:g}"
                comment = c.get("message") or ("" if c.get("graded_by_hand") else NOT_ANSWERED)
            rows.append({"student": str(r["id"]), "question": c["name"], "answer": c.get("answer") or "",
                         "points": points, "max_points": f"{c['max']:g}", "comment": comment})
    return rows


def write_sheet(records: list[dict[str, Any]], out: Path) -> Path | None:
    """``out/manual.csv`` for the TA (None, and no file, when the rubric has no manual check)."""
    rows = sheet_rows(records)
    path = out / SHEET
    if not rows:
        path.unlink(missing_ok=True)
        return None
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csvsafe.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return path


def read_sheet(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of a filled-in sheet (UTF-8, a spreadsheet's byte-order mark allowed); LabkitError when it
    is not one."""
    p = Path(path)
    if not p.is_file():
        raise LabkitError(f"--manual {p}: no such file. Pass the manual.csv of the grades folder after filling in "
                          "its points column.")
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            # cells the grader wrote with a leading ' (csvsafe: no formula) read back as they were
            rows = [{(k or "").strip(): csvsafe.uncell(v or "") for k, v in row.items()} for row in reader]
    except (UnicodeDecodeError, csv.Error) as err:
        raise LabkitError(f"--manual {p} is not a UTF-8 CSV file ({err}). Save the sheet as CSV UTF-8.") from None
    missing = [c for c in ("student", "question", "points") if c not in header]
    if missing:
        raise LabkitError(f"--manual {p} lacks the column(s) {', '.join(missing)}; expected the columns of "
                          f"manual.csv ({', '.join(COLUMNS)}).")
    return rows


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


def rescore(record: dict[str, Any]) -> None:
    """A record's score and pending points from its checks (a voided, tampered run keeps 0)."""
    from labkit.grading.worker import pending_points
    if record.get("status") != "tampered":
        record["score"] = round(sum(c["points"] for c in record.get("checks", []) if c.get("points") is not None), 3)
    record["pending"] = pending_points(record.get("checks", []))


def _grade_by_hand(check: dict[str, Any], points: float | None, comment: str) -> None:
    if points is None:
        check.update(points=None, passed=False, pending=True, message="", detail="", graded_by_hand=False)
    else:
        check.update(points=round(points, 3), passed=points >= check["max"], pending=False, message=comment,
                     detail=BY_HAND, graded_by_hand=True)


def merge(out: str | os.PathLike[str], sheet: str | os.PathLike[str], *, lab: str,
          submissions: str | os.PathLike[str] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Merge a filled-in sheet into the grades in ``out`` without running anything: (all records, number of
    answers whose points or comment changed). Every row is validated before anything is written."""
    from labkit.grading.reports import folder_of, read_records, write_class_reports, write_submission_files

    out = Path(out)
    records = read_records(out)
    other = sorted({str(r.get("lab")) for r in records if r.get("lab") not in (None, lab)})
    if other:
        raise LabkitError(f"{out} holds grades of {', '.join(other)}, not {lab}: pass the grades folder of {lab}.")
    by_id = {str(r["id"]): r for r in records}
    rows = read_sheet(sheet)
    problems, updates, seen = [], [], set()
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
    changed_records: dict[str, dict[str, Any]] = {}
    changed = 0
    for rec, check, points, comment in updates:
        before = (check.get("points"), check.get("pending"), check.get("message"))
        if not check.get("pending") and not check.get("graded_by_hand") and (
                points is None or (points == check.get("points") and comment in ("", NOT_ANSWERED))):
            continue  # an unanswered question's row left as it was: it stays 0, not answered
        _grade_by_hand(check, points, comment)
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


def carry_over(previous: dict[str, Any] | None, record: dict[str, Any]) -> bool:
    """Keep a person's points when a submission is graded again (``--force``) and its answer is unchanged;
    True when something was carried over (the record is rescored)."""
    if not previous:
        return False
    old = {c["name"]: c for c in previous.get("checks", []) if c.get("manual") and c.get("graded_by_hand")}
    kept = False
    for c in record.get("checks", []):
        was = old.get(c["name"])
        if c.get("manual") and was is not None and (was.get("answer") or "") == (c.get("answer") or ""):
            _grade_by_hand(c, float(was["points"]), was.get("message") or "")
            kept = True
    if kept:
        rescore(record)
    return kept


def _warn_ungraded(submissions: str | os.PathLike[str], by_id: dict[str, Any], out: Path) -> None:
    from labkit.grading.discover import discover
    try:
        missing = [s.id for s in discover(submissions) if s.id not in by_id]
    except LabkitError:
        return
    if missing:
        log.warning("%d submission(s) in %s have no grade in %s yet (%s): run labkit grade without --manual to "
                    "grade them, then merge again.", len(missing), submissions, out, ", ".join(missing[:5]))
