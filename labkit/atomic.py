"""Writing a file or a folder so that a reader finds the old one or the new one whole, never half of either.

Both write into a scratch file or folder beside the target and rename it into place
(``os.replace``, atomic within one file system), and remove the scratch copy when
writing fails: a kill mid-write never leaves a half-written results file, checkpoint
or model folder where a reader looks.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a scratch file in the same folder, renamed into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(final: str | os.PathLike[str]) -> Iterator[Path]:
    """A scratch folder beside ``final`` that takes its place when the block ends (removed if the block raises).

    An older ``final`` is first renamed aside and then removed, so ``final`` is at every moment either the old
    folder whole or the new one whole."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            # an empty folder of a fresh name, which a folder can be renamed onto (a leftover name could not be)
            trash = Path(tempfile.mkdtemp(prefix=f".{final.name}-old-", dir=final.parent))
            os.replace(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
