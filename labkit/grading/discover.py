"""Finding what to grade: the submissions in a folder, or a lab ``labkit run`` already executed."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.config import LabkitError


@dataclass
class Submission:
    """One student's submission: its id, notebook and folder (None notebook + problem when unusable)."""

    id: str
    notebook: str | None
    folder: str
    problem: str = ""
    single: bool = False      # a bare notebook (copied alone), not a folder


def _safe_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "submission"


def _from_folder(entry: Path) -> tuple[str | None, str]:
    """(notebook, problem) of a submission folder: exactly one notebook is expected."""
    nbs = sorted(p for p in entry.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if len(nbs) == 1:
        return str(nbs[0]), ""
    if not nbs:
        return None, "no notebook in the submission folder"
    return None, f"{len(nbs)} notebooks in the submission folder (expected one): " + ", ".join(p.name for p in nbs[:4])


def discover(submissions_dir: str | os.PathLike[str]) -> list[Submission]:
    """Submissions in a folder: each top-level .ipynb, and each sub-folder with exactly one notebook."""
    root = Path(submissions_dir)
    if not root.is_dir():
        raise LabkitError(f"Submissions folder {root} does not exist (expected a folder of notebooks or of folders).")
    subs: list[Submission] = []
    seen: set[str] = set()
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            sid, nb, folder, problem, single = _safe_id(entry.stem), str(entry), str(root), "", True
        elif entry.is_dir():
            (nb, problem), sid, folder, single = _from_folder(entry), _safe_id(entry.name), str(entry), False
        else:
            continue
        while sid in seen:
            sid += "_"
        seen.add(sid)
        subs.append(Submission(id=sid, notebook=nb, folder=folder, problem=problem, single=single))
    return subs


def executed_lab(out: str | os.PathLike[str], lab: str) -> Any:
    """The RunResult of a lab already executed by ``labkit run`` into ``out`` (status read from the notebook)."""
    from labkit import labs
    from labkit import run as runmod
    src = labs.get(lab).notebook
    lab_dir = Path(out).resolve() / lab
    result = runmod.RunResult(lab=lab, notebook=src, output_notebook=lab_dir / src.name, output_dir=lab_dir)
    if not result.output_notebook.is_file():
        result.status, result.message = "missing", f"{result.output_notebook} does not exist: run `labkit run {lab}` first"
        return result
    nb = runmod.read_notebook(result.output_notebook)
    states = [c.get("metadata", {}).get("papermill", {}).get("status") for c in nb.cells]
    if "failed" in states or "running" in states or "pending" in states:
        result.status, result.message = "error", f"{result.output_notebook} did not run to the end"
    else:
        result.status, result.message = "ok", f"executed: {result.output_notebook}"
    return result
