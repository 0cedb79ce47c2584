"""``gradebook.csv``: one row per student, one column per lab, for an LMS import.

The labs of a course are graded into sibling folders named by lab id under one
grades root (``--out grades/lab1``, ``--out grades/lab2``: the root is
``grades/``); a grades folder with another name is its own root. Each time a
lab's reports are written the root's gradebook is rebuilt from every lab
folder there. A cell holds the student's score; points a person has not graded
yet are listed in the ``pending`` column (never counted as 0). Student ids are
the submissions' names exactly as handed in.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from labkit.grading import csvsafe
from labkit.grading.reports import GRADE_FILE

GRADEBOOK = "gradebook.csv"


def root_of(out: str | os.PathLike[str]) -> Path:
    """The grades root of a lab's grades folder: its parent when the folder is named by a lab id, else itself."""
    from labkit import labs
    out = Path(out).resolve()
    return out.parent if out.name in labs.ids() else out


def _records(folder: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(folder.glob(f"*/{GRADE_FILE}")):
        try:
            found.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return found


def lab_scores(root: str | os.PathLike[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """lab → student id → its grade record, from the root itself and its folders named by lab id."""
    from labkit import labs
    root = Path(root)
    folders = [root] + [root / lab for lab in labs.ids() if (root / lab).is_dir()]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for folder in folders:
        for rec in _records(folder):
            lab = str(rec.get("lab") or "")
            if lab and (folder == root or folder.name == lab):
                out.setdefault(lab, {})[str(rec["id"])] = rec
    return out


def write_gradebook(root: str | os.PathLike[str]) -> Path | None:
    """Rebuild ``root/gradebook.csv`` (None, and no file, when no lab was graded there)."""
    from labkit import labs
    root = Path(root)
    scores = lab_scores(root)
    if not scores:
        return None
    order = [lab for lab in labs.ids() if lab in scores] + sorted(set(scores) - set(labs.ids()))
    students = sorted({sid for by in scores.values() for sid in by}, key=lambda s: (s.casefold(), s))
    path = root / GRADEBOOK
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csvsafe.Writer(fh)
        w.writerow(["student", *order, "pending"])
        for sid in students:
            cells, pending = [], []
            for lab in order:
                rec = scores[lab].get(sid)
                cells.append("" if rec is None else f"{rec.get('score', 0):g}")
                if rec is not None and rec.get("pending"):
                    pending.append(f"{lab}: {rec['pending']:g} points")
            w.writerow([sid, *cells, "; ".join(pending)])
    return path
