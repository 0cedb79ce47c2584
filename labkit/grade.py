"""Batch grading of submitted notebooks: sandboxed execution, rubric checks, reports.

``grade_batch`` finds the submissions (a notebook, or a folder holding one),
and grades each in its own grader process (``python -m labkit.grade --one``)
on a local thread pool or a Dask cluster (same function either way). A
grader process copies the submission's folder to a scratch folder, executes
it there with :func:`labkit.run.execute` inside a
:class:`labkit.sandbox.Sandbox`, runs the rubric's checks against the recorded
results *and* the artifacts (outside the sandbox: the rubric and hidden data
never enter the scratch folder), and writes per submission
``<id>/feedback.md``, ``<id>/results.json`` (Gradescope format),
``<id>/grade.json`` and the executed notebook. The batch then writes
``grades.csv``, ``summary.md``, ``check_pass_rates.csv`` and
``score_histogram.png``.

Every submission ends with a score and, when something went wrong, a stated
reason; one bad notebook never stops the batch, and a crash of a grader
process is itself reported as a reason.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labkit.config import LabkitError, data_dir, labkit_home
from labkit.sandbox import Limits, Sandbox

log = logging.getLogger(__name__)

GRADE_FILE = "grade.json"
MAX_FOLDER_MB = 200          # a submission folder larger than this is not copied
MAX_KEPT_NOTEBOOK_MB = 20    # executed notebooks larger than this are not kept in the grades folder
CSV_COLUMNS = ["id", "score", "max", "status", "reason"]


@dataclass
class Submission:
    """One student's submission: its id, notebook and folder (None notebook + problem when unusable)."""

    id: str
    notebook: str | None
    folder: str
    problem: str = ""
    single: bool = False      # a bare notebook (copied alone), not a folder


@dataclass
class GradeOptions:
    """Everything a grader process needs (picklable: it travels to Dask workers)."""

    lab: str
    out: str
    rubric: str | None = None
    timeout: float = 600.0
    parameters: dict[str, Any] = field(default_factory=dict)
    profile: str = "offline"
    isolation: str = "auto"
    limits: Limits = field(default_factory=Limits)
    force: bool = False
    check_timeout: float = 600.0
    keep_scratch: bool = False


# ---------------------------------------------------------------- discovery

def _safe_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "submission"


def discover(submissions_dir: str | os.PathLike[str]) -> list[Submission]:
    """Submissions in a folder: each top-level .ipynb, and each sub-folder with exactly one notebook."""
    root = Path(submissions_dir)
    if not root.is_dir():
        raise LabkitError(f"Submissions folder {root} does not exist (expected a folder of notebooks or of folders).")
    subs: list[Submission] = []
    seen: set[str] = set()
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            sid, nb, folder, problem, single = _safe_id(entry.stem), str(entry), str(root), "", True
        elif entry.is_dir():
            nbs = sorted(p for p in entry.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            sid, folder, single = _safe_id(entry.name), str(entry), False
            if len(nbs) == 1:
                nb, problem = str(nbs[0]), ""
            elif not nbs:
                nb, problem = None, "no notebook in the submission folder"
            else:
                nb, problem = None, f"{len(nbs)} notebooks in the submission folder (expected one): " + \
                    ", ".join(p.name for p in nbs[:4])
        else:
            continue
        while sid in seen:
            sid += "_"
        seen.add(sid)
        subs.append(Submission(id=sid, notebook=nb, folder=folder, problem=problem, single=single))
    return subs


# ---------------------------------------------------------------- one submission (grader process)

def _copy_submission(sub: Submission, scratch: Path) -> Path:
    """Copy the submission (its notebook alone, or its whole folder) into scratch; return the notebook's copy."""
    nb = Path(sub.notebook)  # type: ignore[arg-type]
    if sub.single:
        target = scratch / nb.name
        shutil.copyfile(nb, target)
        return target
    size = sum(p.stat().st_size for p in Path(sub.folder).rglob("*") if p.is_file() and not p.is_symlink())
    if size > MAX_FOLDER_MB * 2**20:
        raise LabkitError(f"submission folder is {size / 2**20:.0f} MB, more than the {MAX_FOLDER_MB} MB limit")
    shutil.copytree(sub.folder, scratch, symlinks=True, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "outputs"))
    # a symlink could point the sandboxed run (or the checks) at files outside the submission
    for p in list(scratch.rglob("*")):
        if p.is_symlink():
            p.unlink()
    return scratch / nb.relative_to(sub.folder)


def _sandbox_labkit_home(sandbox: Sandbox, scratch: Path) -> Path:
    """A LABKIT_HOME for the submission: the fixtures read-only (bind-mounted by bwrap, else a symlink) and a
    private copy of the derived-model cache (labs take file locks and may add entries there)."""
    home = scratch / ".home" / "labkit"
    real = labkit_home()
    home.mkdir(parents=True, exist_ok=True)
    if (real / "fixtures").is_dir():
        if sandbox.isolation == "bwrap":
            (home / "fixtures").mkdir(exist_ok=True)
            sandbox.binds.append((real / "fixtures", home / "fixtures"))
        else:
            (home / "fixtures").symlink_to(real / "fixtures")
    cache = real / "cache"
    if cache.is_dir():
        size = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
        if size <= MAX_FOLDER_MB * 2**20:
            shutil.copytree(cache, home / "cache", ignore=shutil.ignore_patterns("*.lock"), dirs_exist_ok=True)
    return home


def _effective_parameters(nb: Any, injected: dict[str, Any]) -> dict[str, Any]:
    from labkit.rubrics.checks import literal
    from labkit.run import inspect_parameters
    params: dict[str, Any] = {}
    try:
        import nbformat
        with tempfile.NamedTemporaryFile("w", suffix=".ipynb", delete=False) as fh:
            nbformat.write(nb, fh)
        for name, info in inspect_parameters(fh.name).items():
            params[name] = literal(info.get("default"))
    except Exception:  # defaults are a convenience for the checks, never a reason to fail
        pass
    finally:
        try:
            os.unlink(fh.name)
        except (OSError, UnboundLocalError):
            pass
    params.update(injected)
    return params


MAX_READ_MB = 64  # results.json / executed notebook larger than this are not parsed by the grader


def _defuse_scratch(scratch: Path) -> list[str]:
    """Remove symlinks the submission left in its scratch folder: the checks run outside the sandbox and
    must never follow a link to the grader's files."""
    removed = []
    for p in list(scratch.rglob("*")):
        if p.is_symlink():
            removed.append(str(p.relative_to(scratch)))
            p.unlink()
    return [f"symbolic links removed before checking: {', '.join(removed[:5])}"] if removed else []


def _small(path: Path, mb: float = MAX_READ_MB) -> bool:
    try:
        return path.is_file() and path.stat().st_size <= mb * 2**20
    except OSError:
        return False


def _results_of(run: Any) -> tuple[dict[str, Any], list[str]]:
    """Recorded results: results.json (mirrored by labkit.record) checked against the notebook's outputs."""
    from labkit.record import results_from_notebook
    from labkit.run import read_notebook
    notes: list[str] = []
    from_nb: dict[str, Any] = {}
    if _small(run.output_notebook):
        try:
            from_nb = results_from_notebook(read_notebook(run.output_notebook))
        except LabkitError:
            pass
    elif run.output_notebook.is_file():
        notes.append(f"the executed notebook is larger than {MAX_READ_MB} MB and was not read")
    from_json: dict[str, Any] = {}
    rj = run.output_dir / "results.json"
    if _small(rj):
        try:
            data = json.loads(rj.read_text(encoding="utf-8"))
            from_json = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            notes.append("results.json is not valid JSON; using the notebook's recorded outputs")
    differ = sorted(k for k in set(from_json) & set(from_nb) if from_json[k] != from_nb[k])
    if differ:
        notes.append("results.json differs from the results recorded in the notebook for: " + ", ".join(differ[:6]))
    merged = {**from_json, **from_nb}
    return merged, notes


def _release_lines(nb: Any) -> list[str]:
    """Lines from labkit.release about altered setup cells / older releases (when that module exists)."""
    try:
        from labkit.release import describe_submission
    except ImportError:
        return []
    try:
        return [str(line) for line in (describe_submission(nb) or [])]
    except Exception as err:  # the release helper's view is advisory
        log.debug("describe_submission failed", exc_info=True)
        return [f"(could not compare with the release: {type(err).__name__})"]


def grade_one(sub: Submission, opts: GradeOptions) -> dict[str, Any]:
    """Grade one submission in this process and write its files; returns the grade record."""
    from labkit import run as runmod
    from labkit.rubrics import load_rubric
    from labkit.rubrics.checks import GradeContext

    t0 = time.monotonic()
    rubric = load_rubric(opts.rubric or opts.lab)
    out_dir = Path(opts.out) / sub.id
    out_dir.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"id": sub.id, "score": 0.0, "max": rubric.max_points, "status": "error", "reason": "",
                              "notebook": sub.notebook, "checks": [], "isolation": "", "notes": [],
                              "run_seconds": None, "grading_seconds": None, "lab": opts.lab}
    scratch: Path | None = None
    try:
        if sub.problem:
            record["reason"] = sub.problem
            return record
        try:
            source_nb = runmod.read_notebook(sub.notebook)  # type: ignore[arg-type]
        except LabkitError as err:
            record["reason"] = str(err).replace(str(Path(sub.notebook).parent) + "/", "")
            return record
        if not runmod.has_parameters_cell(source_nb):
            record["reason"] = ("missing parameters cell: no code cell is tagged 'parameters' (it was deleted or "
                                "untagged); restore it from the released notebook")
            return record
        record["notes"] += _release_lines(source_nb)
        scratch = Path(tempfile.mkdtemp(prefix=f"labkit-grade-{sub.id}-"))
        os.chmod(scratch, 0o755)
        try:
            nb_copy = _copy_submission(sub, scratch)
        except (LabkitError, OSError) as err:
            record["reason"] = f"could not copy the submission: {err}"
            return record
        from labkit.rubrics import RUBRIC_DIR
        # the default rubrics, the rubric in use and the hidden data are masked inside the sandbox
        hidden = [str(RUBRIC_DIR)] + ([str(rubric.path)] if rubric.path else [])
        hidden += [str(data_dir().parent / p) if not os.path.isabs(p) else p for p in rubric.hidden_paths]
        from labkit.config import repo_root
        sandbox = Sandbox(scratch, isolation=opts.isolation, limits=opts.limits,
                          readable=[repo_root() / "labkit", data_dir()], hidden=hidden)
        sandbox.env_extra["LABKIT_HOME"] = str(_sandbox_labkit_home(sandbox, scratch))
        record["isolation"] = sandbox.describe()
        params = {**rubric.parameters, **opts.parameters}
        try:
            result = runmod.execute(nb_copy, scratch / "outputs", params, profile=opts.profile,
                                    cell_timeout=opts.timeout, timeout=opts.timeout, cwd=nb_copy.parent, lab=opts.lab,
                                    from_cli=True, sandbox=sandbox, max_output_mb=opts.limits.output_mb)
        except LabkitError as err:
            record["reason"] = f"the notebook's parameters cell does not fit the grader: {err}"
            return record
        record["run_seconds"] = result.seconds
        record["run_status"] = result.status
        record["notes"] += _defuse_scratch(scratch)
        results, notes = _results_of(result)
        record["notes"] += notes
        if result.output_truncated:
            record["notes"].append(f"output truncated at {opts.limits.output_mb:g} MB")
        lab_in_run = (results.get("run_info") or {}).get("lab") if isinstance(results.get("run_info"), dict) else None
        if lab_in_run and lab_in_run != opts.lab:
            record["notes"].append(f"the notebook recorded lab {lab_in_run!r}, graded as {opts.lab}")
        ctx = GradeContext(lab=opts.lab, status=result.status, results=results, artifacts=result.output_dir,
                           params=_effective_parameters(source_nb, {**params, "output_dir": str(result.output_dir)}),
                           profile=opts.profile, run_message=_short(result.message, scratch))
        record["checks"], score, forged = run_checks(rubric, ctx, scratch)
        record["score"] = round(score, 3)
        if result.status != "ok":
            record["status"], record["reason"] = result.status, _short(result.message, scratch)
        elif not results or set(results) <= {"run_info"}:
            record["status"], record["reason"] = "no_results", "no results recorded (labkit.record was never called)"
        elif forged:
            record["status"] = "flagged"
            record["reason"] = "forged result detected: recorded values contradict the artifacts in " + ", ".join(forged)
        else:
            record["status"] = "graded"
        _keep_notebook(result.output_notebook, out_dir)
        return record
    except Exception as err:  # the grader itself must not crash: say what happened
        log.exception("grading %s failed", sub.id)
        record["status"], record["reason"] = "grader_error", f"grader error: {type(err).__name__}: {err}"
        return record
    finally:
        record["grading_seconds"] = round(time.monotonic() - t0, 2)
        if scratch is not None and not opts.keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        write_submission_files(record, out_dir)


def run_checks(rubric: Any, ctx: Any, scratch: Path | None = None) -> tuple[list[dict[str, Any]], float, list[str]]:
    """Run every check of a rubric on a GradeContext: (check records, score, names of forged checks).

    A check that raises earns 0 with the error as its detail; it never stops the others."""
    from labkit.rubrics import Outcome
    from labkit.rubrics import CHECKS

    checks, score, forged = [], 0.0, []
    for spec in rubric.checks:
        c0 = time.monotonic()
        try:
            outcome = CHECKS[spec.type](ctx, **spec.params)
        except Exception as err:  # one broken check never stops the submission
            log.debug("check %s failed", spec.name, exc_info=True)
            outcome = Outcome.fail(f"could not be checked ({type(err).__name__}: {_short(str(err), scratch)[:200]})")
        frac = min(1.0, max(0.0, float(outcome.fraction)))
        points = round(spec.points * frac, 3)
        score += points
        if outcome.forged:
            forged.append(spec.name)
        passed = frac >= 1.0
        message = (spec.pass_msg if passed else spec.fail_msg) or ""
        if spec.type == "exercise" and outcome.detail.endswith("was not answered"):
            message = ""
        checks.append({"name": spec.name, "points": points, "max": spec.points, "passed": passed,
                       "message": message, "detail": _short(outcome.detail, scratch),
                       "forged": outcome.forged, "seconds": round(time.monotonic() - c0, 2)})
    return checks, round(score, 3), forged


def grade_run(result: Any, *, rubric: str | None = None, parameters: dict[str, Any] | None = None,
              profile: str = "offline") -> dict[str, Any]:
    """Grade an already executed lab (a labkit.run.RunResult) with its rubric, without re-executing it.

    Trusted use only (``labkit run --grade`` / ``make labs``): no sandbox is involved."""
    from labkit.rubrics import load_rubric
    from labkit.rubrics.checks import GradeContext
    from labkit import run as runmod

    rub = load_rubric(rubric or result.lab)
    results, notes = _results_of(result)
    source = runmod.read_notebook(result.notebook)
    ctx = GradeContext(lab=result.lab, status=result.status, results=results, artifacts=result.output_dir,
                       params=_effective_parameters(source, {**(parameters or {}), "output_dir": str(result.output_dir)}),
                       profile=profile, run_message=result.message)
    checks, score, forged = run_checks(rub, ctx)
    status = result.status if result.status != "ok" else ("flagged" if forged else "graded")
    return {"id": result.lab, "score": score, "max": rub.max_points, "status": status,
            "reason": result.message if result.status != "ok" else (f"forged: {', '.join(forged)}" if forged else ""),
            "checks": checks, "notes": notes, "isolation": "none (trusted run)", "lab": result.lab,
            "run_seconds": result.seconds or None, "grading_seconds": round(sum(c["seconds"] for c in checks), 2)}


def executed_lab(out: str | os.PathLike[str], lab: str) -> Any:
    """The RunResult of a lab already executed by ``labkit run`` into ``out`` (status read from the notebook)."""
    from labkit import run as runmod
    from labkit.config import repo_root
    src = repo_root() / "labs" / runmod.LAB_NOTEBOOKS[lab]
    lab_dir = Path(out).resolve() / lab
    result = runmod.RunResult(lab=lab, notebook=src, output_notebook=lab_dir / src.name, output_dir=lab_dir)
    if not result.output_notebook.is_file():
        result.status, result.message = "missing", f"{result.output_notebook} does not exist: run `labkit run {lab}` first"
        return result
    nb = runmod.read_notebook(result.output_notebook)
    states = [c.get("metadata", {}).get("papermill", {}).get("status") for c in nb.cells]
    if "failed" in states or "running" in states or "pending" in states:
        result.status, result.message = "error", f"{result.output_notebook} did not run to the end"
    else:
        result.status, result.message = "ok", f"executed: {result.output_notebook}"
    return result


def _short(text: str, scratch: Path | None) -> str:
    """Messages without the scratch folder's absolute path (it means nothing to a student)."""
    return text.replace(f"{scratch}/", "").replace(str(scratch), ".") if scratch else text


def _keep_notebook(path: Path, out_dir: Path) -> None:
    try:
        if path.is_file() and path.stat().st_size <= MAX_KEPT_NOTEBOOK_MB * 2**20:
            shutil.copyfile(path, out_dir / "executed.ipynb")
    except OSError:
        pass


# ---------------------------------------------------------------- per-submission files

def write_submission_files(record: dict[str, Any], out_dir: Path) -> None:
    """feedback.md, Gradescope results.json and grade.json for one graded submission."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tests = [{"name": c["name"], "score": c["points"], "max_score": c["max"],
              "output": " ".join(x for x in (c["message"], c["detail"]) if x)} for c in record["checks"]]
    gradescope = {"score": record["score"], "execution_time": record.get("grading_seconds"),
                  "output": record["reason"] or "graded", "tests": tests,
                  "extra_data": {"status": record["status"], "isolation": record["isolation"]}}
    (out_dir / "results.json").write_text(json.dumps(gradescope, indent=2) + "\n", encoding="utf-8")
    (out_dir / "feedback.md").write_text(feedback_markdown(record), encoding="utf-8")
    (out_dir / GRADE_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")


def feedback_markdown(record: dict[str, Any]) -> str:
    """The student's feedback: score, each check with points and message, runtime, isolation."""
    lines = [f"# Feedback for {record['id']} ({record.get('lab', '')})", "",
             f"**Score: {record['score']:g} / {record['max']:g}** — status: {record['status']}"]
    if record["reason"]:
        lines += ["", f"Reason: {record['reason']}"]
    lines += ["", "| check | points | feedback |", "|---|---|---|"]
    for c in record["checks"]:
        msg = " ".join(x for x in (c["message"], c["detail"]) if x).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {'✅' if c['passed'] else '❌'} {c['name']} | {c['points']:g} / {c['max']:g} | {msg} |")
    if record["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in record["notes"]]
    run = record.get("run_seconds")
    lines += ["", f"Runtime: notebook {run if run is not None else '-'} s, grading {record.get('grading_seconds')} s.",
              f"Isolation: {record['isolation'] or 'not executed'}.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- batch (driver side)

def grade_submission(sub: Submission, opts: GradeOptions) -> dict[str, Any]:
    """Grade one submission in a fresh grader process (this is what pool threads and Dask workers run).

    Reuses an existing grade unless ``opts.force``. A grader process that dies
    or hangs becomes a 'grader_error' record, never an exception.
    """
    out_dir = Path(opts.out) / sub.id
    done = out_dir / GRADE_FILE
    if done.is_file() and not opts.force:
        try:
            rec = json.loads(done.read_text(encoding="utf-8"))
            rec["skipped"] = True
            return rec
        except (OSError, ValueError):
            pass
    out_dir.mkdir(parents=True, exist_ok=True)
    done.unlink(missing_ok=True)
    spec = out_dir / ".grade-spec.json"
    spec.write_text(json.dumps({"submission": asdict(sub), "options": {**asdict(opts)}}, default=str))
    limit = opts.timeout + opts.check_timeout + 60
    try:
        proc = subprocess.run([sys.executable, "-m", "labkit.grade", "--one", str(spec)], capture_output=True,
                              text=True, timeout=limit, stdin=subprocess.DEVNULL)
        err_tail = (proc.stderr or "").strip().splitlines()[-1:] if proc.returncode else []
    except subprocess.TimeoutExpired:
        err_tail = [f"the grader process ran longer than {limit:g} s"]
    finally:
        spec.unlink(missing_ok=True)
    if done.is_file():
        try:
            return json.loads(done.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    rec = {"id": sub.id, "score": 0.0, "max": 0.0, "status": "grader_error", "checks": [], "notes": [],
           "reason": "grader error: " + (err_tail[0] if err_tail else "the grader process ended without a grade"),
           "isolation": "", "lab": opts.lab, "notebook": sub.notebook}
    try:
        from labkit.rubrics import load_rubric
        rec["max"] = load_rubric(opts.rubric or opts.lab).max_points
    except Exception:
        pass
    write_submission_files(rec, out_dir)
    return rec


def _executor(workers: int, scheduler: str | None) -> tuple[Executor, Any]:
    if scheduler:
        from distributed import Client
        client = Client(scheduler)
        return client.get_executor(pure=False), client
    return ThreadPoolExecutor(max_workers=max(1, workers)), None


def grade_batch(submissions_dir: str | os.PathLike[str], lab: str, out: str | os.PathLike[str], *,
                rubric: str | None = None, timeout: float = 600.0, workers: int = 2, scheduler: str | None = None,
                force: bool = False, parameters: dict[str, Any] | None = None, profile: str = "offline",
                isolation: str = "auto", limits: Limits | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Grade every submission of a folder; write grades.csv and the class summary; return the records."""
    from labkit.rubrics import load_rubric
    load_rubric(rubric or lab)  # fail fast on a bad rubric, before any work
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    subs = discover(submissions_dir)
    if not subs:
        raise LabkitError(f"No submissions in {submissions_dir}: expected .ipynb files or folders holding one.")
    opts = GradeOptions(lab=lab, out=str(out), rubric=str(Path(rubric).resolve()) if rubric else None,
                        timeout=timeout, parameters=dict(parameters or {}), profile=profile, isolation=isolation,
                        limits=limits or Limits(), force=force)
    executor, client = _executor(workers, scheduler)
    records: list[dict[str, Any]] = []
    try:
        from tqdm.auto import tqdm
        futures = {executor.submit(grade_submission, s, opts): s for s in subs}
        bar = tqdm(total=len(futures), desc=f"grading {lab}", disable=not progress)
        for fut in as_completed(futures):
            sub = futures[fut]
            try:
                rec = fut.result()
            except Exception as err:  # a lost worker: the submission still gets a reason
                rec = {"id": sub.id, "score": 0.0, "max": 0.0, "status": "grader_error",
                       "reason": f"grader error: {type(err).__name__}: {err}", "checks": [], "notes": [],
                       "isolation": "", "lab": lab}
                write_submission_files(rec, out / sub.id)
            records.append(rec)
            bar.update(1)
        bar.close()
    finally:
        executor.shutdown(wait=True)
        if client is not None:
            client.close()
    records.sort(key=lambda r: r["id"])
    write_class_reports(records, out)
    return records


def write_class_reports(records: list[dict[str, Any]], out: Path) -> None:
    """grades.csv, check_pass_rates.csv, score_histogram.png and summary.md."""
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in records:
            w.writerow({**r, "reason": (r.get("reason") or "").replace("\n", " ")})
    rates: dict[str, list[int]] = {}
    for r in records:
        for c in r.get("checks", []):
            rates.setdefault(c["name"], []).append(1 if c["passed"] else 0)
    with open(out / "check_pass_rates.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["check", "passed", "graded", "pass_rate"])
        for name, vals in rates.items():
            w.writerow([name, sum(vals), len(vals), round(sum(vals) / len(vals), 3)])
    _histogram(records, out / "score_histogram.png")
    maxes = [r["max"] for r in records if r.get("max")]
    lines = ["# Class summary", "", f"{len(records)} submissions, max score {max(maxes) if maxes else 0:g}.", "",
             "| id | score | status | reason |", "|---|---|---|---|"]
    lines += [f"| {r['id']} | {r['score']:g} / {r['max']:g} | {r['status']} | {(r.get('reason') or '')[:120]} |"
              for r in records]
    lines += ["", "## Pass rate per check", "", "| check | pass rate |", "|---|---|"]
    lines += [f"| {n} | {sum(v)}/{len(v)} |" for n, v in rates.items()]
    lines += ["", "![score histogram](score_histogram.png)", ""]
    (out / "summary.md").write_text("\n".join(lines), encoding="utf-8")


def _histogram(records: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    scores = [r["score"] for r in records]
    top = max([r.get("max") or 0 for r in records] + [1])
    ax.hist(scores, bins=min(20, max(5, len(scores))), range=(0, top), color="#4C72B0", edgecolor="white")
    ax.set_xlabel("score")
    ax.set_ylabel("submissions")
    from matplotlib.ticker import MaxNLocator
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Scores ({len(scores)} submissions)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def format_table(records: list[dict[str, Any]]) -> str:
    """The grades as a text table (pandas)."""
    import pandas as pd
    df = pd.DataFrame([{k: r.get(k) for k in CSV_COLUMNS} for r in records])
    df["reason"] = df["reason"].fillna("").str.slice(0, 80)
    return df.to_string(index=False)


def _one_main(spec_path: str) -> int:
    from labkit.run import skip_slow_optional_imports
    skip_slow_optional_imports()
    spec = json.loads(Path(spec_path).read_text())
    opts = spec["options"]
    opts["limits"] = Limits(**opts["limits"])
    grade_one(Submission(**spec["submission"]), GradeOptions(**opts))
    return 0


if __name__ == "__main__":  # pragma: no cover - the grader process
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        sys.exit(_one_main(sys.argv[2]))
    print("labkit.grade is a library; use `labkit grade`.", file=sys.stderr)
    sys.exit(2)
