"""Rubrics: one declarative YAML file per lab plus a registry of Python checks.

A rubric file lists checks; each names a ``type`` registered with
:func:`check` (the generic ones in :mod:`labkit.rubrics.checks`, a lab's own
in the Python file beside its YAML: ``lab1.py`` next to ``lab1.yaml``), its
``points``, feedback for ``pass`` and ``fail``, and the check's own
parameters::

    lab: lab1
    checks:
      - name: rouge_recomputed
        type: lab1_rouge_recomputed
        points: 3
        tolerance: 0.01
        pass: "Your recorded ROUGE matches the generations you saved."
        fail: "The recorded ROUGE does not match generations.csv."
      - name: exercise_1
        type: exercise
        number: 1
        points: 1
        verify: {type: lab1_best_strategy}

The checks that re-run a saved adapter read dialogues the learner cannot have: generated at grading time by
:mod:`labkit.datagen` with a seed the grader draws per batch (and records in the grades), or the rows of an
instructor's file named by a top-level ``hidden_data: path/to/hidden.jsonl`` (masked by the sandbox like
every ``hidden_paths`` entry; the student edition never ships it).

A check returns an :class:`Outcome` (fraction of its points in [0, 1], a
detail line, and ``forged=True`` when a recorded number contradicts the
artifacts). Exercise checks give 0 points and exactly "Exercise K was not
answered" when the answer is None or missing; otherwise their ``verify``
entry (another registered function) decides. A ``manual`` check (a question a
person grades, such as each lab's reflection) leaves its points *pending* with
the learner's answer until a TA's sheet is merged (:mod:`labkit.grading.manual`).

``public: true`` makes a check a **self-check**: it also runs in the learner's
kernel as soon as the result it is about is recorded (an exercise's
``exercise_K``, a manual check's ``record``, or the name given as ``after``)
and prints its ``pass`` message, or its ``fail`` message as the hint
(:mod:`labkit.selfcheck`). Checks are hidden by default: they run only when
grading. A public check must read only what the learner has (their own run's
artifacts and the lab's data), never held-out data.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from labkit.config import LabkitError

RUBRIC_DIR = Path(__file__).resolve().parent

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """The result of one check: fraction of its points earned and why.

    ``unanswered``: the learner gave no answer (no feedback message beyond the detail). ``pending``: a
    person grades it (``fraction`` is meaningless until then); ``answer`` is what they will read."""

    fraction: float
    detail: str = ""
    forged: bool = False
    unanswered: bool = False
    pending: bool = False
    answer: str | None = None

    @property
    def passed(self) -> bool:
        """Full points (never for a pending outcome)."""
        return not self.pending and self.fraction >= 1.0

    @classmethod
    def ok(cls, detail: str = "") -> "Outcome":
        return cls(1.0, detail)

    @classmethod
    def fail(cls, detail: str = "", forged: bool = False) -> "Outcome":
        return cls(0.0, detail, forged)

    @classmethod
    def not_answered(cls, detail: str) -> "Outcome":
        """No answer was recorded: 0 points, ``detail`` says which."""
        return cls(0.0, detail, unanswered=True)

    @classmethod
    def for_a_person(cls, answer: str) -> "Outcome":
        """An answer a person grades: its points stay pending until a TA's sheet is merged."""
        return cls(0.0, "to be graded by a person", pending=True, answer=answer)


CheckFn = Callable[..., Outcome]


class _Registered(dict):
    """Check types by name; looking up an unknown one first registers the built-in checks (every lab's)."""

    def __missing__(self, name: str) -> CheckFn:
        import_builtin_checks()
        if dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        raise KeyError(name)


CHECKS: dict[str, CheckFn] = _Registered()
VERIFIERS: dict[str, CheckFn] = _Registered()


def check(name: str) -> Callable[[CheckFn], CheckFn]:
    """Register a check type (``fn(ctx, **params) -> Outcome``)."""
    def deco(fn: CheckFn) -> CheckFn:
        CHECKS[name] = fn
        return fn
    return deco


def verifier(name: str) -> Callable[[CheckFn], CheckFn]:
    """Register an exercise verifier (``fn(ctx, answer, **params) -> Outcome``)."""
    def deco(fn: CheckFn) -> CheckFn:
        VERIFIERS[name] = fn
        return fn
    return deco


@dataclass
class CheckSpec:
    """One rubric entry. ``public``: also a self-check in the learner's kernel; ``after``: the recorded
    result that triggers it there (see :attr:`trigger`)."""

    name: str
    type: str
    points: float
    pass_msg: str = ""
    fail_msg: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    public: bool = False
    after: str | None = None

    @property
    def trigger(self) -> str | None:
        """The recorded name whose recording runs this check as a self-check: ``after`` when given, else an
        exercise's ``exercise_<number>``, a manual check's ``record``; None for a check that has none."""
        if self.after:
            return self.after
        if self.type == "exercise" and self.params.get("number") is not None:
            return f"exercise_{self.params['number']}"
        if self.type == "manual":
            return str(self.params.get("record") or "reflection")
        return None

    @property
    def manual(self) -> bool:
        """Graded by a person (its points are pending until a TA's sheet is merged)."""
        return self.type == "manual"


def evaluate(spec: CheckSpec, ctx: Any) -> Outcome:
    """Run one check on a context: its Outcome with the fraction clamped to [0, 1]. A check that raises
    gives 0 points with the error as its detail; it never raises itself."""
    try:
        outcome = CHECKS[spec.type](ctx, **spec.params)
    except Exception as err:  # one broken check never stops the others (nor a learner's cell)
        log.debug("check %s failed", spec.name, exc_info=True)
        return Outcome.fail(f"could not be checked ({type(err).__name__}: {str(err)[:200]})")
    outcome.fraction = min(1.0, max(0.0, float(outcome.fraction)))
    return outcome


@dataclass
class Rubric:
    """A lab's rubric: its checks and what the sandbox must hide."""

    lab: str
    checks: list[CheckSpec]
    title: str = ""
    path: Path | None = None
    hidden_paths: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)   # papermill parameters for graded runs
    hidden_data: str | None = None   # an instructor's DialogSum jsonl for the re-run checks (else generated)

    @property
    def max_points(self) -> float:
        return float(sum(c.points for c in self.checks))

    @property
    def public_checks(self) -> list[CheckSpec]:
        """The self-checks: public checks, in rubric order."""
        return [c for c in self.checks if c.public]


def default_rubric_path(lab: str) -> Path:
    """The lab's default rubric (the registry's; ``labkit/rubrics/<lab>.yaml`` for an unregistered name)."""
    from labkit import labs
    entry = labs.find(lab)
    return entry.rubric if entry is not None else RUBRIC_DIR / f"{lab}.yaml"


def _load_plugin(path: Path) -> None:
    """Import a Python file of extra @check/@verifier functions named in a rubric's ``plugins`` list."""
    import importlib.util
    if not path.is_file():
        raise LabkitError(f"Rubric plugin {path} does not exist.")
    spec = importlib.util.spec_from_file_location(f"labkit_rubric_plugin_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]


_IMPORTED: set[Path] = set()


def import_checks(path: Path) -> None:
    """Register the checks of one Python file (once per process): a module of this package by name, any
    other file from its path. A missing file registers nothing."""
    import importlib
    path = path.resolve()
    if path in _IMPORTED or not path.is_file():
        return
    _IMPORTED.add(path)
    if path.parent == RUBRIC_DIR:
        importlib.import_module(f"labkit.rubrics.{path.stem}")
    else:
        _load_plugin(path)


def import_builtin_checks() -> None:
    """Register the generic checks and every lab's own (the Python files beside this package's rubrics and
    beside each registered lab's rubric)."""
    from labkit import labs
    import_checks(RUBRIC_DIR / "checks.py")
    for path in sorted(RUBRIC_DIR.glob("*.py")):
        if path.name != "__init__.py":
            import_checks(path)
    for lab in labs.all_labs():
        import_checks(lab.checks)


def _check_spec(path: Path, number: int, entry: Any) -> CheckSpec:
    """Rubric entry ``number`` (1-based) as a CheckSpec; LabkitError naming the rubric and what is wrong."""
    if not isinstance(entry, dict) or "name" not in entry or "type" not in entry:
        raise LabkitError(f"Rubric {path}: check #{number} needs at least 'name' and 'type'.")
    entry = dict(entry)
    name, kind = str(entry.pop("name")), str(entry.pop("type"))
    if kind not in CHECKS:
        raise LabkitError(f"Rubric {path}: check {name!r} has unknown type {kind!r}; known: {', '.join(sorted(CHECKS))}.")
    verify = entry.get("verify")
    if kind == "exercise" and isinstance(verify, dict) and verify.get("type") not in VERIFIERS:
        raise LabkitError(f"Rubric {path}: exercise check {name!r} has unknown verify type {verify.get('type')!r}; "
                          f"known: {', '.join(sorted(VERIFIERS))}.")
    public, after = entry.pop("public", False), entry.pop("after", None)
    if not isinstance(public, bool):
        raise LabkitError(f"Rubric {path}: check {name!r} has public: {public!r}; expected true or false.")
    if after is not None and not isinstance(after, str):
        raise LabkitError(f"Rubric {path}: check {name!r} has after: {after!r}; expected the name of a "
                          "recorded result, e.g. after: prompt_tokens.")
    spec = CheckSpec(name=name, type=kind, points=float(entry.pop("points", 1)),
                     pass_msg=str(entry.pop("pass", "") or ""), fail_msg=str(entry.pop("fail", "") or ""),
                     params=entry, public=public, after=after)
    if public and spec.trigger is None:
        raise LabkitError(f"Rubric {path}: check {name!r} is public but nothing triggers it in the learner's "
                          "kernel; add after: <the recorded result it checks>, or make it hidden.")
    return spec


def _hidden(path: Path, raw: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(hidden_data, hidden_paths) of a rubric: the hidden data file is masked like every hidden path."""
    hidden_data = raw.get("hidden_data")
    if hidden_data is not None and not isinstance(hidden_data, str):
        raise LabkitError(f"Rubric {path}: hidden_data: {hidden_data!r}; expected the path of a DialogSum .jsonl "
                          "file (relative to the project, or absolute), or no hidden_data to generate the "
                          "hidden dialogues at grading time.")
    hidden_paths = [str(p) for p in raw.get("hidden_paths") or []]
    if hidden_data and hidden_data not in hidden_paths:
        hidden_paths.append(hidden_data)  # the sandbox masks it like any hidden path
    return hidden_data, hidden_paths


def load_rubric(path_or_lab: str | Path) -> Rubric:
    """Load a rubric from a YAML path, or the default rubric of a lab id (see labkit.labs).

    The built-in checks, the checks beside the YAML (same stem, ``.py``) and its
    ``plugins`` are registered first."""
    path = Path(path_or_lab)
    if not path.suffix:
        path = default_rubric_path(str(path_or_lab))
    if not path.is_file():
        from labkit import labs
        raise LabkitError(f"Rubric {path} does not exist. Pass --rubric FILE.yaml or a lab with a default rubric "
                          f"({', '.join(labs.ids())}).")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise LabkitError(f"Rubric {path} is not valid YAML: {err}") from err
    import_builtin_checks()
    import_checks(path.with_suffix(".py"))
    for plugin in raw.get("plugins") or []:
        _load_plugin(path.parent / plugin if not Path(plugin).is_absolute() else Path(plugin))
    entries = raw.get("checks")
    if not isinstance(entries, list) or not entries:
        raise LabkitError(f"Rubric {path} has no 'checks' list.")
    specs = [_check_spec(path, i + 1, entry) for i, entry in enumerate(entries)]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise LabkitError(f"Rubric {path}: check names must be unique.")
    hidden_data, hidden_paths = _hidden(path, raw)
    return Rubric(lab=str(raw.get("lab") or path.stem), checks=specs, title=str(raw.get("title") or ""), path=path,
                  hidden_paths=hidden_paths, parameters=dict(raw.get("parameters") or {}), hidden_data=hidden_data)
