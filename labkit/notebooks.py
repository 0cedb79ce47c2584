"""Reading a notebook file: validated as nbformat 4, size-limited and link-refusing on request, and errors that
never quote the file's content (the grader reads files students made).

The one notebook reader of labkit: the runner, the grader, the release and the similarity report all read
through :func:`read_notebook`.
"""
from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

from labkit.config import LabkitError


def read_notebook(path: str | os.PathLike[str], *, max_mb: float | None = None, follow_links: bool = True,
                  name: str | None = None) -> Any:
    """Read and validate a notebook; LabkitError saying what is wrong when it is not valid JSON/nbformat.

    The message names the problem, the file (``name`` when given, else the path) and the line and column;
    it never quotes the file's content (the grader reads files students made). ``max_mb``: a larger file is
    refused unread; ``follow_links=False``: a symbolic link is refused, never followed (the grader's own
    reads of what a submission left behind)."""
    p = Path(path)
    label = name or str(p)
    flags = os.O_RDONLY | (0 if follow_links else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise LabkitError(f"Notebook {label} does not exist.") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise LabkitError(f"{label} is a symbolic link; the grader reads no linked file: hand in the notebook "
                              "itself.") from None
        raise LabkitError(f"Notebook {label} cannot be read ({err.strerror}).") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise LabkitError(f"Notebook {label} is not a regular file (expected a .ipynb file).")
        if max_mb is not None and st.st_size > max_mb * 2**20:
            raise LabkitError(f"{label} is {st.st_size / 2**20:.0f} MB, more than the {max_mb:g} MB a notebook may "
                              "have: clear its outputs (Kernel > Restart Kernel and Clear Outputs), save, and hand "
                              "it in again.")
        data = fh.read() if max_mb is None else fh.read(int(max_mb * 2**20) + 1)
    return parse_notebook(data, label)


def parse_notebook(data: bytes, label: str = "the notebook") -> Any:
    """A notebook from its bytes (converted to nbformat 4); LabkitError naming the problem and where, never the
    content."""
    import nbformat

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LabkitError(f"invalid notebook JSON in {label}: not UTF-8 text (byte {err.start}); save the notebook "
                          "again from Jupyter.") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise LabkitError(f"invalid notebook JSON in {label}: line {err.lineno}, column {err.colno}: {err.msg} "
                          "(expected a .ipynb file as Jupyter saves it).") from None
    except RecursionError:
        raise LabkitError(f"invalid notebook JSON in {label}: nested too deeply to be a notebook.") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise LabkitError(f"invalid notebook JSON in {label}: no list of cells.")
    try:
        from nbformat import reader  # what nbformat.reads does, without logging a schema error's quote of the file
        nb = nbformat.convert(reader.reads(text), 4)
    except Exception as err:  # nbformat raises assorted errors for malformed documents; their text may quote it
        version = raw.get("nbformat")
        shown = f" (nbformat {version})" if isinstance(version, int) and not isinstance(version, bool) else ""
        raise LabkitError(f"invalid notebook JSON in {label}: it does not follow the Jupyter notebook format"
                          f"{shown}: {type(err).__name__}.") from None
    if not isinstance(nb.get("cells"), list):
        raise LabkitError(f"invalid notebook JSON in {label}: no list of cells.")
    return nb

