"""Headless execution of lab notebooks with papermill: :func:`execute`, the runner's one entry point.

:func:`execute` validates the parameters against the notebook's ``parameters`` cell **before** a kernel starts
(:mod:`labkit.run_params`), runs papermill in a child process (:mod:`labkit.run_child` starts and watches it,
:mod:`labkit.run_engine` is the child) so a per-lab wall-clock timeout can kill the kernel and everything it
started, and returns a :class:`~labkit.run_outcome.RunResult` (:mod:`labkit.run_outcome` judges how the run
ended): where the executed notebook and its results are, how long it took, and on failure the cell number,
the exception and the path of the partial notebook. The grader runs the same function inside a
:class:`labkit.sandbox.Sandbox`.

Layout of a run: ``OUT/<lab>/<notebook name>.ipynb``, ``OUT/<lab>/results.json``
and the lab's artifacts beside them (the lab gets ``output_dir=OUT/<lab>``).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from labkit import labs
from labkit.config import DEFAULT_PROFILE, LabkitError
from labkit.notebooks import read_notebook
from labkit.run_child import StatusPipe, stderr_tail
from labkit.run_child import run_child as _run_child  # looked up here at each run: tests replace it
from labkit.run_outcome import RunResult, classify
from labkit.run_params import lab_name, run_parameters
# the runner's public names that live in its parts, for callers of labkit.run

log = logging.getLogger(__name__)

CELL_TIMEOUT_S = 1800  # seconds a cell may run, unless told otherwise (`labkit run --cell-timeout`)
CHILD_MODULE = "labkit.run_engine"


def execute(
    notebook: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    parameters: dict[str, Any] | None = None,
    *,
    profile: str | None = DEFAULT_PROFILE,
    cell_timeout: float | None = CELL_TIMEOUT_S,
    timeout: float | None = None,
    kernel_name: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    lab: str | None = None,
    from_cli: bool = False,
    sandbox: Any | None = None,
    max_output_mb: float | None = None,
    log_output: bool = False,
) -> RunResult:
    """Execute ``notebook`` with papermill into ``output_dir/<lab>/`` and return a RunResult.

    Parameters are validated against the parameters cell first (LabkitError,
    no kernel started). ``profile`` and ``output_dir`` are passed to the lab when
    its parameters cell declares them. ``cell_timeout`` bounds each cell,
    ``timeout`` the whole run (the kernel and its children are killed).
    ``sandbox`` (a labkit.sandbox.Sandbox) wraps the child process for untrusted
    notebooks. A failing run never raises: inspect ``result.status``/``message``.
    """
    nb_path = Path(notebook).resolve()
    nb = read_notebook(nb_path)
    lab = lab or lab_name(nb_path)
    lab_dir = Path(output_dir).resolve() / lab
    params = run_parameters(nb_path, nb, lab, dict(parameters or {}), profile=profile, lab_dir=lab_dir,
                            from_cli=from_cli)
    lab_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult(lab=lab, notebook=nb_path, output_notebook=lab_dir / nb_path.name, output_dir=lab_dir)
    child_spec = {
        "input": str(nb_path), "output": str(result.output_notebook), "parameters": params,
        "kernel_name": kernel_name, "cell_timeout": cell_timeout, "cwd": str(Path(cwd or nb_path.parent).resolve()),
        "max_output_bytes": int(max_output_mb * 2**20) if max_output_mb else None, "log_output": log_output,
    }
    _launch(result, child_spec, nb, timeout=timeout, sandbox=sandbox, log_output=log_output)
    result.results = _recorded_results(result)
    return result


def _launch(result: RunResult, child_spec: dict[str, Any], source_nb: Any, *, timeout: float | None,
            sandbox: Any | None, log_output: bool) -> None:
    """Run the child described by ``child_spec`` (in ``sandbox`` when given) and judge how it ended."""
    with tempfile.TemporaryDirectory(prefix="labkit-run-") as tmp:
        status = StatusPipe()
        spec_file = Path(sandbox.scratch) / ".labkit-run-spec.json" if sandbox is not None else Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps({**child_spec, "status_fd": status.write_fd}))
        argv = [sys.executable, "-m", CHILD_MODULE, "--child", str(spec_file)]
        env = sandbox.environment() if sandbox is not None else None
        if sandbox is not None:
            argv = sandbox.command(argv)
        log.info("executing %s → %s", result.notebook.name, result.output_notebook)
        t0 = time.monotonic()
        runner_log = Path(tmp) / "runner.log"
        report = _run_child(argv, env=env, timeout=timeout, sandbox=sandbox, log_output=log_output,
                            log_path=runner_log, status=status)
        report.stderr_tail = stderr_tail(runner_log)  # type: ignore[attr-defined]
        result.seconds = round(time.monotonic() - t0, 2)
        result.peak_rss_mb = round(report.peak_rss_mb, 1)
        classify(result, status.result(), report, timeout=timeout, sandbox=sandbox, source_nb=source_nb)


def _recorded_results(result: RunResult) -> dict[str, Any]:
    """What the run recorded: results.json, else the executed notebook's recorded outputs ({} when neither)."""
    if not result.output_notebook.is_file():
        return {}
    try:
        from labkit.record import load_results, results_from_notebook
        rj = result.output_dir / "results.json"
        return load_results(rj) if rj.is_file() else results_from_notebook(read_notebook(result.output_notebook))
    except (LabkitError, OSError, ValueError):
        return {}


def headline(lab: str, results: dict[str, Any]) -> dict[str, Any]:
    """A few headline numbers of a lab's recorded results (for the run summary table): the registry's
    pick for the lab, else its first three numbers."""
    entry = labs.find(lab)
    out = entry.headline(results) if entry is not None and entry.headline is not None else {}
    if not out:
        scalars = {k: v for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        out.update(dict(list(scalars.items())[:3]))
    return out
