"""Student editions of the labs: solutions stubbed, outputs cleared, fingerprints kept.

The committed ``labs/*.ipynb`` are the *instructor* edition: they run top to
bottom and earn full marks. Answers live in **solution regions** (the markers
nbgrader and otter-grader use, so instructors already know them)::

    # Exercise 1: name the strategy with the highest mean ROUGE-1.
    ### BEGIN SOLUTION
    answer = max(scores, key=scores.get)
    ### END SOLUTION
    labkit.record("exercise_1", answer)

and in whole cells tagged ``solution`` (code, markdown or raw).
:func:`release_notebook` turns a source lab into the student edition:

* each solution region or ``solution`` cell becomes its stub (:mod:`labkit.solutions`);
* outputs, execution counts and every metadata key outside a short allow-list
  are dropped (hidden data never rides along in metadata);
* cell ids stay those of the source, so a submission can be matched to it;
* the notebook metadata gains ``labkit_release`` (``METADATA_KEY``):
  the release version, the lab, a digest of the non-exercise cells and one
  digest per cell, which :mod:`labkit.grading.provenance` uses to tell a grader
  which setup cells a learner altered and whether the work comes from an older
  release.

Releasing is a pure function of the source: writing twice gives byte-identical
files (``nbformat.writes`` sorts keys; nothing depends on time or paths).
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import nbformat
from nbformat import NotebookNode

from labkit import __version__, labs
from labkit.config import LabkitError
from labkit.notebooks import read_notebook
from labkit.solutions import cell_source, is_answer_cell, student_source

log = logging.getLogger(__name__)

PARAMETERS_TAG = "parameters"
METADATA_KEY = "labkit_release"
# Bumped whenever the student edition of the same source would come out differently,
# so the release version changes with the release format as well as with the source.
RELEASE_FORMAT = 1

DEFAULT_OUT = Path("outputs") / "release"

# Metadata that may travel to students; anything else (grading notes, hidden data,
# papermill/execution records) stays in the instructor edition.
_NOTEBOOK_METADATA_KEEP = ("kernelspec", "language_info")
_CELL_METADATA_KEEP = ("tags", "editable", "deletable", "jupyter", "slideshow")

STUDENT_README = """\
# Student edition of the genai-labs workbook

Each notebook here is a lab with its exercises left for you. In an exercise cell,
replace the lines under `# YOUR CODE HERE` with your answer (keep the name the
cell records, usually `answer`), and write your explanations where a cell says
`YOUR ANSWER HERE`. Leave the other cells as they are: the grader runs your
notebook from top to bottom and notes any setup cell that differs from this
release.

The self-checks under your cells are some of the checks; when your notebook is graded it
is run again from top to bottom and more checks run (`labkit.check()` says how many), some
of them on dialogues made at grading time that nobody has seen before.

Before handing in, restart the kernel and run all cells (JupyterLab: Kernel →
Restart Kernel and Run All Cells) to check that the notebook runs from top to
bottom. Hand in the `.ipynb` file.
"""


# --------------------------------------------------------------------------- digests

def normalise_source(source: str) -> str:
    """Source text as digested: newlines unified, trailing spaces and outer blank lines dropped.

    So a notebook saved by another editor (CRLF, stray trailing spaces) still
    matches its release; any change a kernel could notice does not.
    """
    text = source.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def cell_digest(cell: Mapping[str, Any]) -> str:
    """First 16 hex digits of sha256(cell_type + "\\n" + normalised source)."""
    payload = f"{cell.get('cell_type', '')}\n{normalise_source(cell_source(cell))}"
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def setup_digest(cell_digests: Mapping[str, str]) -> str:
    """sha256 over the lines ``"<cell id> <cell digest>\\n"`` of the non-exercise cells, in order.

    ``cell_digests`` maps id → :func:`cell_digest` for every cell that is
    neither solution-tagged nor holds a solution region (insertion order =
    notebook order).
    """
    body = "".join(f"{cid} {d}\n" for cid, d in cell_digests.items())
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def source_fingerprint(nb: Mapping[str, Any]) -> str:
    """A short hash of everything that shapes the student edition of ``nb``.

    Covers cell ids, types, tags and sources (not outputs or execution counts,
    so re-running the instructor edition keeps the version) plus RELEASE_FORMAT.
    """
    h = hashlib.sha256(f"labkit-release-format {RELEASE_FORMAT}\n".encode())
    for cell in nb.get("cells", []):
        tags = sorted((cell.get("metadata", {}) or {}).get("tags", []))
        item = [cell.get("id"), cell.get("cell_type"), tags, normalise_source(cell_source(cell))]
        h.update(json.dumps(item, sort_keys=True).encode("utf-8") + b"\n")
    return h.hexdigest()[:10]


def release_version(nb: Mapping[str, Any]) -> str:
    """The release version of a source lab: ``<labkit version>+<source fingerprint>``."""
    return f"{__version__}+{source_fingerprint(nb)}"


# --------------------------------------------------------------------------- release

def _ensure_ids(nb: NotebookNode, lab: str) -> None:
    """Give id-less cells (an nbformat < 4.5 source) ids derived from their position."""
    nb.nbformat, nb.nbformat_minor = 4, max(int(nb.get("nbformat_minor", 0)), 5)
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        if not cell.get("id"):
            cell["id"] = f"{lab}-cell{index}"
        if cell["id"] in seen:
            raise LabkitError(f"{lab}: cell {index} repeats the id {cell['id']!r}; every cell needs a "
                              f"unique id so submissions can be matched to the release. Rename one.")
        seen.add(cell["id"])


def release_notebook(source: NotebookNode | Mapping[str, Any], lab: str, *,
                     name: str | None = None) -> NotebookNode:
    """The student edition of a source lab (a new notebook; ``source`` is not changed).

    ``name`` (e.g. the file path) only appears in error messages.
    """
    name = name or lab
    src = nbformat.from_dict(copy.deepcopy(dict(source)))
    _ensure_ids(src, lab)
    if not any(PARAMETERS_TAG in (c.get("metadata", {}) or {}).get("tags", []) for c in src.cells):
        raise LabkitError(f"{name}: no cell is tagged '{PARAMETERS_TAG}'. papermill and the grader need "
                          f"one; tag the cell that sets profile/seed/sizes.")
    version = release_version(src)
    cells: list[NotebookNode] = []
    digests: dict[str, str] = {}
    answer_ids: list[str] = []
    for index, cell in enumerate(src.cells):
        text = student_source(src.cells, index, notebook=name)
        meta = {k: copy.deepcopy(cell.metadata[k]) for k in _CELL_METADATA_KEEP if k in cell.get("metadata", {})}
        kind = cell.cell_type
        if kind == "code":
            new = nbformat.v4.new_code_cell(text, metadata=meta)
        elif kind == "markdown":
            new = nbformat.v4.new_markdown_cell(text, metadata=meta)
            if "attachments" in cell and not is_answer_cell(cell):
                new["attachments"] = copy.deepcopy(cell["attachments"])
        else:
            new = nbformat.v4.new_raw_cell(text, metadata=meta)
        new["id"] = cell["id"]
        cells.append(new)
        if is_answer_cell(cell):
            answer_ids.append(cell["id"])
        else:
            digests[cell["id"]] = cell_digest(cell)
    out = nbformat.v4.new_notebook(cells=cells)
    out.nbformat, out.nbformat_minor = 4, 5
    out.metadata = {k: copy.deepcopy(src.metadata[k]) for k in _NOTEBOOK_METADATA_KEEP if k in src.metadata}
    out.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    out.metadata[METADATA_KEY] = {
        "version": version,
        "lab": lab,
        "digest": setup_digest(digests),
        "cells": digests,
        "answer_cells": answer_ids,
    }
    nbformat.validate(out)
    return out


def dumps(nb: NotebookNode) -> str:
    """Deterministic JSON text of a notebook (sorted keys, one trailing newline)."""
    return nbformat.writes(nb, version=4).rstrip("\n") + "\n"


def lab_source_path(lab: str, labs_dir: str | os.PathLike[str] | None = None) -> Path:
    """The source (instructor) notebook of ``lab``: the registry's, or the file of that name in ``labs_dir``."""
    notebook = labs.get(lab).notebook
    path = Path(labs_dir) / notebook.name if labs_dir is not None else notebook
    if not path.is_file():
        raise LabkitError(f"No source notebook for {lab} at {path}. Run from a checkout of the "
                          f"workbook (labs/ holds the instructor editions).")
    return path


def release(lab_ids: Iterable[str] | None = None, out: str | os.PathLike[str] = DEFAULT_OUT, *,
            labs_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write the student editions of ``lab_ids`` (default: every registered lab) into ``out``.

    Only the ``.ipynb`` files and a short README.md for students are written;
    rubrics, data and solutions stay behind. Returns the paths written.
    Every lab is released in memory first, so a broken source writes nothing.
    """
    out_dir = Path(out)
    editions: list[tuple[Path, str]] = []
    for lab in list(lab_ids or labs.ids()):
        path = lab_source_path(lab, labs_dir)
        target = out_dir / path.name
        if target.resolve() == path.resolve():
            raise LabkitError(f"--out {out_dir} would overwrite the source lab {path}; choose another folder.")
        edition = release_notebook(read_notebook(path), lab, name=str(path))
        editions.append((target, dumps(edition)))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for target, text in editions:
        target.write_text(text, encoding="utf-8", newline="\n")
        written.append(target)
        log.debug("released %s", target)
    readme = out_dir / "README.md"
    readme.write_text(STUDENT_README, encoding="utf-8", newline="\n")
    written.append(readme)
    return written


def hidden_data_note(lab_ids: Iterable[str] | None = None) -> str:
    """What the grader's re-run checks read as hidden data, per lab (printed by ``labkit release``): dialogues
    generated at grading time with a seed the grader draws per batch, or an instructor's file that this
    edition does not ship and the sandbox masks."""
    from labkit.rubrics import load_rubric
    generated, files, none = [], [], []
    for lab in list(lab_ids or labs.ids()):
        try:
            rubric = load_rubric(labs.get(lab).rubric)
        except LabkitError:
            none.append(lab)
            continue
        if rubric.hidden_data:
            files.append(f"{lab}: {rubric.hidden_data}")
        elif any("regenerates" in c.type for c in rubric.checks):
            generated.append(lab)
        else:
            none.append(lab)
    lines = ["Hidden data: nothing hidden is written to the student edition (rubrics, solutions and data stay "
             "behind)."]
    if generated:
        lines.append(f"  {', '.join(generated)}: the checks that re-run a saved adapter use dialogues generated at "
                     "grading time by labkit.datagen with a seed `labkit grade` draws per batch (recorded in each "
                     "grade.json and summary.md; --hidden-seed N regrades on the same dialogues), so no student can "
                     "have them. On the offline profile only; elsewhere name a hidden_data file in the rubric.")
    if files:
        lines.append("  instructor's files (not shipped here, masked by the grader's sandbox): " + "; ".join(files))
    if none:
        lines.append(f"  {', '.join(none)}: no check reads hidden data.")
    return "\n".join(lines)


def put_back_solutions(released_nb: NotebookNode | Mapping[str, Any],
                       source_nb: NotebookNode | Mapping[str, Any]) -> NotebookNode:
    """A copy of ``released_nb`` whose answer cells hold the source's solutions again.

    Cells are matched by id; each cell the source marks as an answer cell
    (solution-tagged or holding a region) takes the source's text (the solution
    markers included, so the result is the instructor edition's code). The
    release metadata stays, so the result still reads as a submission of that release.
    """
    nb = nbformat.from_dict(copy.deepcopy(dict(released_nb)))
    solutions = {c.get("id"): cell_source(c) for c in source_nb["cells"] if is_answer_cell(c)}
    for cell in nb.cells:
        if cell.get("id") in solutions:
            cell.source = solutions[cell["id"]]
    return nb
