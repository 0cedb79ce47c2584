"""Self-checks: the rubric's public checks, run in the learner's kernel as answers are recorded.

:func:`labkit.start_lab` calls :func:`activate`, which loads the lab's rubric
and listens to :func:`labkit.record`. Recording a result that a public check
is about (``exercise_1`` for exercise 1, ``reflection`` for the hand-graded
question, or a check's ``after`` name) runs that check at once against the
learner's own run (their output folder, their recorded results, the lab's
data) and prints one verdict line: the rubric's ``pass`` message, or its
``fail`` message as the hint. The check's detail (which may name the expected
value) is never shown. :func:`check` (``labkit.check()``) runs every public
check whose result has been recorded so far and prints a small table, which
ends by saying how many more checks and points the grader runs (never what
they check): passing every self-check is not full marks.

Hidden checks never run here. Graded runs turn self-checks off (the grader's
sandbox sets ``LABKIT_SELF_CHECK=off`` and masks the rubrics anyway); a
missing or unreadable rubric turns them off with one line saying why, and a
failing self-check never fails the learner's cell.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.config import DEFAULT_PROFILE, LabkitError
from labkit.record import RESULTS_FILE, add_listener, remove_listener

log = logging.getLogger(__name__)

ENV = "LABKIT_SELF_CHECK"        # "off" (or 0, false, no): no self-checks in this process and its kernels
_OFF = {"0", "off", "false", "no"}
_LISTENER = "selfcheck"

# verdict kinds → the mark a line starts with and the word the table shows
_MARKS = {"passed": ("✅", "passed"), "partly": ("◐", "partly"), "failed": ("❌", "not yet"),
          "unanswered": ("·", "not answered"), "for_a_person": ("✍", "for a person")}


@dataclass
class Verdict:
    """One self-check's result as the learner sees it: no detail, no expected value."""

    check: str
    kind: str          # passed | partly | failed | unanswered | for_a_person
    message: str
    seconds: float = 0.0

    def line(self) -> str:
        """The one line printed under the recording cell."""
        return f"{_MARKS[self.kind][0]} self-check: {self.message}"


def verdict_of(spec: Any, outcome: Any, seconds: float = 0.0) -> Verdict:
    """What a learner may see of an Outcome: the rubric's pass message, or its fail message as the hint."""
    if outcome.pending:
        return Verdict(spec.name, "for_a_person",
                       f"{spec.name} saved; a person grades it ({spec.points:g} points).", seconds)
    if outcome.unanswered:
        return Verdict(spec.name, "unanswered", f"{spec.name} is not answered yet.", seconds)
    if outcome.passed:
        return Verdict(spec.name, "passed", spec.pass_msg or f"{spec.name}: right.", seconds)
    hint = spec.fail_msg or f"{spec.name}: not right yet."
    if outcome.fraction > 0:
        return Verdict(spec.name, "partly", f"partly right. {hint}", seconds)
    return Verdict(spec.name, "failed", hint, seconds)


@dataclass
class SelfChecker:
    """The public checks of one lab run, against that run's output folder and recorded results."""

    lab: str
    rubric: Any                                   # labkit.rubrics.Rubric
    output_dir: Path
    params: dict[str, Any]                        # the run's effective settings, seed and output_dir
    profile: str = DEFAULT_PROFILE
    dataset: str | None = None
    recorded: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0                          # time self-checks took in this kernel so far (rubric load too)
    _cache: dict[str, Any] = field(default_factory=dict)
    _signature: tuple = ()

    def checks_for(self, name: str) -> list[Any]:
        """The public checks that recording ``name`` triggers."""
        return [c for c in self.rubric.public_checks if c.trigger == name]

    def _context(self) -> Any:
        """A GradeContext of the run as it stands; its cache is kept while the artifacts are unchanged."""
        from labkit.rubrics.checks import GradeContext
        signature = _artifacts_signature(self.output_dir)
        if signature != self._signature:
            self._cache.clear()
            self._signature = signature
        return GradeContext(lab=self.lab, status="ok", results=dict(self.recorded), artifacts=self.output_dir,
                            params=dict(self.params), profile=self.profile, cache=self._cache, dataset=self.dataset)

    def run(self, specs: list[Any]) -> list[Verdict]:
        """Run these checks now; one Verdict each (a check that fails to run is a 'not yet', never an error)."""
        from labkit.rubrics import evaluate
        ctx, out = self._context(), []
        for spec in specs:
            t0 = time.perf_counter()
            outcome = evaluate(spec, ctx)
            took = time.perf_counter() - t0
            self.seconds += took
            out.append(verdict_of(spec, outcome, took))
        return out

    def on_record(self, name: str, value: Any) -> None:
        """record()'s listener: keep the value, run the checks it triggers, print their verdict lines."""
        self.recorded[name] = value
        specs = self.checks_for(name)
        if specs:
            for v in self.run(specs):
                log.info(v.line())

    def so_far(self) -> list[Verdict]:
        """Every public check whose result has been recorded, run again now."""
        return self.run([c for c in self.rubric.public_checks if c.trigger in self.recorded])


_active: SelfChecker | None = None
_off_reason: str | None = None   # why self-checks are off; None while no lab has been set up in this process


def disabled_by_env() -> bool:
    """True when ``LABKIT_SELF_CHECK`` turns self-checks off (graded runs set it)."""
    return os.environ.get(ENV, "").strip().lower() in _OFF


def activate(lab: str, output_dir: Path, params: dict[str, Any], *, profile: str = DEFAULT_PROFILE,
             dataset: str | None = None) -> SelfChecker | None:
    """Start self-checks for a lab run (start_lab calls this); None when they are off (and why is logged once:
    never for graded runs, where ``LABKIT_SELF_CHECK=off``)."""
    global _active, _off_reason
    remove_listener(_LISTENER)
    _active = None
    if disabled_by_env():
        _off_reason = f"{ENV}={os.environ.get(ENV)} turns them off in this environment"
        return None
    t0 = time.perf_counter()
    try:
        from labkit import labs
        from labkit.rubrics import load_rubric
        rubric = load_rubric(labs.get(lab).rubric)
        checker = SelfChecker(lab=lab, rubric=rubric, output_dir=Path(output_dir), params=dict(params),
                              profile=profile, dataset=dataset, seconds=time.perf_counter() - t0)
    except Exception as err:  # no rubric here (a course that ships none, a masked folder): the lab still runs
        _off_reason = f"the rubric of {lab} cannot be read here ({type(err).__name__}: {str(err)[:160]})"
        log.info("self-checks are off: %s", _off_reason)
        return None
    _active, _off_reason = checker, ""
    add_listener(_LISTENER, checker.on_record)
    return checker


def active() -> SelfChecker | None:
    """The self-checker of the lab run in this process, or None."""
    return _active


def check() -> None:
    """``labkit.check()``: run every self-check whose answer has been recorded so far and print a table of
    their verdicts (pass messages, or hints; never the expected values)."""
    checker = _active
    if checker is None:
        if _off_reason is None:
            raise LabkitError("labkit.check() needs the lab's setup: run the cell with labkit.start_lab(...) "
                              "first, then the exercise cells you want checked.")
        log.info("self-checks are off: %s", _off_reason)
        return
    t0 = time.perf_counter()
    verdicts = checker.so_far()
    took = time.perf_counter() - t0
    public = checker.rubric.public_checks
    if not verdicts:
        log.info(f"No self-check has run yet: record an answer (the exercise cells) first. {checker.lab} has "
                 f"{len(public)}: {', '.join(c.name for c in public)}. {still_to_come(checker.rubric)}")
        return
    log.info(format_table(checker, verdicts, took))


def still_to_come(rubric: Any) -> str:
    """How many more checks, and points, the grader runs beyond the self-checks (never what they check): a
    table of passed self-checks is not a grade."""
    hidden = [c for c in rubric.checks if not c.public]
    if not hidden:
        return "The grader runs these checks only; it runs your notebook again from top to bottom first."
    points = sum(c.points for c in hidden)
    fresh = ", some of them on dialogues made at grading time" if any("regenerates" in c.type for c in hidden) else ""
    return (f"{len(hidden)} more check{'s' if len(hidden) != 1 else ''}, {points:g} point{'s' if points != 1 else ''}, "
            f"run when your notebook is graded (it runs again from top to bottom first{fresh}).")


def format_table(checker: SelfChecker, verdicts: list[Verdict], took: float) -> str:
    """The text table :func:`check` prints."""
    width = max(len(v.check) for v in verdicts)
    waiting = [c.name for c in checker.rubric.public_checks if c.trigger not in checker.recorded]
    checked = [v for v in verdicts if v.kind != "for_a_person"]
    head = f"self-checks of {checker.lab}: {sum(v.kind == 'passed' for v in checked)} of {len(checked)} checked pass"
    if len(checked) < len(verdicts):
        head += f"; {len(verdicts) - len(checked)} answer(s) wait for a person"
    lines = [head, f"  {'check':<{width}}  {'result':<14}  message"]
    for v in verdicts:
        mark, word = _MARKS[v.kind]
        lines.append(f"  {v.check:<{width}}  {mark} {word:<12}  {v.message}")
    if waiting:
        lines.append(f"not recorded yet: {', '.join(waiting)}")
    lines.append(still_to_come(checker.rubric))
    lines.append(f"(checked in {took:.2f} s; self-checks took {checker.seconds:.2f} s of this kernel's time so far)")
    return "\n".join(lines)


def _artifacts_signature(folder: Path) -> tuple:
    """What the output folder holds (paths, sizes, modification times): a change means the checks' cached
    recomputations are stale. results.json, notebooks (papermill rewrites the executed one there after every
    cell) and hidden files are not artifacts a check reads."""
    entries = []
    try:
        for root, _dirs, files in os.walk(folder):
            for name in files:
                if name == RESULTS_FILE or name.startswith(".") or name.endswith(".ipynb"):
                    continue
                try:
                    st = os.stat(os.path.join(root, name))
                except OSError:
                    continue
                entries.append((os.path.relpath(os.path.join(root, name), folder), st.st_size, st.st_mtime_ns))
    except OSError:
        return ()
    return tuple(sorted(entries))
