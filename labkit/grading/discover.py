"""Finding what to grade: the submissions in a folder, or a lab ``labkit run`` already executed."""
from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.config import LabkitError


@dataclass
class Submission:
    """One student's submission: its id, notebook and folder (None notebook + problem when unusable).

    ``id`` is the submission's name exactly as handed in (the folder's name, or a bare notebook's name
    without ``.ipynb``), so every table matches the class list; ``slug`` is its filesystem-safe form, used
    only to name its folder in the grades folder."""

    id: str
    notebook: str | None
    folder: str
    problem: str = ""
    single: bool = False      # a bare notebook (copied alone), not a folder
    slug: str = ""

    def __post_init__(self) -> None:
        self.slug = self.slug or safe_name(self.id)


def safe_name(name: str) -> str:
    """A filesystem-safe folder name for a submission id: letters (accented ones too), digits, ``_ . -``;
    runs of anything else become one ``_`` ("Ana María (final)" → "Ana_María_final")."""
    name = unicodedata.normalize("NFC", name)
    return re.sub(r"[^\w.-]+", "_", name).strip("._")[:120] or "submission"


LINK_REFUSED = ("the grader follows no symbolic link (it could lead out of the submissions folder, to files "
                "that are not the student's): hand in the notebook file itself, e.g. unpack the archive with "
                "links dereferenced or copy the file in")


def _from_folder(entry: Path) -> tuple[str | None, str]:
    """(notebook, problem) of a submission folder: exactly one notebook is expected, and no link to one.

    The folder is walked without following links: a notebook that is a symbolic link, or a linked folder, is
    named in the problem and never opened."""
    nbs: list[Path] = []
    links: list[str] = []
    for folder, dirs, files in os.walk(entry, followlinks=False):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d != ".ipynb_checkpoints")
        for d in dirs:
            if (here / d).is_symlink():
                links.append(str((here / d).relative_to(entry)) + "/")
        for name in sorted(files):
            if name.endswith(".ipynb"):
                path = here / name
                if path.is_symlink():
                    links.append(str(path.relative_to(entry)))
                else:
                    nbs.append(path)
    if links and (not nbs or any(not x.endswith("/") for x in links)):
        shown = ", ".join(links[:4])
        return None, f"symbolic link in the submission folder ({shown}): {LINK_REFUSED}"
    if len(nbs) == 1:
        return str(nbs[0]), ""
    if not nbs:
        return None, "no notebook in the submission folder"
    return None, f"{len(nbs)} notebooks in the submission folder (expected one): " + ", ".join(p.name for p in nbs[:4])


def discover(submissions_dir: str | os.PathLike[str]) -> list[Submission]:
    """Submissions in a folder: each top-level .ipynb, and each sub-folder with exactly one notebook.

    A top-level entry that is a symbolic link (to a notebook or a folder) is a submission with a problem,
    never followed."""
    root = Path(submissions_dir)
    if not root.is_dir():
        raise LabkitError(f"Submissions folder {root} does not exist (expected a folder of notebooks or of folders).")
    subs: list[Submission] = []
    ids: set[str] = set()
    slugs: set[str] = set()
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            if not (entry.suffix == ".ipynb" or entry.is_dir()):
                continue  # a link to something that is not a submission: ignored, never read
            single = entry.suffix == ".ipynb"
            sid, nb, folder, single = (entry.stem if single else entry.name), None, str(root), single
            problem = f"{entry.name} is a symbolic link: {LINK_REFUSED}"
            if sid in ids:
                sid = entry.name
        elif entry.is_file() and entry.suffix == ".ipynb":
            sid, nb, folder, problem, single = entry.stem, str(entry), str(root), "", True
            if sid in ids or (root / sid).is_dir():  # "ana.ipynb" beside a folder "ana": keep the file's full name
                sid = entry.name
        elif entry.is_dir():
            (nb, problem), sid, folder, single = _from_folder(entry), entry.name, str(entry), False
        else:
            continue
        ids.add(sid)
        slug, n = safe_name(sid), 2
        while slug.casefold() in slugs:  # distinct ids, same safe form ("a b" and "a_b"): number the second
            slug = f"{safe_name(sid)}_{n}"
            n += 1
        slugs.add(slug.casefold())
        subs.append(Submission(id=sid, notebook=nb, folder=folder, problem=problem, single=single, slug=slug))
    return subs


def executed_lab(out: str | os.PathLike[str], lab: str) -> Any:
    """The RunResult of a lab already executed by ``labkit run`` into ``out`` (status read from the notebook)."""
    from labkit import labs
    from labkit.notebooks import read_notebook
    from labkit.run_outcome import RunResult
    src = labs.get(lab).notebook
    lab_dir = Path(out).resolve() / lab
    result = RunResult(lab=lab, notebook=src, output_notebook=lab_dir / src.name, output_dir=lab_dir)
    if not result.output_notebook.is_file():
        result.status, result.message = "missing", f"{result.output_notebook} does not exist: run `labkit run {lab}` first"
        return result
    nb = read_notebook(result.output_notebook)
    states = [c.get("metadata", {}).get("papermill", {}).get("status") for c in nb.cells]
    if "failed" in states or "running" in states or "pending" in states:
        result.status, result.message = "error", f"{result.output_notebook} did not run to the end"
    else:
        result.status, result.message = "ok", f"executed: {result.output_notebook}"
    return result
