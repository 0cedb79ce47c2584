"""Self-checks: public rubric checks run in the learner's kernel as answers are recorded; hidden ones never."""
from __future__ import annotations

import importlib
import json
import logging
import textwrap
from pathlib import Path

import pytest

from labkit import selfcheck
from labkit.config import LabkitError
from labkit.rubrics import CheckSpec, Outcome, Rubric, load_rubric

recordmod = importlib.import_module("labkit.record")  # the module (labkit.record is the function)


class Lines(logging.Handler):
    """Collects what labkit.selfcheck prints (its log records), whatever the labkit logger's setup."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture()
def printed():
    handler = Lines()
    logger = logging.getLogger("labkit.selfcheck")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.fixture()
def toy_rubric(tmp_path: Path) -> Rubric:
    """A rubric with a public exercise (answer 42), a hidden one, a public check after 'total' and a reflection."""
    path = tmp_path / "toy.yaml"
    path.write_text(textwrap.dedent("""\
        lab: lab1
        checks:
          - {name: exercise_1, type: exercise, number: 1, points: 2, public: true, verify: {type: equals, value: 42},
             pass: "Exercise 1: right, well done.", fail: "Exercise 1: add the two numbers of section 2."}
          - {name: exercise_2, type: exercise, number: 2, points: 1, verify: {type: equals, value: 7},
             pass: "Exercise 2: hidden pass.", fail: "Exercise 2: hidden fail."}
          - {name: total_in_range, type: recorded_number, points: 1, public: true, after: total, key: total, min: 0,
             max: 10, pass: "The total is in range.", fail: "The total must lie between 0 and 10."}
          - {name: reflection, type: manual, record: reflection, points: 2, public: true}
        """))
    return load_rubric(path)


@pytest.fixture()
def checker(toy_rubric: Rubric, tmp_path: Path):
    """A SelfChecker on the toy rubric, listening to record() (no lab setup, no kernel)."""
    recordmod.set_results_dir(tmp_path / "out")
    c = selfcheck.SelfChecker(lab="lab1", rubric=toy_rubric, output_dir=tmp_path / "out", params={"seed": 0})
    recordmod.add_listener("selfcheck", c.on_record)
    yield c
    recordmod.remove_listener("selfcheck")
    recordmod.set_results_dir(None)


# ---------------------------------------------------------------- the rubric side

def test_public_flag_trigger_and_defaults(toy_rubric: Rubric) -> None:
    by = {c.name: c for c in toy_rubric.checks}
    assert [c.name for c in toy_rubric.public_checks] == ["exercise_1", "total_in_range", "reflection"]
    assert not by["exercise_2"].public  # hidden unless the rubric says public
    assert (by["exercise_1"].trigger, by["total_in_range"].trigger, by["reflection"].trigger) == (
        "exercise_1", "total", "reflection")
    assert "public" not in by["exercise_1"].params and "after" not in by["total_in_range"].params
    assert by["reflection"].manual and not by["exercise_1"].manual


@pytest.mark.parametrize("entry,needle", [
    ("{name: a, type: ran_to_completion, points: 1, public: true}", "nothing triggers it"),
    ("{name: a, type: exercise, number: 1, points: 1, public: yes please}", "expected true or false"),
    ("{name: a, type: ran_to_completion, points: 1, public: true, after: [x]}", "expected the name of a recorded"),
])
def test_bad_public_entries_are_refused(tmp_path: Path, entry: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"lab: lab1\nchecks:\n  - {entry}\n")
    with pytest.raises(LabkitError, match=needle):
        load_rubric(path)


def test_the_labs_rubrics_have_public_exercises_and_a_reflection() -> None:
    for lab in ("lab1", "lab2", "lab3"):
        rub = load_rubric(lab)
        public = {c.name for c in rub.public_checks}
        assert {"exercise_1", "exercise_2", "exercise_3", "reflection"} <= public, lab
        assert all(c.pass_msg and c.fail_msg for c in rub.public_checks if c.type == "exercise"), lab
        # the checks that re-run models on held-out data stay hidden
        assert "adapter_regenerates" not in public and "ran_to_completion" not in public
        assert [c.points for c in rub.checks if c.manual] == [2.0]


# ---------------------------------------------------------------- what a learner sees

def test_verdict_shows_the_rubric_message_never_the_detail() -> None:
    spec = CheckSpec("exercise_1", "exercise", 2, pass_msg="P: right.", fail_msg="F: hint.", params={"number": 1})
    assert selfcheck.verdict_of(spec, Outcome.ok("expected 42")).line() == "✅ self-check: P: right."
    wrong = selfcheck.verdict_of(spec, Outcome.fail("the answer is 42, not 41"))
    assert wrong.kind == "failed" and wrong.line() == "❌ self-check: F: hint."
    partly = selfcheck.verdict_of(spec, Outcome(0.5, "not [0.1, 0.2]"))
    assert partly.kind == "partly" and "F: hint." in partly.message and "0.1" not in partly.message
    assert selfcheck.verdict_of(spec, Outcome.not_answered("Exercise 1 was not answered")).kind == "unanswered"
    person = selfcheck.verdict_of(CheckSpec("reflection", "manual", 2), Outcome.for_a_person("text"))
    assert person.kind == "for_a_person" and "a person grades it (2 points)" in person.message


def test_recording_an_answer_prints_one_verdict(checker, printed) -> None:
    recordmod.record("exercise_1", 41)
    assert printed == ["❌ self-check: Exercise 1: add the two numbers of section 2."]
    assert "42" not in printed[0]
    recordmod.record("exercise_1", 42)
    assert printed[-1] == "✅ self-check: Exercise 1: right, well done."
    recordmod.record("exercise_2", 7)        # hidden: nothing printed
    recordmod.record("something_else", 1)    # no check about it
    assert len(printed) == 2
    recordmod.record("total", 99)            # a public non-exercise check, triggered by its `after`
    assert printed[-1] == "❌ self-check: The total must lie between 0 and 10."
    recordmod.record("reflection", "Few-shot helped because ...")
    assert printed[-1] == "✍ self-check: reflection saved; a person grades it (2 points)."
    recordmod.record("reflection", None)
    assert printed[-1] == "· self-check: reflection is not answered yet."


def test_check_reruns_every_public_check_recorded_so_far(checker, printed, monkeypatch) -> None:
    monkeypatch.setattr(selfcheck, "_active", checker)
    recordmod.record("exercise_1", 42)
    recordmod.record("total", 3)
    printed.clear()
    selfcheck.check()
    table = printed[-1]
    assert "2 of 2 checked pass" in table and "wait for a person" not in table
    assert "exercise_1" in table and "total_in_range" in table and "exercise_2" not in table
    assert "not recorded yet: reflection" in table and "self-checks took" in table
    # the rest of the story: how many more checks and points the grader runs, never which
    assert "1 more check, 1 point, run when your notebook is graded" in table and "exercise_2" not in table
    verdicts = checker.so_far()
    assert [(v.check, v.kind) for v in verdicts] == [("exercise_1", "passed"), ("total_in_range", "passed")]


def test_check_before_setup_says_what_to_run(monkeypatch) -> None:
    monkeypatch.setattr(selfcheck, "_active", None)
    monkeypatch.setattr(selfcheck, "_off_reason", None)
    with pytest.raises(LabkitError, match="start_lab"):
        selfcheck.check()


def test_a_failing_listener_never_fails_record(tmp_path: Path) -> None:
    def boom(name, value):
        raise RuntimeError("listener bug")
    recordmod.set_results_dir(tmp_path)
    recordmod.add_listener("boom", boom)
    try:
        recordmod.record("x", 1)
    finally:
        recordmod.remove_listener("boom")
        recordmod.set_results_dir(None)
    assert json.loads((tmp_path / "results.json").read_text()) == {"x": 1}


def test_a_broken_check_is_a_hint_not_an_error(checker, printed, monkeypatch) -> None:
    from labkit.rubrics import VERIFIERS

    def broken(ctx, answer, value):
        raise KeyError("secret expected value 42")
    monkeypatch.setitem(VERIFIERS, "equals", broken)
    recordmod.record("exercise_1", 42)
    assert printed == ["❌ self-check: Exercise 1: add the two numbers of section 2."]


def test_cached_recomputations_are_dropped_when_the_artifacts_change(checker) -> None:
    ctx = checker._context()
    ctx.cache["expensive"] = 1
    assert checker._context().cache == {"expensive": 1}
    recordmod.record("total", 3)  # results.json changes: not an artifact
    (checker.output_dir / "lab1_prompt_engineering.ipynb").write_text("{}")  # papermill's executed copy: neither
    assert checker._context().cache == {"expensive": 1}
    (checker.output_dir / "generations.csv").write_text("id\n1\n")
    assert checker._context().cache == {}


def test_activate_is_off_in_graded_runs_and_without_a_rubric(tmp_path: Path, monkeypatch, printed) -> None:
    import labkit.rubrics as rubrics

    monkeypatch.setattr(selfcheck, "_active", None)
    monkeypatch.setattr(selfcheck, "_off_reason", None)
    monkeypatch.setenv(selfcheck.ENV, "off")
    assert selfcheck.activate("lab1", tmp_path, {}) is None and selfcheck.active() is None
    selfcheck.check()  # says why, does not raise
    assert "turns them off" in printed[-1]
    monkeypatch.delenv(selfcheck.ENV)
    real = rubrics.load_rubric

    def masked(path):
        raise LabkitError("Rubric is masked here")
    monkeypatch.setattr(rubrics, "load_rubric", masked)
    assert selfcheck.activate("lab1", tmp_path, {}) is None
    assert printed[-1].startswith("self-checks are off: the rubric of lab1 cannot be read here")
    monkeypatch.setattr(rubrics, "load_rubric", real)
    try:
        assert isinstance(selfcheck.activate("lab1", tmp_path, {}), selfcheck.SelfChecker)
    finally:
        recordmod.remove_listener("selfcheck")
