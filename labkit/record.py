"""``record(name, value)``: the contract between a lab and the grader.

Each recorded result is shown in the notebook as a display output with the
mimetype ``application/vnd.labkit.result+json`` (so an executed notebook
carries its own results) and mirrored into ``results.json`` in the lab's
output directory (so tools need not parse notebooks). Values must be JSON:
NumPy/torch scalars and arrays, tuples and paths are converted; anything else
is refused with a message saying what to pass instead.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any, Callable

from labkit.atomic import write_text
from labkit.config import LabkitError

MIMETYPE = "application/vnd.labkit.result+json"
RESULTS_FILE = "results.json"
SETUP_RECORDS = ("run_info", "settings")  # what labkit.start_lab records by itself, before any of the lab's work
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")

log = logging.getLogger(__name__)

_results_dir: Path | None = None
# Called after each record(name, stored value), by key (registering a key again replaces its listener). The
# tooling layer listens here (labkit.selfcheck) so this base module never imports it.
_listeners: dict[str, Callable[[str, Any], None]] = {}


def add_listener(key: str, fn: Callable[[str, Any], None]) -> None:
    """Call ``fn(name, value)`` after every :func:`record` from now on (replacing the listener of ``key``).
    A listener that raises is logged and ignored: recording a result never fails because of one."""
    _listeners[key] = fn


def remove_listener(key: str) -> None:
    """Stop calling the listener registered under ``key`` (nothing happens when there is none)."""
    _listeners.pop(key, None)


def set_results_dir(path: str | os.PathLike[str] | None, *, reset: bool = True) -> Path | None:
    """Mirror recorded results into ``path/results.json`` from now on.

    ``reset`` starts a fresh file so a rerun never mixes with stale results.
    ``None`` stops mirroring (results are still displayed).
    """
    global _results_dir
    if path is None:
        _results_dir = None
        return None
    directory = Path(path).expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    _results_dir = directory
    if reset:
        _write_atomic(directory / RESULTS_FILE, {})
    return directory


def results_path() -> Path | None:
    """Where results are mirrored, or None when no output directory is set."""
    return _results_dir / RESULTS_FILE if _results_dir else None


def to_jsonable(value: Any, where: str = "value") -> Any:
    """Convert a result to plain JSON types, or raise LabkitError naming the part
    that cannot be stored. NaN/inf become None (JSON has no NaN)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool)):
                raise LabkitError(f"record(): {where} has a key of type {type(key).__name__}; JSON keys must be strings.")
            out[str(key)] = to_jsonable(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    # NumPy / torch scalars and arrays, pandas objects: all expose tolist()/item()
    # without importing those libraries here.
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        return to_jsonable(value.to_dict(orient="records"), where)
    if hasattr(value, "tolist"):
        return to_jsonable(value.tolist(), where)
    if hasattr(value, "item"):
        return to_jsonable(value.item(), where)
    raise LabkitError(
        f"record(): {where} is a {type(value).__name__}, which cannot be stored as JSON. "
        "Record numbers, strings, lists or dicts of them (e.g. float(x) or a dict of scores)."
    )


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a results.json (or the one inside a directory)."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_FILE
    with open(p, encoding="utf-8") as fh:
        return json.load(fh)


def record(name: str, value: Any) -> None:
    """Store one gradeable result (returns nothing, so a cell that ends with it
    does not show the value twice).

    Example: ``record("rouge_by_strategy", {"zero_shot": {"rouge1": 0.31}})``.
    Recording the same name twice keeps the last value.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise LabkitError(
            f"record(): the name must be a short identifier like 'rouge' or 'exercise_1', got {name!r}."
        )
    stored = to_jsonable(value, name)
    path = results_path()
    if path is not None:
        current = load_results(path) if path.exists() else {}
        current[name] = stored
        _write_atomic(path, current)
    _display(name, stored)
    for key, listener in list(_listeners.items()):
        try:
            listener(name, stored)
        except Exception:  # a listener's failure is its own business, never the learner's cell
            log.debug("record listener %s failed", key, exc_info=True)


def _display(name: str, stored: Any) -> None:
    text = json.dumps(stored)
    preview = text if len(text) <= 200 else text[:197] + "..."
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python without IPython: logging is enough
        log.info("recorded %s = %s", name, preview)
        return
    if get_ipython() is None:
        log.info("recorded %s = %s", name, preview)
        return
    display({MIMETYPE: {"name": name, "value": stored}, "text/plain": f"recorded {name}: {preview}"}, raw=True)


def results_from_notebook(nb: Any) -> dict[str, Any]:
    """Collect recorded results from an executed notebook (nbformat node or dict),
    last value per name wins, in cell order."""
    found: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            payload = (output.get("data") or {}).get(MIMETYPE)
            if isinstance(payload, dict) and "name" in payload:
                found[payload["name"]] = payload.get("value")
    return found
