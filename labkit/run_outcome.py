"""How a run ended: the :class:`RunResult`, its status judged from the runner's own word (its pipe), the
watchdog's report and the executed notebook, and the one function that words it (:func:`run_message`).

The judgement is data (a status, the cell, the exception, and in ``detail`` what was hit: the limit, the
signal, the runner's last stderr line); only :func:`run_message` makes a sentence of it, so a caller that
shows the partial notebook under another name (the grader) asks for the message again instead of editing it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labkit.config import LabkitError
from labkit.notebooks import read_notebook


@dataclass
class RunResult:
    """Outcome of one notebook execution."""

    lab: str
    notebook: Path                  # the source notebook
    output_notebook: Path           # the executed (possibly partial) notebook
    output_dir: Path                # OUT/<lab>: results.json and artifacts
    status: str = "ok"              # ok | error | cell_timeout | timeout | kernel_died | memory | processes | output_limit | crashed
    message: str = ""               # run_message(self): the judgement in words
    seconds: float = 0.0
    cell: int | None = None         # 1-based index of the failing cell in the source notebook
    cell_id: str | None = None
    exception: str | None = None    # "ValueError: bad thing"
    output_truncated: bool = False
    results: dict[str, Any] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)  # why, as data: {"cause": ..., the limit or signal hit}

    @property
    def ok(self) -> bool:
        """True when every cell ran."""
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (paths as strings)."""
        d = asdict(self)
        for k in ("notebook", "output_notebook", "output_dir"):
            d[k] = str(d[k])
        return d


# ---------------------------------------------------------------- reading the executed notebook

def _source_cell(source_nb: Any, executed_index: int | None, executed_nb: Any | None) -> tuple[int | None, str | None]:
    """Map a cell index of the executed notebook (with papermill's injected cell) to the source's 1-based number."""
    if executed_index is None or executed_nb is None:
        return None, None
    try:
        cell = executed_nb.cells[executed_index]
    except IndexError:
        return None, None
    cid = cell.get("id")
    for i, src in enumerate(source_nb.cells):
        if cid and src.get("id") == cid:
            return i + 1, cid
    injected = sum(1 for c in executed_nb.cells[:executed_index]
                   if {"injected-parameters", "papermill-error-cell-tag"} & set(c.get("metadata", {}).get("tags") or []))
    return executed_index - injected + 1, cid


def _failed_cell(source_nb: Any, executed: Any | None, child: dict[str, Any]) -> tuple[int | None, str | None]:
    """(1-based source cell, id) of the cell that failed or was running when the run stopped, or (None, None)."""
    idx = None
    if executed is not None:
        # papermill marks the failed (or, when killed from outside, the running) cell in its metadata;
        # its own cell_index does not count the error banners it inserts
        for i, c in enumerate(executed.cells):
            if c.get("metadata", {}).get("papermill", {}).get("status") in ("running", "failed"):
                idx = i
    cell, cell_id = _source_cell(source_nb, idx, executed)
    if cell is None and child.get("cell_id"):
        for i, src in enumerate(source_nb.cells):
            if src.get("id") == child["cell_id"]:
                return i + 1, child["cell_id"]
    return cell, cell_id


def _executed(path: Path) -> Any | None:
    """The executed notebook, or None when it is missing, a link, or not a notebook."""
    if not path.is_file() or path.is_symlink():
        return None
    try:
        return read_notebook(path, follow_links=False)
    except LabkitError:
        return None


def signal_of(returncode: int | None, sandbox: Any | None = None) -> int | None:
    """The signal that killed the runner, from its exit status (None when it exited by itself): a negative
    status, or bubblewrap's 128 + N for a sandboxed runner killed by signal N."""
    if not isinstance(returncode, int):
        return None
    if returncode < 0:
        return -returncode
    if getattr(sandbox, "isolation", None) == "bwrap" and returncode > 128:
        return returncode - 128
    return None


_NOT_RUN = ("pending", "running", "failed")


def unfinished_cells(executed: Any | None, source_nb: Any) -> str:
    """"" when the executed notebook shows every cell of the source run to its end; else what it shows instead
    (read from papermill's record in each cell, the one account the runner writes last)."""
    if executed is None:
        return "cannot be read"
    cells = [c for c in executed.get("cells", []) if "injected-parameters" not in (c.get("metadata", {}).get("tags") or [])]
    states = [c.get("metadata", {}).get("papermill", {}).get("status") for c in cells]
    left = [i + 1 for i, st in enumerate(states) if st in _NOT_RUN or st is None]
    if left:
        return f"shows cell {left[0]} not run to its end"
    n_code = sum(1 for c in source_nb.get("cells", []) if c.get("cell_type") == "code")
    if sum(1 for c in cells if c.get("cell_type") == "code") < n_code:
        return "has fewer code cells than the notebook that was run"
    return ""


# ---------------------------------------------------------------- the judgement

def _ending(child: dict[str, Any], report: Any, *, timeout: float | None, sandbox: Any | None,
            unfinished: str) -> tuple[str, dict[str, Any], str | None]:
    """(status, detail, exception) of a run: the watchdog's kill first, then a signal (a runner killed by one
    did not finish, whatever anything says), then the runner's own status from its pipe, then its exit."""
    lim = getattr(sandbox, "limits", None)
    rc = getattr(report, "returncode", None)
    why = getattr(report, "stderr_tail", "")
    if report.killed == "timeout":
        return "timeout", {"cause": "timeout", "timeout_s": timeout}, None
    if report.killed == "memory":
        return "memory", {"cause": "memory_limit", "memory_mb": lim.memory_mb}, None
    if report.killed == "processes":
        return "processes", {"cause": "processes", "max_processes": lim.max_processes}, None
    sig = signal_of(rc, sandbox)
    if sig not in (None, 25):  # 25, SIGXFSZ: a file grew past its limit (below)
        return "crashed", {"cause": "signal", "signal": sig, "stderr": why}, None
    if child.get("status") == "ok" and rc in (0, None):
        return ("crashed", {"cause": "unfinished", "unfinished": unfinished}, None) if unfinished else \
            ("ok", {"cause": "ok"}, None)
    if child.get("status") in ("error", "cell_timeout", "kernel_died"):
        ename, evalue = child.get("ename") or "Error", (child.get("evalue") or "").strip()
        exception = f"{ename}: {evalue}"[:300] if evalue else ename
        if ename == "MemoryError":
            return "memory", {"cause": "memory_error", "memory_mb": lim.memory_mb if lim else None}, exception
        return child["status"], {"cause": child["status"]}, exception
    if isinstance(rc, int) and rc in (-25, 153):  # SIGXFSZ: a file grew past RLIMIT_FSIZE
        return "output_limit", {"cause": "output_limit", "file_size_mb": lim.file_size_mb if lim else "?"}, None
    return "crashed", {"cause": "exit", "exit": rc, "stderr": why}, None


def classify(result: RunResult, child: dict[str, Any], report: Any, *, timeout: float | None,
             sandbox: Any | None, source_nb: Any) -> None:
    """Fill in how the run ended: ``result``'s status, cell, exception, detail and message, from the runner's
    status (``child``, read from its pipe), the watchdog's ``report`` and the executed notebook."""
    executed = _executed(result.output_notebook)
    result.cell, result.cell_id = _failed_cell(source_nb, executed, child)
    result.output_truncated = bool(child.get("output_truncated"))
    needs_check = child.get("status") == "ok" and getattr(report, "returncode", 0) in (0, None)
    unfinished = unfinished_cells(executed, source_nb) if needs_check else ""
    result.status, result.detail, exception = _ending(child, report, timeout=timeout, sandbox=sandbox,
                                                      unfinished=unfinished)
    if exception is not None:
        result.exception = exception
    result.message = run_message(result)


# ---------------------------------------------------------------- the judgement in words

_MESSAGES = {
    "timeout": "timed out after {timeout_s:g} s while running {where}",
    "memory_limit": "killed for memory: the run used more than {memory_mb} MB while running {where}",
    "memory_error": "killed for memory{limit}: MemoryError in {where}",
    "processes": "killed: more than {max_processes} processes (fork storm?) while running {where}",
    "signal": "the notebook runner was killed (signal {signal}) while running {where}{why}",
    "unfinished": "the runner reported success, but the executed notebook {unfinished}",
    "kernel_died": "the kernel died while running {where} ({exception})",
    "cell_timeout": "{where} ran longer than the per-cell timeout",
    "error": "{where} failed with {exception}",
    "output_limit": "a file grew past the {file_size_mb} MB limit while running {where}",
    "exit": "the notebook runner stopped ({stopped}) while running {where}{why}",
}


def run_message(result: RunResult, *, partial_notebook: str | None = None) -> str:
    """``result``'s judgement in one line: what happened, in which cell, and where the partial notebook is
    (``partial_notebook``: the name to show for it instead of its path, e.g. the copy the grader keeps)."""
    path = partial_notebook or result.output_notebook
    if result.status == "ok":
        return f"ran in {result.seconds:.1f} s: {result.output_notebook}"
    d = dict(result.detail)
    where = f"cell {result.cell}" + (f" (id {result.cell_id})" if result.cell_id else "") if result.cell else "a cell"
    rc = d.get("exit")
    words = {**d, "where": where, "exception": result.exception, "why": f" ({d['stderr']})" if d.get("stderr") else "",
             "limit": f" (limit {d['memory_mb']} MB)" if d.get("memory_mb") is not None else "",
             "stopped": f"signal {-rc}" if isinstance(rc, int) and rc < 0 else f"exit status {rc}"}
    text = _MESSAGES.get(str(d.get("cause")), "the run ended with status {status} while running {where}")
    return text.format(status=result.status, **words) + f"; partial notebook: {path}"
