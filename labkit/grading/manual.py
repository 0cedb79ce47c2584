"""Hand-graded questions: the TA's sheet ``manual.csv`` (written, read back) and the points a person gives.

``labkit grade`` writes one row per submission and ``manual`` check of the
rubric (columns ``student, question, answer, points, max_points, comment``):
the recorded answer, ``points`` empty while a person has not graded it
(pending, never 0), or 0 with "not answered" when there was nothing to read.
A cell that would start a spreadsheet formula (a student id such as ``=1+2``,
an answer starting with ``-``) is written with a leading ``'``
(:mod:`.csvsafe`) and read back without it, so ids still match exactly.
A TA fills in ``points`` (and optionally ``comment``), then
``labkit grade SUBMISSIONS --lab LAB --out GRADES --manual SHEET`` merges it
back (:mod:`.merge`). A row left empty stays (or becomes again) pending.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from labkit.config import LabkitError
from labkit.grading import csvsafe
from labkit.grading.reports import pending_points

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


def rescore(record: dict[str, Any]) -> None:
    """A record's score and pending points from its checks (a voided, tampered run keeps 0)."""
    if record.get("status") != "tampered":
        record["score"] = round(sum(c["points"] for c in record.get("checks", []) if c.get("points") is not None), 3)
    record["pending"] = pending_points(record.get("checks", []))


def grade_by_hand(check: dict[str, Any], points: float | None, comment: str) -> None:
    """A manual check as a person graded it (``points`` None: pending again)."""
    if points is None:
        check.update(points=None, passed=False, pending=True, message="", detail="", graded_by_hand=False)
    else:
        check.update(points=round(points, 3), passed=points >= check["max"], pending=False, message=comment,
                     detail=BY_HAND, graded_by_hand=True)


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
            grade_by_hand(c, float(was["points"]), was.get("message") or "")
            kept = True
    if kept:
        rescore(record)
    return kept
