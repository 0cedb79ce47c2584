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

* a code region becomes ``# YOUR CODE HERE`` plus ``<name> = None`` for every
  name the region assigns that is needed after it, so an untouched student
  notebook still runs headless and records ``None`` ("not answered") instead
  of raising; a region that leaves nothing behind becomes ``# YOUR CODE HERE``
  (plus ``pass`` when it is indented, to stay valid Python);
* a markdown region or ``solution`` markdown/raw cell becomes ``YOUR ANSWER HERE``;
* outputs, execution counts and every metadata key outside a short allow-list
  are dropped (hidden data never rides along in metadata);
* cell ids stay those of the source, so a submission can be matched to it;
* the notebook metadata gains ``labkit_release`` (see :func:`release_metadata`):
  the release version, the lab, a digest of the non-exercise cells and one
  digest per cell, which :func:`describe_submission` uses to tell a grader
  which setup cells a learner altered and whether the work comes from an older
  release.

Releasing is a pure function of the source: writing twice gives byte-identical
files (``nbformat.writes`` sorts keys; nothing depends on time or paths).
"""
from __future__ import annotations

import ast
import copy
import hashlib
import io
import json
import logging
import os
import re
import textwrap
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import nbformat
from nbformat import NotebookNode

from labkit import __version__, labs
from labkit.config import LabkitError

log = logging.getLogger(__name__)

BEGIN_MARKER = "### BEGIN SOLUTION"
END_MARKER = "### END SOLUTION"
SOLUTION_TAG = "solution"
PARAMETERS_TAG = "parameters"
CODE_STUB = "# YOUR CODE HERE"
ANSWER_STUB = "YOUR ANSWER HERE"
METADATA_KEY = "labkit_release"
# Bumped whenever the student edition of the same source would come out differently,
# so the release version changes with the release format as well as with the source.
RELEASE_FORMAT = 1

DEFAULT_OUT = Path("outputs") / "release"

# Metadata that may travel to students; anything else (grading notes, hidden data,
# papermill/execution records) stays in the instructor edition.
_NOTEBOOK_METADATA_KEEP = ("kernelspec", "language_info")
_CELL_METADATA_KEEP = ("tags", "editable", "deletable", "jupyter", "slideshow")
_MARKER_WORDS = re.compile(r"\b(BEGIN|END) SOLUTION\b")

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


@dataclass(frozen=True)
class Region:
    """A solution region: lines ``begin`` .. ``end`` (the marker lines, 0-based, inclusive)."""

    begin: int
    end: int
    indent: str


# --------------------------------------------------------------------------- regions

def _cell_label(notebook: str, index: int, cell: Mapping[str, Any]) -> str:
    return f"{notebook}: cell {index} (id {cell.get('id', '<none>')!r})"


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def find_regions(source: str, *, where: str = "cell") -> list[Region]:
    """The solution regions of one cell's source, in order.

    Raises LabkitError naming ``where`` (notebook and cell) for an unclosed,
    nested or stray marker, or a line that mentions ``BEGIN/END SOLUTION`` but is
    not exactly a marker (it would leak into the student edition otherwise).
    """
    regions: list[Region] = []
    open_at: int | None = None
    indent = ""
    for number, line in enumerate(source.split("\n")):
        stripped = line.strip()
        if stripped == BEGIN_MARKER:
            if open_at is not None:
                raise LabkitError(
                    f"{where}: '{BEGIN_MARKER}' on line {number + 1} opens a region inside the one "
                    f"opened on line {open_at + 1}; regions cannot nest. Close the first with "
                    f"'{END_MARKER}' before opening another.")
            open_at, indent = number, line[: len(line) - len(line.lstrip())]
        elif stripped == END_MARKER:
            if open_at is None:
                raise LabkitError(
                    f"{where}: '{END_MARKER}' on line {number + 1} closes no region. Expected a "
                    f"'{BEGIN_MARKER}' line before it; add one or remove the stray marker.")
            regions.append(Region(open_at, number, indent))
            open_at = None
        elif _MARKER_WORDS.search(line):
            raise LabkitError(
                f"{where}: line {number + 1} ({stripped[:60]!r}) mentions a solution marker but is not "
                f"one. A marker line must read exactly '{BEGIN_MARKER}' or '{END_MARKER}' "
                f"(indentation allowed); fix or reword it.")
    if open_at is not None:
        raise LabkitError(
            f"{where}: '{BEGIN_MARKER}' on line {open_at + 1} is never closed. Expected a matching "
            f"'{END_MARKER}' line after the solution; add it.")
    return regions


def is_solution_cell(cell: Mapping[str, Any]) -> bool:
    """True for a whole cell tagged ``solution``."""
    return SOLUTION_TAG in (cell.get("metadata", {}) or {}).get("tags", [])


def is_answer_cell(cell: Mapping[str, Any]) -> bool:
    """True for a cell the student edition changes: solution-tagged or holding a region.

    Such cells are expected to differ in a submission; every other cell is a
    "setup" cell whose source a learner should leave alone.
    """
    if is_solution_cell(cell):
        return True
    src = _source(cell)
    return BEGIN_MARKER in src


# --------------------------------------------------------------------------- stubs

def _parse_lenient(code: str) -> ast.AST | None:
    """Parse a fragment (maybe indented, maybe with IPython magics) or return None."""
    lines = [("pass  # " + ln) if ln.lstrip().startswith(("%", "!")) else ln for ln in code.split("\n")]
    try:
        return ast.parse(textwrap.dedent("\n".join(lines)))
    except SyntaxError:
        return None


def _stored_names(code: str) -> list[str]:
    """Names a fragment binds (assignments, for/with targets, defs, imports), in order."""
    tree = _parse_lenient(code)
    if tree is None:  # fall back to plain `name = ...` lines
        return list(dict.fromkeys(re.findall(r"^\s*([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)", code, re.M)))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.append(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.extend((a.asname or a.name).split(".")[0] for a in node.names)
    return list(dict.fromkeys(names))


def _used_names(code: str) -> set[str]:
    """Identifiers a fragment mentions (over-approximate: a stray `= None` is harmless)."""
    names: set[str] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.NAME:
                names.add(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        names |= set(re.findall(r"[A-Za-z_]\w*", code))
    return names


def _code_stub(indent: str, names: Iterable[str]) -> list[str]:
    names = list(names)
    lines = [f"{indent}{CODE_STUB}"] + [f"{indent}{n} = None" for n in names]
    if indent and not names:  # the region may be a whole block body
        lines.append(f"{indent}pass")
    return lines


def _later_code(cells: list[Any], index: int) -> str:
    return "\n".join(_source(c) for c in cells[index + 1:] if c.get("cell_type") == "code")


def _earlier_code(cells: list[Any], index: int) -> str:
    return "\n".join(_source(c) for c in cells[:index] if c.get("cell_type") == "code")


def _names_to_stub(region_code: str, after_in_cell: str, later: str, before: str) -> list[str]:
    """Which names the stub must set to None so the notebook keeps running.

    A name the same cell uses after the region (``labkit.record("exercise_1", answer)``)
    is always reset, so an untouched exercise records None even if an earlier
    exercise used the same name. A name only later cells use is reset unless the
    setup already defined it before the region (then that value carries on).
    """
    stored = _stored_names(region_code)
    used_here, used_later = _used_names(after_in_cell), _used_names(later)
    defined_before = set(_stored_names(before)) if before else set()
    return [n for n in stored
            if n in used_here or (n in used_later and n not in defined_before)]


def student_source(cells: list[Any], index: int, *, notebook: str = "notebook") -> str:
    """The student-edition source of ``cells[index]`` (unchanged when it holds no solution)."""
    cell = cells[index]
    where = _cell_label(notebook, index, cell)
    src = _source(cell)
    regions = find_regions(src, where=where)  # validates markers in every cell
    kind = cell.get("cell_type")
    if is_solution_cell(cell):
        if kind != "code":
            return ANSWER_STUB
        names = _names_to_stub(src, "", _later_code(cells, index), _earlier_code(cells, index))
        return "\n".join(_code_stub("", names))
    if not regions:
        return src
    lines = src.split("\n")
    out: list[str] = []
    last = 0
    for region in regions:
        out.extend(lines[last:region.begin])
        if kind == "code":
            body = "\n".join(lines[region.begin + 1:region.end])
            after = "\n".join(lines[region.end + 1:])
            before = _earlier_code(cells, index) + "\n" + "\n".join(lines[:region.begin])
            names = _names_to_stub(body, after, _later_code(cells, index), before)
            out.extend(_code_stub(region.indent, names))
        else:
            out.append(f"{region.indent}{ANSWER_STUB}")
        last = region.end + 1
    out.extend(lines[last:])
    return "\n".join(out)


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
    payload = f"{cell.get('cell_type', '')}\n{normalise_source(_source(cell))}"
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
        item = [cell.get("id"), cell.get("cell_type"), tags, normalise_source(_source(cell))]
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


def read_notebook(path: str | os.PathLike[str]) -> NotebookNode:
    """Read a notebook as nbformat 4, with a clear error for a file that is not one."""
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as err:  # nbformat raises several kinds (JSON, validation, reader)
        raise LabkitError(f"{path} is not a readable Jupyter notebook ({type(err).__name__}: {err}).") from err


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


# --------------------------------------------------------------------------- submissions

def put_back_solutions(released_nb: NotebookNode | Mapping[str, Any],
                       source_nb: NotebookNode | Mapping[str, Any]) -> NotebookNode:
    """A copy of ``released_nb`` whose answer cells hold the source's solutions again.

    Cells are matched by id; each cell the source marks as an answer cell
    (solution-tagged or holding a region) takes the source's text (the solution
    markers included, so the result is the instructor edition's code). The
    release metadata stays, so the result still reads as a submission of that release.
    """
    nb = nbformat.from_dict(copy.deepcopy(dict(released_nb)))
    solutions = {c.get("id"): _source(c) for c in source_nb["cells"] if is_answer_cell(c)}
    for cell in nb.cells:
        if cell.get("id") in solutions:
            cell.source = solutions[cell["id"]]
    return nb


def release_info(nb: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``labkit_release`` metadata of a notebook (lab, version, digests), or None.

    A grader can use it to tell a student edition from an instructor edition
    before deciding whether :func:`describe_submission` lines belong in feedback.
    """
    try:
        meta = (nb.get("metadata") or {}).get(METADATA_KEY)
    except AttributeError:
        return None
    return dict(meta) if isinstance(meta, Mapping) else None


def _as_notebook(nb: Any) -> NotebookNode:
    if isinstance(nb, (str, os.PathLike)):
        return read_notebook(nb)
    return nbformat.from_dict(copy.deepcopy(dict(nb)))


def _current_release(lab: str, labs_dir: str | os.PathLike[str] | None) -> NotebookNode:
    path = lab_source_path(lab, labs_dir)
    return release_notebook(read_notebook(path), lab, name=str(path))


def _compare(cells: list[Any], expected: Mapping[str, str], answer_ids: list[str]) -> list[str]:
    lines: list[str] = []
    known = set(expected) | set(answer_ids)
    present: list[str] = []
    for index, cell in enumerate(cells):
        tags = (cell.get("metadata", {}) or {}).get("tags", [])
        if "injected-parameters" in tags:  # papermill's own cell, not the learner's
            continue
        cid = cell.get("id")
        if not cid:
            lines.append(f"a cell without an id was added (position {index + 1})")
            continue
        present.append(cid)
        if cid not in known:
            lines.append(f"cell {cid} was added")
        elif cid in expected and cell_digest(cell) != expected[cid]:
            kind = cell.get("cell_type", "")
            lines.append(f"cell {cid} was altered" + (" (markdown)" if kind == "markdown" else ""))
    seen = set(present)
    for cid in list(expected) + list(answer_ids):
        if cid not in seen:
            what = "exercise cell" if cid in answer_ids else "cell"
            lines.append(f"{what} {cid} was deleted")
    order = [cid for cid in present if cid in expected]
    if order != [cid for cid in expected if cid in seen]:
        lines.append("the setup cells were reordered")
    return lines


def needs_review(line: str) -> bool:
    """Whether a line of :func:`describe_submission` asks for a person: every line except a cell the learner
    added (learners add cells to explore; altered, deleted or reordered setup cells, an older release or a
    notebook that could not be compared are worth a look)."""
    return not re.fullmatch(r"(a )?cell( \S+)? (was added|without an id was added.*)", line)


def _lab_from_ids(cells: Iterable[Any]) -> str | None:
    """The lab whose cell-id prefix ("lab2-...") most cells carry, or None."""
    return labs.lab_of_cells([str(c.get("id") or "") for c in cells if isinstance(c, Mapping)])


def describe_submission(nb: Any, *, labs_dir: str | os.PathLike[str] | None = None,
                        source: NotebookNode | Mapping[str, Any] | None = None) -> list[str]:
    """Feedback lines saying how a submitted notebook differs from its student edition.

    ``nb`` is a notebook (dict/NotebookNode) or a path. The lab and release version
    come from its ``labkit_release`` metadata; ``source`` (the instructor notebook)
    defaults to the lab in ``labs_dir`` (repo labs/). Lines name altered, deleted
    and added cells by id and say "built from an older release (version X; current Y)"
    when the submission's version differs from what releasing the current source
    gives; then cells are compared with the digests recorded in the submission's
    own metadata. An empty list means the setup cells match the release.
    Never raises: a notebook that cannot be compared yields one line saying why.
    """
    try:
        sub = _as_notebook(nb)
        meta = sub.get("metadata", {}).get(METADATA_KEY)
        prefix: list[str] = []
        if not isinstance(meta, Mapping) or not meta.get("lab"):
            if any(BEGIN_MARKER in _source(c) for c in sub.get("cells", [])):
                return []  # the instructor edition itself: nothing was released to compare with
            lab = _lab_from_ids(sub.get("cells", []))
            if lab is None:
                return ["could not compare this notebook with a student edition: it carries no "
                        f"'{METADATA_KEY}' metadata (not made by `labkit release`, or the metadata was removed)"]
            prefix = [f"the notebook's '{METADATA_KEY}' metadata is missing; compared with the current "
                      f"student edition of {lab} by cell id"]
            meta = {"lab": lab}
        lab = str(meta["lab"])
        if source is not None:
            current = release_notebook(source, lab)
        else:
            current = _current_release(lab, labs_dir)
        cur_meta = current.metadata[METADATA_KEY]
        lines: list[str] = prefix
        version = str(meta.get("version", cur_meta["version"] if prefix else "unknown"))
        if version != cur_meta["version"]:
            lines.append(f"built from an older release (version {version}; current {cur_meta['version']})")
            recorded = meta.get("cells")
            if not isinstance(recorded, Mapping) or not all(isinstance(v, str) for v in recorded.values()):
                lines.append("could not compare the cells with that release: its per-cell digests are missing")
                return lines
            expected, answers = dict(recorded), [str(a) for a in meta.get("answer_cells", []) or []]
        else:
            expected, answers = dict(cur_meta["cells"]), list(cur_meta["answer_cells"])
        cells = sub.get("cells", [])
        if cells and not any(c.get("id") for c in cells):
            lines.append("could not compare the cells with the release: they carry no ids "
                         "(saved by a Jupyter older than nbformat 4.5?)")
            return lines
        return lines + _compare(cells, expected, answers)
    except Exception as err:  # feedback must never stop grading
        log.debug("describe_submission failed", exc_info=True)
        return [f"could not compare this notebook with its release ({type(err).__name__}: {err})"]
