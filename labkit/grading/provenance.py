"""Where a submission comes from: how a handed-in notebook differs from the student edition it was made from.

:func:`submission_changes` compares a submission with its release (the ``labkit_release`` metadata that
:mod:`labkit.release` writes: the release version and one digest per setup cell) and returns one
:class:`Change` per difference, as data: cells added, altered, deleted or reordered, an older release, or why
the notebook could not be compared. The grader keeps them in a submission's notes and sends the ones that
need a person (:attr:`Change.needs_review`) to the class summary; :attr:`Change.text` words one for them.
"""
from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import nbformat
from nbformat import NotebookNode

from labkit import labs
from labkit.notebooks import read_notebook
from labkit.release import METADATA_KEY, cell_digest, lab_source_path, release_notebook
from labkit.solutions import BEGIN_MARKER, cell_source

log = logging.getLogger(__name__)

_TEXTS = {
    "added": "cell {cell} was added",
    "added_without_id": "a cell without an id was added (position {position})",
    "altered": "cell {cell} was altered{markdown}",
    "deleted": "{what} {cell} was deleted",
    "reordered": "the setup cells were reordered",
    "older_release": "built from an older release (version {version}; current {current})",
    "no_digests": "could not compare the cells with that release: its per-cell digests are missing",
    "no_ids": "could not compare the cells with the release: they carry no ids (saved by a Jupyter older than "
              "nbformat 4.5?)",
    "no_metadata": "the notebook's '{key}' metadata is missing; compared with the current student edition of {lab} "
                   "by cell id",
    "not_a_release": "could not compare this notebook with a student edition: it carries no '{key}' metadata (not "
                     "made by `labkit release`, or the metadata was removed)",
    "not_compared": "could not compare this notebook with its release ({error})",
}


@dataclass(frozen=True)
class Change:
    """One way a submission differs from its release (``kind``: a key of the texts above) and what it concerns."""

    kind: str
    cell: str | None = None        # the cell's id
    position: int | None = None    # added_without_id: the cell's 1-based position
    markdown: bool = False         # altered: a markdown cell
    exercise: bool = False         # deleted: an exercise (answer) cell
    version: str | None = None     # older_release: the submission's release version
    current: str | None = None     # older_release: the current release's version
    lab: str | None = None         # no_metadata: the lab it was compared with by cell id
    error: str | None = None       # not_compared: why

    @property
    def needs_review(self) -> bool:
        """Whether a person should look: everything but a cell the learner added (learners add cells to
        explore; altered, deleted or reordered setup cells, an older release or a notebook that could not be
        compared are worth a look)."""
        return self.kind not in ("added", "added_without_id")

    @property
    def text(self) -> str:
        """The change in words, for feedback and the class summary."""
        return _TEXTS[self.kind].format(
            cell=self.cell, position=self.position, markdown=" (markdown)" if self.markdown else "",
            what="exercise cell" if self.exercise else "cell", version=self.version, current=self.current,
            key=METADATA_KEY, lab=self.lab, error=self.error)


def release_info(nb: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``labkit_release`` metadata of a notebook (lab, version, digests), or None.

    A grader can use it to tell a student edition from an instructor edition
    before deciding whether :func:`submission_changes` belong in feedback.
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
    """The student edition that releasing ``lab``'s source (in ``labs_dir``, else the registry's) gives now."""
    path = lab_source_path(lab, labs_dir)
    return release_notebook(read_notebook(path), lab, name=str(path))


def _compare(cells: list[Any], expected: Mapping[str, str], answer_ids: list[str]) -> list[Change]:
    """The cells of a submission against the digests of its release's setup cells and its answer cells' ids."""
    found: list[Change] = []
    known = set(expected) | set(answer_ids)
    present: list[str] = []
    for index, cell in enumerate(cells):
        tags = (cell.get("metadata", {}) or {}).get("tags", [])
        if "injected-parameters" in tags:  # papermill's own cell, not the learner's
            continue
        cid = cell.get("id")
        if not cid:
            found.append(Change("added_without_id", position=index + 1))
            continue
        present.append(cid)
        if cid not in known:
            found.append(Change("added", cell=cid))
        elif cid in expected and cell_digest(cell) != expected[cid]:
            found.append(Change("altered", cell=cid, markdown=cell.get("cell_type", "") == "markdown"))
    seen = set(present)
    for cid in list(expected) + list(answer_ids):
        if cid not in seen:
            found.append(Change("deleted", cell=cid, exercise=cid in answer_ids))
    order = [cid for cid in present if cid in expected]
    if order != [cid for cid in expected if cid in seen]:
        found.append(Change("reordered"))
    return found


def _lab_from_ids(cells: Iterable[Any]) -> str | None:
    """The lab whose cell-id prefix ("lab2-...") most cells carry, or None."""
    return labs.lab_of_cells([str(c.get("id") or "") for c in cells if isinstance(c, Mapping)])


def _release_meta(sub: NotebookNode) -> tuple[Mapping[str, Any] | None, list[Change]]:
    """(the submission's release metadata, changes already found); (None, changes) when nothing can be compared.
    A submission without the metadata is compared by cell id with the lab its ids name."""
    meta = sub.get("metadata", {}).get(METADATA_KEY)
    if isinstance(meta, Mapping) and meta.get("lab"):
        return meta, []
    if any(BEGIN_MARKER in cell_source(c) for c in sub.get("cells", [])):
        return None, []  # the instructor edition itself: nothing was released to compare with
    lab = _lab_from_ids(sub.get("cells", []))
    if lab is None:
        return None, [Change("not_a_release")]
    return {"lab": lab}, [Change("no_metadata", lab=lab)]


def submission_changes(nb: Any, *, labs_dir: str | os.PathLike[str] | None = None,
                       source: NotebookNode | Mapping[str, Any] | None = None) -> list[Change]:
    """How a submitted notebook differs from its student edition.

    ``nb`` is a notebook (dict/NotebookNode) or a path. The lab and release version come from its
    ``labkit_release`` metadata; ``source`` (the instructor notebook) defaults to the lab in ``labs_dir`` (repo
    labs/). A submission whose version differs from what releasing the current source gives is an
    ``older_release``, and its cells are compared with the digests recorded in its own metadata. An empty list
    means the setup cells match the release. Never raises: a notebook that cannot be compared yields one
    change saying why.
    """
    try:
        sub = _as_notebook(nb)
        meta, found = _release_meta(sub)
        if meta is None:
            return found
        lab = str(meta["lab"])
        current = release_notebook(source, lab) if source is not None else _current_release(lab, labs_dir)
        cur_meta = current.metadata[METADATA_KEY]
        version = str(meta.get("version", cur_meta["version"] if found else "unknown"))
        expected, answers = dict(cur_meta["cells"]), list(cur_meta["answer_cells"])
        if version != cur_meta["version"]:
            found.append(Change("older_release", version=version, current=cur_meta["version"]))
            recorded = meta.get("cells")
            if not isinstance(recorded, Mapping) or not all(isinstance(v, str) for v in recorded.values()):
                return [*found, Change("no_digests")]
            expected, answers = dict(recorded), [str(a) for a in meta.get("answer_cells", []) or []]
        cells = sub.get("cells", [])
        if cells and not any(c.get("id") for c in cells):
            return [*found, Change("no_ids")]
        return found + _compare(cells, expected, answers)
    except Exception as err:  # feedback must never stop grading
        log.debug("submission_changes failed", exc_info=True)
        return [Change("not_compared", error=f"{type(err).__name__}: {err}")]
