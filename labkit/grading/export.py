"""Grades into the CSV an LMS imports: ``labkit export GRADES --format canvas|moodle|csv --out FILE``.

* ``canvas``: the roster is Canvas's own gradebook export (Grades → Export). The file written keeps the
  roster's student columns (Student, ID, SIS User ID, SIS Login ID, Section, ... as the roster has them), its
  ``Points Possible`` row (and any other row Canvas put above the students), and one assignment column: the
  roster's column of that name, or a new one (Canvas then creates the assignment on import). Other
  assignments' columns are left out, so importing never overwrites marks changed in Canvas since the export.
  Each graded submission is matched to a roster row by SIS Login ID, then ID (and SIS User ID), then name
  (words in any order, case and accents ignored: "Ana María López" = "López, Ana María"). A roster student
  without a submission keeps an empty cell.
* ``moodle``: Moodle's grade import (Grades → Import → CSV file): ``username`` and the assignment's column;
  map them to the user field and grade item in Moodle's import form.
* ``csv``: one row per graded submission: id, score, max, pending, status.

The score is the points given: hand-graded points still pending (the TA's sheet not merged yet) are not
counted and are named on stderr; merging the sheet (``labkit grade ... --manual SHEET``) counts them. A
submission the grader could not grade (``grader_error``) gets no number: its cell stays empty and it is
named. Every cell goes through :mod:`.csvsafe`, so no cell is a formula.
"""
from __future__ import annotations

import csv
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.config import LabkitError
from labkit.grading import csvsafe

FORMATS = ("canvas", "moodle", "csv")
CANVAS_KEYS = ("SIS Login ID", "ID", "SIS User ID")       # matched in this order, then the name
CANVAS_STUDENT_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID", "Root Account", "Section")
PLAIN_COLUMNS = ["id", "score", "max", "pending", "status"]
NOT_GRADED = {"grader_error"}


@dataclass
class Export:
    """What an export wrote and what a person should know about it (the CLI prints the lists on stderr)."""

    path: Path
    rows: int = 0
    unmatched: list[str] = field(default_factory=list)      # graded submissions without a roster row
    ambiguous: list[str] = field(default_factory=list)      # submissions matching a row another one matched
    no_submission: list[str] = field(default_factory=list)  # roster students left empty
    pending: list[str] = field(default_factory=list)        # "id: N points pending"
    not_graded: list[str] = field(default_factory=list)     # "id: reason", exported empty
    notes: list[str] = field(default_factory=list)


def _score(rec: dict[str, Any]) -> str:
    return "" if rec.get("status") in NOT_GRADED else f"{float(rec.get('score') or 0):g}"


def _common(records: list[dict[str, Any]], result: Export) -> None:
    for r in records:
        if r.get("status") in NOT_GRADED:
            result.not_graded.append(f"{r['id']}: {(r.get('reason') or r.get('status'))[:120]}")
        elif r.get("pending"):
            result.pending.append(f"{r['id']}: {float(r['pending']):g} points pending")


def export_grades(grades_dir: str | os.PathLike[str], fmt: str, out: str | os.PathLike[str], *,
                  roster: str | os.PathLike[str] | None = None, assignment: str | None = None) -> Export:
    """Write the grades of ``grades_dir`` (a ``labkit grade --out`` folder) as ``fmt`` into ``out``."""
    from labkit.grading.reports import read_records
    if fmt not in FORMATS:
        raise LabkitError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}.")
    if fmt == "canvas" and (not roster or not assignment):
        raise LabkitError("--format canvas needs --roster (Canvas's gradebook export: Grades → Export → CSV) and "
                          "--assignment (the column to fill, e.g. \"Lab 1 (101)\", or a new name).")
    if fmt != "canvas" and roster:
        raise LabkitError(f"--roster belongs to --format canvas; --format {fmt} writes one row per graded "
                          "submission.")
    records = read_records(grades_dir)
    labs_seen = sorted({str(r.get("lab")) for r in records if r.get("lab")})
    if len(labs_seen) > 1:
        raise LabkitError(f"{grades_dir} holds grades of {', '.join(labs_seen)}: export one lab's grades folder.")
    result = Export(Path(out))
    _common(records, result)
    result.path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "canvas":
        _canvas(records, Path(roster), str(assignment), result)  # type: ignore[arg-type]
        return result
    with open(result.path, "w", newline="", encoding="utf-8") as fh:
        w = csvsafe.Writer(fh)
        if fmt == "csv":
            w.writerow(PLAIN_COLUMNS)
            for r in records:
                w.writerow([r["id"], _score(r), f"{float(r.get('max') or 0):g}", f"{float(r.get('pending') or 0):g}",
                            r.get("status", "")])
        else:
            w.writerow(["username", assignment or (labs_seen[0] if labs_seen else "grade")])
            for r in records:
                w.writerow([r["id"], _score(r)])
    result.rows = len(records)
    return result


def name_key(name: str) -> tuple[str, ...]:
    """A person's name as a sorted tuple of case-folded, accent-free words ("López, Ana" = "ana_lopez")."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return tuple(sorted(w for w in re.split(r"[\W_]+", plain.casefold()) if w))


def read_roster(path: Path) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """(header, rows above the students such as Points Possible, student rows) of Canvas's gradebook export."""
    if not path.is_file():
        raise LabkitError(f"--roster {path}: no such file. Export it from Canvas: Grades → Export → Export Entire "
                          "Gradebook (CSV).")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    except (UnicodeDecodeError, csv.Error) as err:
        raise LabkitError(f"--roster {path} is not a UTF-8 CSV file ({err}).") from None
    if not rows or not {"Student", "ID"} <= {c.strip() for c in rows[0]}:
        raise LabkitError(f"--roster {path} is not Canvas's gradebook export: its header lacks Student and ID "
                          f"(found {', '.join(rows[0][:6]) if rows else 'an empty file'}).")
    header = [c.strip() for c in rows[0]]
    width = len(header)
    rows = [r + [""] * (width - len(r)) for r in rows[1:]]
    idcol = header.index("ID")
    meta, students = [], []
    for r in rows:  # Canvas puts "Points Possible" (and sometimes "Manual Posting") rows above the students
        (students if (students or r[idcol].strip()) and r[0].strip() != "Points Possible" else meta).append(r)
    return header, meta, students


def _canvas(records: list[dict[str, Any]], roster: Path, assignment: str, result: Export) -> None:
    header, meta, students = read_roster(roster)
    keep = [i for i, h in enumerate(header) if h in CANVAS_STUDENT_COLUMNS]
    col = header.index(assignment) if assignment in header else None
    if col is None:
        result.notes.append(f"the roster has no column {assignment!r}: it is added, and Canvas creates that "
                            "assignment on import (use the roster's column name, e.g. \"Lab 1 (12345)\", to fill an "
                            "existing one)")
    maxima = {float(r.get("max") or 0) for r in records if r.get("status") not in NOT_GRADED}
    match: dict[int, dict[str, Any]] = {}
    lookups = [(key, {}) for key in CANVAS_KEYS if key in header] + [("Student", {})]
    for key, index in lookups:
        i = header.index(key)
        for n, r in enumerate(students):
            v = name_key(r[i]) if key == "Student" else r[i].strip()
            if v:
                index.setdefault(v, []).append(n)
    for rec in records:
        sid = str(rec["id"])
        for key, index in lookups:
            cands = index.get(name_key(sid) if key == "Student" else sid.strip(), [])
            if key != "Student" and not cands:
                cands = [n for v, ns in index.items() if v.casefold() == sid.strip().casefold() for n in ns]
            if len(cands) == 1:
                n = cands[0]
                if n in match:
                    result.ambiguous.append(f"{sid} (matches the roster row of {students[n][0]!r}, already "
                                            f"filled from {match[n]['id']})")
                else:
                    match[n] = rec
                break
            if len(cands) > 1:
                result.ambiguous.append(f"{sid} (matches {len(cands)} roster rows by {key})")
                break
        else:
            result.unmatched.append(sid)
    with open(result.path, "w", newline="", encoding="utf-8") as fh:
        w = csvsafe.Writer(fh)
        w.writerow([header[i] for i in keep] + [assignment])
        for r in meta:
            if r[0].strip() == "Points Possible":
                given = r[col].strip() if col is not None else ""
                if not given and len(maxima) == 1:
                    given = f"{next(iter(maxima)):g}"
                elif _number(given) and maxima and float(given) not in maxima:
                    result.notes.append(f"the roster's Points Possible of {assignment!r} is {given}; the rubric's "
                                        f"maximum is {', '.join(f'{m:g}' for m in sorted(maxima))}: scores are "
                                        "exported as points, unscaled")
                w.writerow([r[i] for i in keep] + [given])
            else:
                w.writerow([r[i] for i in keep] + [r[col] if col is not None else ""])
        for n, r in enumerate(students):
            rec = match.get(n)
            if rec is None:
                result.no_submission.append(r[0].strip() or r[header.index("ID")])
            w.writerow([r[i] for i in keep] + ["" if rec is None else _score(rec)])
    result.rows = len(students)


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
