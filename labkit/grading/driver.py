"""The batch driver: one grader process per submission, on a thread pool or a Dask cluster."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any

from labkit.config import DEFAULT_PROFILE, LabkitError
from labkit.contain import Containment, new_run_id
from labkit.grading.class_reports import write_class_reports
from labkit.grading.discover import Submission, discover
from labkit.grading.manual import carry_over
from labkit.grading.reports import GRADE_FILE, write_submission_files
from labkit.grading.worker import GRADE_TIMEOUT_S, GradeOptions
from labkit.integrity import IntegrityGuard, TamperedError, mark_stopped, protected_roots
from labkit.run_child import why_stopped
from labkit.sandbox import Limits, resolve_isolation

WORKER_MODULE = "labkit.grading.worker"
log = logging.getLogger(__name__)


def _lost(sub: Submission, opts: GradeOptions, reason: str) -> dict[str, Any]:
    """The record of a submission whose grader process gave no grade (written to its folder)."""
    rec = {"id": sub.id, "folder": sub.slug, "score": 0.0, "max": 0.0, "pending": 0.0, "status": "grader_error",
           "checks": [], "notes": [],
           "reason": f"grader error: {reason}", "isolation": "", "lab": opts.lab, "notebook": sub.notebook,
           "hidden_seed": opts.hidden_seed}
    try:
        from labkit.rubrics import load_rubric
        rec["max"] = load_rubric(opts.rubric or opts.lab).max_points
    except Exception:
        pass
    write_submission_files(rec, Path(opts.out) / sub.slug)
    return rec


def _previous_grade(done: Path) -> dict[str, Any] | None:
    try:
        return json.loads(done.read_text(encoding="utf-8")) if done.is_file() else None
    except (OSError, ValueError):
        return None


def grade_submission(sub: Submission, opts: GradeOptions) -> dict[str, Any]:
    """Grade one submission in a fresh grader process (this is what pool threads and Dask workers run).

    Reuses an existing grade unless ``opts.force``. A grader process that dies
    or hangs becomes a 'grader_error' record, never an exception.
    """
    out_dir = Path(opts.out) / sub.slug
    done = out_dir / GRADE_FILE
    previous = _previous_grade(done)
    if previous is not None and not opts.force:
        return {**previous, "skipped": True}
    out_dir.mkdir(parents=True, exist_ok=True)
    done.unlink(missing_ok=True)
    spec = out_dir / ".grade-spec.json"
    spec.write_text(json.dumps({"submission": asdict(sub), "options": {**asdict(opts)}}, default=str))
    limit = opts.timeout + opts.check_timeout + 60
    leftovers = Containment(new_run_id())  # tags every process of this submission; kills what a killed grader left
    env = {**os.environ, **leftovers.environment(), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        proc = subprocess.run([sys.executable, "-m", WORKER_MODULE, "--one", str(spec)], capture_output=True,
                              text=True, timeout=limit, stdin=subprocess.DEVNULL, env=env)
        err_tail = [why_stopped(proc.stderr or "")] if proc.returncode else []
    except subprocess.TimeoutExpired:
        err_tail = [f"the grader process ran longer than {limit:g} s"]
    finally:
        spec.unlink(missing_ok=True)
        left = leftovers.kill_all()
    graded = _previous_grade(done)
    if graded is not None:
        kept = carry_over(previous, graded)  # a regrade keeps a person's points for an unchanged answer
        if left:
            graded["notes"] = [*graded.get("notes", []), f"{left} process(es) of this submission outlived its "
                                                         "grader process and were killed"]
        if left or kept:
            write_submission_files(graded, out_dir)
        return graded
    return _lost(sub, opts, err_tail[0] if err_tail and err_tail[0] else "the grader process ended without a grade")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: taskset, cgroups' cpusets), else os.cpu_count()."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def local_workers(workers: int) -> int:
    """How many submissions run at once on this machine: ``workers``, but never more than its usable CPUs.

    A submission's timeout is wall-clock time, kernel start included, and the notebooks are CPU-bound: three
    runs sharing one CPU each take three times as long, so a notebook that runs in 3 s would time out at 10 s
    because of its neighbours, not its own code. Capped, every run gets a CPU and the batch takes as long."""
    cpus = usable_cpus()
    if workers > cpus:
        log.warning(f"--workers {workers} asked, but this process may use {cpus} CPU{'s' if cpus != 1 else ''}: "
                    f"grading {cpus} at a time (each submission's timeout is wall-clock time; runs sharing a CPU "
                    "would time out because of each other). Use --scheduler for more machines.")
    return max(1, min(workers, cpus))


def _executor(workers: int, scheduler: str | None) -> tuple[Executor, Any]:
    if scheduler:
        from distributed import Client
        client = Client(scheduler)
        return client.get_executor(pure=False), client
    return ThreadPoolExecutor(max_workers=local_workers(workers)), None


def grade_batch(submissions_dir: str | os.PathLike[str], lab: str, out: str | os.PathLike[str], *,
                rubric: str | None = None, timeout: float = GRADE_TIMEOUT_S, workers: int = 2,
                scheduler: str | None = None, force: bool = False, parameters: dict[str, Any] | None = None,
                profile: str = DEFAULT_PROFILE,
                isolation: str = "auto", limits: Limits | None = None, progress: bool = True,
                hidden_seed: int | None = None) -> list[dict[str, Any]]:
    """Grade every submission of a folder; write grades.csv and the class summary; return the records.

    ``hidden_seed``: the seed of the dialogues the re-run checks generate; by default the seed of the grades
    already in ``out`` (so one class shares one set; not with ``force``), else a fresh one drawn now. It is
    recorded in each grade.json and named in summary.md, never in what students get back."""
    from tqdm.auto import tqdm

    from labkit.rubrics import load_rubric
    rub = load_rubric(rubric or lab)  # fail fast on a bad rubric, before any work
    isolation = resolve_isolation(isolation)  # auto without a working bubblewrap refuses here: nothing has run
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    _refuse_other_lab(out, lab)
    subs = discover(submissions_dir)
    if not subs:
        raise LabkitError(f"No submissions in {submissions_dir}: expected .ipynb files or folders holding one.")
    if hidden_seed is None:
        hidden_seed = None if force else _batch_seed(out)
    if hidden_seed is None:
        from labkit.rubrics.checks import draw_hidden_seed
        hidden_seed = draw_hidden_seed()
    opts = GradeOptions(lab=lab, out=str(out), rubric=str(Path(rubric).resolve()) if rubric else None,
                        timeout=timeout, parameters=dict(parameters or {}), profile=profile, isolation=isolation,
                        limits=limits or Limits(), force=force, hidden_seed=int(hidden_seed))
    guard = _integrity_guard(isolation, rub, scheduler)  # rlimits only: fingerprints before the first submission
    executor, client = _executor(workers, scheduler)
    records: list[dict[str, Any]] = []
    try:
        if guard is None:
            futures = {executor.submit(grade_submission, s, opts): s for s in subs}
        else:
            futures = {executor.submit(_guarded_submission, s, opts, guard, rub.max_points): s for s in subs}
        with tqdm(total=len(futures), desc=f"grading {lab}", disable=not progress) as bar:
            for fut in as_completed(futures):
                try:
                    records.append(fut.result())
                except Exception as err:  # a lost worker: the submission still gets a reason
                    records.append(_lost(futures[fut], opts, f"{type(err).__name__}: {err}"))
                bar.update(1)
    finally:
        executor.shutdown(wait=True)
        if client is not None:
            client.close()
        if guard is not None:
            guard.close()
    records.sort(key=lambda r: r["id"])
    write_class_reports(records, out)
    if guard is not None and guard.stopped:
        mark_stopped(out / "summary.md", guard.stopped)
        raise TamperedError(guard.stopped, records)
    return records


def _batch_seed(out: Path) -> int | None:
    """The hidden seed most grades in ``out`` were graded with (None when there are none)."""
    from collections import Counter
    seeds = Counter(rec.get("hidden_seed") for done in out.glob(f"*/{GRADE_FILE}")
                    if isinstance((rec := _previous_grade(done) or {}).get("hidden_seed"), int))
    return seeds.most_common(1)[0][0] if seeds else None


def _refuse_other_lab(out: Path, lab: str) -> None:
    """LabkitError when ``out`` already holds another lab's grades (its students' folders would mix)."""
    for done in out.glob(f"*/{GRADE_FILE}"):
        other = (_previous_grade(done) or {}).get("lab")
        if other and other != lab:
            raise LabkitError(f"{out} already holds grades of {other}; grading {lab} there would mix the two in "
                              f"each student's folder. Grade each lab into its own folder, e.g. --out "
                              f"{out.parent / lab if out.name == other else out / lab} (gradebook.csv in the "
                              "folder above them lists every lab side by side).")


# ---------------------------------------------------------------- tamper check (--isolation rlimits only)

def _integrity_guard(isolation: str, rubric: Any, scheduler: str | None) -> IntegrityGuard | None:
    """The batch's tamper check: only under rlimits (bubblewrap mounts the same files read-only)."""
    if isolation != "rlimits":
        return None
    if scheduler:
        raise LabkitError("--isolation rlimits grades on this machine only: its tamper check and process "
                          "containment watch local files and processes, not a Dask cluster's workers. Install "
                          "bubblewrap on every worker (apt-get install bubblewrap / dnf install bubblewrap) and "
                          "drop --isolation rlimits, or grade here without --scheduler.")
    return IntegrityGuard(protected_roots(rubric))


def _guarded_submission(sub: Submission, opts: GradeOptions, guard: IntegrityGuard, max_points: float
                        ) -> dict[str, Any]:
    """grade_submission, unless the batch has stopped; voided when the grader's files changed while it ran."""
    rec = guard.run(sub.id, lambda: grade_submission(sub, opts))
    if rec is None:
        return guard.not_graded(sub.id, opts.lab, max_points)
    if guard.stopped and sub.id in guard.culprits:
        rec = guard.void(rec)
        write_submission_files(rec, Path(opts.out) / sub.slug)
    return rec
