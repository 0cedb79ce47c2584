"""Tamper check for grading without bubblewrap: fingerprints of the grader's own files, before and after.

Under ``--isolation rlimits`` a submission runs with the grader's user rights,
so nothing stops it from writing the grader's files by their absolute path.
The kernel works against private copies (see :mod:`labkit.sandbox`), and this
module makes any write to the originals *visible*: the driver fingerprints
the protected files before the first submission and again after each one;
a difference stops the batch, names the submission(s) that were running and
the files that changed, and restores nothing (a silent repair would hide an
attack and could hide a forged grade).

Protected (:func:`protected_roots`): the labkit package the grader imports
(for the editable install, the checkout's ``labkit/``, rubrics included), the
repository's ``labkit/`` and ``data/`` (or ``LABKIT_DATA``), the rubric in use
with its checks, plugins and hidden data, the files named in ``LABKIT_LABS``
and every registered lab's rubric and checks, the fixtures and derived-model cache under
``LABKIT_HOME``, and the Python environment the grader runs from (its
site-packages and ``bin/``: a dropped ``.pth`` file or a patched dependency
would run code in every later grader process). Project files are hashed
(sha256); the environment, tens of thousands of files, is fingerprinted by
(size, inode, mode, ctime): ctime changes on every write, rename or chmod, and
no unprivileged process can set it back.
"""
from __future__ import annotations

import hashlib
import logging
import os
import site
import stat
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from labkit.config import LabkitError

log = logging.getLogger(__name__)

SKIP_NAMES = (".lock",)          # lock files labs take under LABKIT_HOME: their content never reaches the grader
MAX_LISTED = 8                   # changed paths named in a message


@dataclass(frozen=True)
class Root:
    """One protected tree (or file): hashed content, or stat fingerprint only."""

    path: Path
    hashed: bool = True


@dataclass
class Fingerprint:
    """path → content digest (hashed roots) or stat signature (environment), plus each root's own state."""

    entries: dict[str, str] = field(default_factory=dict)

    def changes(self, later: "Fingerprint") -> list[str]:
        """What differs in ``later``: 'modified: P', 'added: P', 'removed: P' (sorted by path)."""
        out = []
        for path in sorted(set(self.entries) | set(later.entries)):
            a, b = self.entries.get(path), later.entries.get(path)
            if a == b:
                continue
            out.append(f"{'added' if a is None else 'removed' if b is None else 'modified'}: {path}")
        return out


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def _signature(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_ino}:{st.st_mode:o}:{st.st_ctime_ns}"


def _walk(root: Path) -> Iterable[tuple[Path, os.stat_result]]:
    """Every non-directory below ``root`` (symlinks not followed), with its lstat."""
    stack = [root]
    while stack:
        top = stack.pop()
        try:
            with os.scandir(top) as it:
                for entry in it:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(Path(entry.path))
                    else:
                        yield Path(entry.path), st
        except OSError:
            continue


def _entry(path: Path, st: os.stat_result, hashed: bool) -> str:
    if stat.S_ISLNK(st.st_mode):
        try:
            return "symlink:" + os.readlink(path)
        except OSError:
            return "symlink:?"
    if not hashed or not stat.S_ISREG(st.st_mode):
        return _signature(st)
    try:
        return _digest(path)
    except OSError as err:
        return f"unreadable:{err.errno}"


def fingerprint(roots: Iterable[Root]) -> Fingerprint:
    """Fingerprint every file under the given roots (a root that does not exist is recorded as absent)."""
    fp = Fingerprint()
    for root in sorted(roots, key=lambda r: r.hashed):  # stat roots first: a hashed file inside one keeps its hash
        try:
            st = root.path.lstat()
        except OSError:
            fp.entries[str(root.path)] = "absent"
            continue
        if not stat.S_ISDIR(st.st_mode):
            fp.entries[str(root.path)] = _entry(root.path, st, root.hashed)
            continue
        fp.entries[str(root.path)] = "dir"
        for path, fst in _walk(root.path):
            if path.name.endswith(SKIP_NAMES):
                continue
            fp.entries[str(path)] = _entry(path, fst, root.hashed)
    return fp


def _rubric_files(rubric: Any) -> list[Path]:
    """The rubric's YAML, its checks beside it (same stem, .py) and the plugin files it imports (all run inside
    the grader)."""
    path = getattr(rubric, "path", None)
    if path is None:
        return []
    files = [Path(path), Path(path).with_suffix(".py")]
    try:
        import yaml
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        for plugin in raw.get("plugins") or []:
            p = Path(plugin)
            files.append(p if p.is_absolute() else Path(path).parent / p)
    except Exception:  # the rubric loaded already; an unreadable plugin list is the loader's business
        pass
    return files


def environment_roots() -> list[Path]:
    """Where the grader's Python finds code: the environment's site-packages and bin/, the user site if enabled."""
    roots = {Path(p) for p in site.getsitepackages() if Path(p).is_relative_to(sys.prefix)}
    roots.add(Path(sys.executable).parent)
    if site.ENABLE_USER_SITE:
        roots.add(Path(site.getusersitepackages()))
    return sorted(roots)


def protected_roots(rubric: Any = None) -> list[Root]:
    """Everything the tamper check covers for a batch graded with ``rubric`` (see the module docstring)."""
    import labkit
    from labkit import labs
    from labkit.config import data_dir, labkit_home, repo_root

    hashed: dict[Path, None] = {}
    lab_files = [p for lab in labs.all_labs() for p in (lab.rubric, lab.checks)]
    for p in (Path(labkit.__file__).resolve().parent, repo_root() / "labkit", data_dir(),
              labkit_home() / "fixtures", labkit_home() / "cache", *_rubric_files(rubric),
              *rubric_hidden_paths(rubric), *labs.extension_files(), *lab_files):
        hashed.setdefault(Path(os.path.abspath(p)), None)
    roots = [Root(p) for p in hashed]
    inside = lambda p: any(p == r.path or r.path in p.parents for r in roots)  # noqa: E731
    roots += [Root(p, hashed=False) for p in environment_roots() if not inside(p)]
    return _outermost(roots)


def _outermost(roots: list[Root]) -> list[Root]:
    """Drop roots inside another root of the same kind (each file is fingerprinted once)."""
    keep = []
    for r in roots:
        if any(o is not r and o.hashed == r.hashed and o.path in r.path.parents for o in roots):
            continue
        keep.append(r)
    return keep


class TamperedError(LabkitError):
    """Raised by the batch when the grader's protected files changed; carries the batch's records."""

    def __init__(self, message: str, records: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.records = records or []


class IntegrityGuard:
    """The driver's tamper check: a fingerprint taken before the batch, compared after every submission."""

    def __init__(self, roots: list[Root]) -> None:
        self.roots = roots
        # this process must not change the fingerprinted __pycache__ folders itself (restored by close())
        self._bytecode = sys.dont_write_bytecode
        sys.dont_write_bytecode = True
        self.baseline = fingerprint(roots)
        self.stopped = ""          # the reason the batch stopped ('' while clean)
        self.changed: list[str] = []
        self.culprits: list[str] = []
        self._lock = threading.Lock()
        self._running: set[str] = set()

    def close(self) -> None:
        """End of the batch: this process may write bytecode again (if it could before)."""
        sys.dont_write_bytecode = self._bytecode

    def check(self, finished: str, running: Iterable[str] = ()) -> list[str]:
        """Compare now with the baseline after submission ``finished`` ended (``running``: the others still
        running at that time). Returns the changes; the first difference stops the batch."""
        changes = self.baseline.changes(fingerprint(self.roots))
        if changes and not self.stopped:
            self.changed = changes
            self.culprits = [finished, *sorted(set(running) - {finished})]
            self.stopped = self.message()
            log.error("tamper check: the grader's files changed while %s ran; stopping the batch", finished)
        return changes

    def message(self) -> str:
        """The loud reason: who, what changed, that nothing was restored, what to do."""
        who = repr(self.culprits[0]) + (f" (or {', '.join(map(repr, self.culprits[1:]))}, running at the same time)"
                                        if len(self.culprits) > 1 else "")
        listed = "; ".join(self.changed[:MAX_LISTED]) + (f"; and {len(self.changed) - MAX_LISTED} more"
                                                         if len(self.changed) > MAX_LISTED else "")
        return (f"GRADING STOPPED: the grader's own files were modified (tampered) while submission {who} ran "
                f"under --isolation rlimits: {listed}. Nothing was restored and no further submission was started; "
                "the grades of the submission(s) named are void. Inspect and repair the files (git status / "
                "git diff in the checkout, `make install`, rebuild the fixtures with `labkit fixtures --force`), "
                "then grade in bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install "
                "bubblewrap), which mounts these files read-only.")

    def run(self, sub_id: str, task: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        """Run one submission's ``task`` unless the batch has stopped (then None: it was not run), and check the
        protected files when it ends, unless it reused an earlier grade (``skipped``: nothing ran). Checks are
        serialised, so a stop is seen before the next task starts."""
        with self._lock:
            if self.stopped:
                return None
            self._running.add(sub_id)
        ran = True
        try:
            record = task()
            ran = not (isinstance(record, dict) and record.get("skipped"))  # a grade reused from an earlier run
            return record
        finally:
            with self._lock:
                self._running.discard(sub_id)
                if ran:
                    self.check(sub_id, self._running)

    def void(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record of a submission that ran while the files changed: no score, the stop as its reason."""
        return {**record, "score": 0.0, "status": "tampered", "reason": self.stopped,
                "notes": [*record.get("notes", []), f"score before the stop: {record.get('score')}"]}

    def not_graded(self, sub_id: str, lab: str, max_points: float = 0.0) -> dict[str, Any]:
        """The record of a submission not run because the batch had stopped (no grade file: a rerun grades it)."""
        return {"id": sub_id, "score": 0.0, "max": max_points, "status": "not_graded", "checks": [], "notes": [],
                "reason": f"not graded: grading stopped after submission {self.culprits[0]!r} modified the "
                          "grader's files (see summary.md)", "isolation": "", "lab": lab}


def rubric_hidden_paths(rubric: Any) -> list[Path]:
    """A rubric's ``hidden_paths``, relative ones resolved against the repository (as the grader masks them)."""
    from labkit.config import data_dir
    return [Path(p) if os.path.isabs(p) else data_dir().parent / p for p in getattr(rubric, "hidden_paths", [])]


def mark_stopped(summary: Path, reason: str) -> None:
    """Put the stop reason at the top of the class summary (it must not be missed)."""
    try:
        body = summary.read_text(encoding="utf-8") if summary.is_file() else ""
        summary.write_text(f"> **{reason}**\n\n{body}", encoding="utf-8")
    except OSError:
        log.exception("could not write the stop reason into %s", summary)
