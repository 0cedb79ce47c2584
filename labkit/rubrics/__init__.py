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

A check returns an :class:`Outcome` (fraction of its points in [0, 1], a
detail line, and ``forged=True`` when a recorded number contradicts the
artifacts). Exercise checks give 0 points and exactly "Exercise K was not
answered" when the answer is None or missing; otherwise their ``verify``
entry (another registered function) decides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from labkit.config import LabkitError

RUBRIC_DIR = Path(__file__).resolve().parent


@dataclass
class Outcome:
    """The result of one check: fraction of its points earned and why."""

    fraction: float
    detail: str = ""
    forged: bool = False

    @classmethod
    def ok(cls, detail: str = "") -> "Outcome":
        return cls(1.0, detail)

    @classmethod
    def fail(cls, detail: str = "", forged: bool = False) -> "Outcome":
        return cls(0.0, detail, forged)


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
    """One rubric entry."""

    name: str
    type: str
    points: float
    pass_msg: str = ""
    fail_msg: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rubric:
    """A lab's rubric: its checks and what the sandbox must hide."""

    lab: str
    checks: list[CheckSpec]
    title: str = ""
    path: Path | None = None
    hidden_paths: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)   # papermill parameters for graded runs

    @property
    def max_points(self) -> float:
        return float(sum(c.points for c in self.checks))


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
    specs = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "name" not in entry or "type" not in entry:
            raise LabkitError(f"Rubric {path}: check #{i + 1} needs at least 'name' and 'type'.")
        entry = dict(entry)
        name, kind = str(entry.pop("name")), str(entry.pop("type"))
        if kind not in CHECKS:
            raise LabkitError(f"Rubric {path}: check {name!r} has unknown type {kind!r}; known: {', '.join(sorted(CHECKS))}.")
        verify = entry.get("verify")
        if kind == "exercise" and isinstance(verify, dict) and verify.get("type") not in VERIFIERS:
            raise LabkitError(f"Rubric {path}: exercise check {name!r} has unknown verify type {verify.get('type')!r}; "
                              f"known: {', '.join(sorted(VERIFIERS))}.")
        specs.append(CheckSpec(name=name, type=kind, points=float(entry.pop("points", 1)),
                               pass_msg=str(entry.pop("pass", "") or ""), fail_msg=str(entry.pop("fail", "") or ""),
                               params=entry))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise LabkitError(f"Rubric {path}: check names must be unique.")
    return Rubric(lab=str(raw.get("lab") or path.stem), checks=specs, title=str(raw.get("title") or ""), path=path,
                  hidden_paths=list(raw.get("hidden_paths") or []), parameters=dict(raw.get("parameters") or {}))
