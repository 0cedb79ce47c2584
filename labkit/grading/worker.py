"""Grading one submission: the grader process (sandboxed run + checks) and the trusted path.

:func:`grade_one` is what a grader process runs (``python -m
labkit.grading.worker --one SPEC``, started by :mod:`labkit.grading.driver`):
copy the submission to a scratch folder, execute it there inside a
:class:`labkit.sandbox.Sandbox`, then run the rubric's checks outside the
sandbox. :func:`grade_run` checks a lab this process already executed
(``labkit run --grade``), with no sandbox. Both read the results and run the
checks the same way (:func:`_assess`) and derive the status with
:func:`status_of`.
"""
from __future__ import annotations

import ast
import json
import logging
import os
import shutil
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit import selfcheck
from labkit.config import DEFAULT_PROFILE, LabkitError, data_dir, labkit_home
from labkit.contain import become_subreaper
from labkit.grading.discover import Submission
from labkit.grading.reports import pending_points, write_submission_files
from labkit.sandbox import Limits, Sandbox

log = logging.getLogger(__name__)

MAX_FOLDER_MB = 200          # a submission folder larger than this is not copied
MAX_KEPT_NOTEBOOK_MB = 20    # executed notebooks larger than this are not kept in the grades folder
MAX_READ_MB = 64             # results.json / executed notebook larger than this are not parsed by the grader
MAX_NOTEBOOK_MB = 64         # a submitted notebook larger than this is refused unread (clear its outputs)
KEPT_NOTEBOOK = "executed.ipynb"  # the executed notebook, kept in the student's folder of the grades
GRADE_TIMEOUT_S = 900        # wall-clock seconds a submission's run may take, unless told otherwise (`--timeout`)
CHECK_TIMEOUT_S = 600        # what the rubric's checks of one submission may add to it


@dataclass
class GradeOptions:
    """Everything a grader process needs (picklable: it travels to Dask workers)."""

    lab: str
    out: str
    rubric: str | None = None
    timeout: float = GRADE_TIMEOUT_S
    parameters: dict[str, Any] = field(default_factory=dict)
    profile: str = DEFAULT_PROFILE
    isolation: str = "auto"
    limits: Limits = field(default_factory=Limits)
    force: bool = False
    check_timeout: float = CHECK_TIMEOUT_S
    keep_scratch: bool = False
    hidden_seed: int | None = None   # seed of the dialogues the re-run checks generate (drawn once per batch)


class _Refused(Exception):
    """The submission cannot be graded; the message is the reason the student reads."""


# ---------------------------------------------------------------- status: one rule for both paths

def status_of(run_status: str, run_message: str, results: dict[str, Any], forged: list[str]) -> tuple[str, str]:
    """(status, reason) of a graded run: the run's own failure first, then missing results, then forgery."""
    if run_status != "ok":
        return run_status, run_message
    from labkit.record import SETUP_RECORDS
    if not results or set(results) <= set(SETUP_RECORDS):
        return "no_results", "no results recorded (labkit.record was never called)"
    if forged:
        return "flagged", "forged result detected: recorded values contradict the artifacts in " + ", ".join(forged)
    return "graded", ""


# ---------------------------------------------------------------- reading a run

def literal(text: str | None) -> Any:
    """A parameter default's source text → value (None when not a literal)."""
    if text is None:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


def _cell_parameters(nb: Any) -> dict[str, Any]:
    """The parameters cell's names and literal values (None where not a literal) of a notebook."""
    import nbformat

    from labkit.run_params import inspect_parameters
    with tempfile.TemporaryDirectory(prefix="labkit-params-") as tmp:
        path = Path(tmp) / "notebook.ipynb"
        try:
            nbformat.write(nb, str(path))
            return {name: literal(info.get("default")) for name, info in inspect_parameters(path).items()}
        except Exception:  # defaults are a convenience for the checks, never a reason to fail
            return {}


def _small(path: Path, mb: float = MAX_READ_MB) -> bool:
    """A regular file (not a link) of at most ``mb`` MB."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size <= mb * 2**20


def _results_of(run: Any) -> tuple[dict[str, Any], list[str]]:
    """Recorded results: results.json (mirrored by labkit.record) checked against the notebook's outputs."""
    from labkit.notebooks import read_notebook
    from labkit.record import results_from_notebook
    notes: list[str] = []
    from_nb: dict[str, Any] = {}
    if _small(run.output_notebook):
        try:
            from_nb = results_from_notebook(read_notebook(run.output_notebook, follow_links=False))
        except LabkitError:
            pass
    elif run.output_notebook.is_file() and not run.output_notebook.is_symlink():
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
    return {**from_json, **from_nb}, notes


def _short(text: str, scratch: Path | None) -> str:
    """Messages without the scratch folder's absolute path (it means nothing to a student)."""
    return text.replace(f"{scratch}/", "").replace(str(scratch), ".") if scratch else text


# ---------------------------------------------------------------- checks (both paths)

def run_checks(rubric: Any, ctx: Any, scratch: Path | None = None) -> tuple[list[dict[str, Any]], float, list[str]]:
    """Run every check of a rubric on a GradeContext: (check records, score, names of forged checks).

    A check that raises earns 0 with the error as its detail; it never stops the others. A manual check with an
    answer is recorded as ``pending`` (``points`` None, its ``answer`` kept for the TA's sheet) and adds nothing
    to the score until a sheet is merged."""
    from labkit.rubrics import evaluate

    checks, score, forged = [], 0.0, []
    for spec in rubric.checks:
        c0 = time.monotonic()
        outcome = evaluate(spec, ctx)
        entry = {"name": spec.name, "points": None, "max": spec.points, "passed": False, "message": "",
                 "detail": _short(outcome.detail, scratch), "forged": outcome.forged,
                 "seconds": round(time.monotonic() - c0, 2)}
        if spec.manual:
            entry.update(manual=True, answer=outcome.answer or "", pending=outcome.pending)
        if not outcome.pending:
            entry["points"] = round(spec.points * outcome.fraction, 3)
            entry["passed"] = outcome.passed
            score += entry["points"]
            if not outcome.unanswered:  # "Exercise 1 was not answered" says it all
                entry["message"] = (spec.pass_msg if outcome.passed else spec.fail_msg) or ""
        if outcome.forged:
            forged.append(spec.name)
        checks.append(entry)
    return checks, round(score, 3), forged


def _assess(rubric: Any, result: Any, source_nb: Any, *, lab: str, params: dict[str, Any], profile: str,
            scratch: Path | None = None, hidden_seed: int | None = None) -> dict[str, Any]:
    """Read a run's results and run the rubric on them: the record fields both paths share.

    ``params`` are what the run was given (the rubric's and the grader's, not the notebook's own): the checks
    see them over the parameters cell's values, and a ``dataset`` among them is the data they check against."""
    from labkit.rubrics.checks import GradeContext
    from labkit.run_outcome import run_message

    results, notes = _results_of(result)
    info = results.get("run_info")
    lab_in_run = info.get("lab") if isinstance(info, dict) else None
    if lab_in_run and lab_in_run != lab:
        notes.append(f"the notebook recorded lab {lab_in_run!r}, graded as {lab}")
    message = result.message
    if scratch is not None:  # the grader keeps the executed notebook in the student's folder: name that copy
        message = _short(run_message(result, partial_notebook=KEPT_NOTEBOOK), scratch)
    ctx = GradeContext(lab=lab, status=result.status, results=results, artifacts=result.output_dir,
                       params={**_cell_parameters(source_nb), **params, "output_dir": str(result.output_dir)},
                       profile=profile, run_message=message, dataset=params.get("dataset"),
                       hidden_seed=hidden_seed, hidden_data=rubric.hidden_data)
    checks, score, forged = run_checks(rubric, ctx, scratch)
    status, reason = status_of(result.status, message, results, forged)
    return {"checks": checks, "score": round(score, 3), "pending": pending_points(checks), "status": status,
            "reason": reason, "notes": notes, "hidden_data": ctx.hidden_source}


# ---------------------------------------------------------------- the trusted path

def grade_run(result: Any, *, rubric: str | None = None, parameters: dict[str, Any] | None = None,
              profile: str = DEFAULT_PROFILE, hidden_seed: int | None = None) -> dict[str, Any]:
    """Grade an already executed lab (a labkit.run_outcome.RunResult) with its rubric, without re-executing it.

    Trusted use only (``labkit run --grade`` / ``make labs``): no sandbox is involved. The re-run checks'
    dialogues are generated with ``hidden_seed`` (drawn here when None, and recorded)."""
    from labkit.notebooks import read_notebook
    from labkit.rubrics import load_rubric
    from labkit.rubrics.checks import draw_hidden_seed

    rub = load_rubric(rubric or result.lab)
    seed = draw_hidden_seed() if hidden_seed is None else int(hidden_seed)
    graded = _assess(rub, result, read_notebook(result.notebook), lab=result.lab,
                     params=dict(parameters or {}), profile=profile, hidden_seed=seed)
    return {"id": result.lab, "max": rub.max_points, **graded, "isolation": "none (trusted run)", "lab": result.lab,
            "hidden_seed": seed,
            "run_seconds": result.seconds or None,
            "grading_seconds": round(sum(c["seconds"] for c in graded["checks"]), 2)}


# ---------------------------------------------------------------- the grader process (sandboxed)

def _copy_submission(sub: Submission, scratch: Path) -> Path:
    """Copy the submission (its notebook alone, or its whole folder) into scratch; return the notebook's copy."""
    nb = Path(sub.notebook)  # type: ignore[arg-type]
    if sub.single:
        if nb.is_symlink():
            raise LabkitError(f"{nb.name} is a symbolic link (the grader follows none)")
        if nb.stat().st_size > MAX_NOTEBOOK_MB * 2**20:
            raise LabkitError(f"{nb.name} is larger than the {MAX_NOTEBOOK_MB} MB a notebook may have")
        target = scratch / nb.name
        shutil.copyfile(nb, target, follow_symlinks=False)
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
    """A LABKIT_HOME for the submission: the fixtures read-only (bind-mounted by bwrap, a private read-only copy
    under rlimits) and a private copy of the derived-model cache (labs take file locks and may add entries)."""
    home = scratch / ".home" / "labkit"
    real = labkit_home()
    home.mkdir(parents=True, exist_ok=True)
    if (real / "fixtures").is_dir():
        sandbox.expose(real / "fixtures", home / "fixtures")  # bwrap: read-only mount; rlimits: private copy
    cache = real / "cache"
    if cache.is_dir():
        size = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
        if size <= MAX_FOLDER_MB * 2**20:
            shutil.copytree(cache, home / "cache", ignore=shutil.ignore_patterns("*.lock"), dirs_exist_ok=True)
    return home


def _make_sandbox(scratch: Path, rubric: Any, opts: GradeOptions) -> Sandbox:
    """The sandbox of one submission: labkit, the data and the files registering extra labs readable; every
    lab's rubric and checks, the rubric in use (with its checks) and the hidden data masked."""
    from labkit import labs
    from labkit.config import repo_root
    from labkit.rubrics import RUBRIC_DIR

    hidden = [str(RUBRIC_DIR)] + [str(p) for lab in labs.all_labs() for p in (lab.rubric, lab.checks)]
    if rubric.path:
        hidden += [str(rubric.path), str(rubric.path.with_suffix(".py"))]
    hidden += [str(data_dir().parent / p) if not os.path.isabs(p) else p for p in rubric.hidden_paths]
    readable = [repo_root() / "labkit", data_dir(), *(p.parent for p in labs.extension_files())]
    sandbox = Sandbox(scratch, isolation=opts.isolation, limits=opts.limits, readable=readable, hidden=hidden)
    sandbox.env_extra["LABKIT_HOME"] = str(_sandbox_labkit_home(sandbox, scratch))
    sandbox.env_extra[selfcheck.ENV] = "off"  # the grader runs every check itself, outside the sandbox
    return sandbox


def _defuse_scratch(scratch: Path) -> list[str]:
    """Remove symlinks the submission left in its scratch folder: the checks run outside the sandbox and
    must never follow a link to the grader's files."""
    removed = []
    for p in list(scratch.rglob("*")):
        if p.is_symlink():
            removed.append(str(p.relative_to(scratch)))
            p.unlink()
    return [f"symbolic links removed before checking: {', '.join(removed[:5])}"] if removed else []


def _note_release_changes(nb: Any, record: dict[str, Any]) -> None:
    """How the submission differs from its release (labkit.grading.provenance; advisory, never fatal): every change in
    the notes, the ones that need a person in ``changes`` for the class summary, and whether it was built from
    an older release."""
    from labkit.grading.provenance import Change, submission_changes
    try:
        changes = submission_changes(nb)
    except Exception as err:  # the provenance view is advisory
        log.debug("submission_changes failed", exc_info=True)
        changes = [Change("not_compared", error=type(err).__name__)]
    record["notes"] += [c.text for c in changes]
    record["changes"] = [c.text for c in changes if c.needs_review]
    record["older_release"] = any(c.kind == "older_release" for c in changes)


def _source_notebook(sub: Submission) -> Any:
    """The submitted notebook, read and checked for a parameters cell (_Refused with the reason otherwise)."""
    from labkit.grading.discover import LINK_REFUSED
    from labkit.notebooks import read_notebook
    from labkit.run_params import has_parameters_cell
    if sub.problem:
        raise _Refused(sub.problem)
    path = Path(sub.notebook)  # type: ignore[arg-type]
    folder = Path(sub.folder)
    name = path.name if sub.single else str(path.relative_to(folder)) if folder in path.parents else path.name
    # never a link, nor a notebook reached through one (the submission folder, or a folder inside it)
    inside = [path, *(p for p in path.parents if p == folder or folder in p.parents)] if not sub.single else [path]
    if any(p.is_symlink() for p in inside):
        raise _Refused(f"{name} is reached through a symbolic link: {LINK_REFUSED}")
    try:
        nb = read_notebook(path, max_mb=MAX_NOTEBOOK_MB, follow_links=False, name=name)
    except LabkitError as err:
        raise _Refused(str(err)) from None
    if not has_parameters_cell(nb):
        raise _Refused("missing parameters cell: no code cell is tagged 'parameters' (it was deleted or "
                       "untagged); restore it from the released notebook")
    return nb


def _execute(sub: Submission, scratch: Path, rubric: Any, opts: GradeOptions, params: dict[str, Any],
             record: dict[str, Any]) -> Any:
    """Copy the submission into scratch and run it in its sandbox (its isolation noted in ``record``)."""
    from labkit.run import execute
    os.chmod(scratch, 0o755)
    try:
        nb_copy = _copy_submission(sub, scratch)
    except (LabkitError, OSError) as err:
        raise _Refused(f"could not copy the submission: {err}") from None
    sandbox = _make_sandbox(scratch, rubric, opts)
    record["isolation"] = sandbox.describe()
    try:
        return execute(nb_copy, scratch / "outputs", params, profile=opts.profile,
                              cell_timeout=opts.timeout, timeout=opts.timeout, cwd=nb_copy.parent, lab=opts.lab,
                              from_cli=True, sandbox=sandbox, max_output_mb=opts.limits.output_mb)
    except LabkitError as err:
        raise _Refused(f"the notebook's parameters cell does not fit the grader: {err}") from None
    finally:
        record["notes"] += sandbox.end()  # nothing the notebook started outlives it, nor runs during the checks


def grade_one(sub: Submission, opts: GradeOptions) -> dict[str, Any]:
    """Grade one submission in this process and write its files; returns the grade record."""
    from labkit.rubrics import load_rubric

    t0 = time.monotonic()
    rubric = load_rubric(opts.rubric or opts.lab)
    out_dir = Path(opts.out) / sub.slug
    out_dir.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"id": sub.id, "folder": sub.slug, "score": 0.0, "max": rubric.max_points,
                              "pending": 0.0, "status": "error", "reason": "",
                              "notebook": sub.notebook, "checks": [], "isolation": "", "notes": [],
                              "run_seconds": None, "grading_seconds": None, "lab": opts.lab,
                              "hidden_seed": opts.hidden_seed}
    params = {**rubric.parameters, **opts.parameters}
    scratch: Path | None = None
    try:
        source_nb = _source_notebook(sub)
        if "dataset" in _cell_parameters(source_nb):
            params.setdefault("dataset", None)  # the grader's data (the profile's unless given), not the notebook's
        _note_release_changes(source_nb, record)
        scratch = Path(tempfile.mkdtemp(prefix=f"labkit-grade-{sub.slug}-"))
        result = _execute(sub, scratch, rubric, opts, params, record)
        record["run_seconds"], record["run_status"] = result.seconds, result.status
        record["notes"] += _defuse_scratch(scratch)
        if result.output_truncated:
            record["notes"].append(f"output truncated at {opts.limits.output_mb:g} MB")
        graded = _assess(rubric, result, source_nb, lab=opts.lab, params=params, profile=opts.profile, scratch=scratch,
                         hidden_seed=opts.hidden_seed)
        record.update({**graded, "notes": record["notes"] + graded["notes"]})
        _keep_notebook(result.output_notebook, out_dir)
    except _Refused as why:
        record["reason"] = str(why)
    except Exception as err:  # the grader itself must not crash: say what happened
        log.exception("grading %s failed", sub.id)
        record["status"], record["reason"] = "grader_error", f"grader error: {type(err).__name__}: {err}"
    finally:
        record["grading_seconds"] = round(time.monotonic() - t0, 2)
        if scratch is not None and not opts.keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        write_submission_files(record, out_dir)
    return record


def _keep_notebook(path: Path, out_dir: Path) -> None:
    try:
        if path.is_file() and path.stat().st_size <= MAX_KEPT_NOTEBOOK_MB * 2**20:
            shutil.copyfile(path, out_dir / KEPT_NOTEBOOK)
    except OSError:
        pass


def _one_main(spec_path: str) -> int:
    from labkit.run_engine import skip_slow_optional_imports
    skip_slow_optional_imports()
    become_subreaper()  # orphans of the submission's run (setsid, double fork) are re-parented to this process
    spec = json.loads(Path(spec_path).read_text())
    Path(spec_path).unlink(missing_ok=True)  # the batch's hidden seed is in it: gone before the submission runs
    opts = spec["options"]
    opts["limits"] = Limits(**opts["limits"])
    grade_one(Submission(**spec["submission"]), GradeOptions(**opts))
    return 0


if __name__ == "__main__":  # pragma: no cover - the grader process
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        sys.exit(_one_main(sys.argv[2]))
    print("labkit.grading.worker is the grader process; use `labkit grade`.", file=sys.stderr)
    sys.exit(2)
