"""A fourth lab, added without touching labkit: a toy lab in tests/toy_lab/ (notebook, registry entry, rubric pair)
is registered through labkit.labs and run, released and graded through the CLI."""
from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import nbformat
import pytest

from labkit import labs
from labkit.cli import main
from labkit.config import LabkitError

TOY = Path(__file__).resolve().parent / "toy_lab"


@pytest.fixture()
def fourth_lab(monkeypatch):
    """lab4 registered by naming its file in LABKIT_LABS (which the kernels and grader processes inherit)."""
    monkeypatch.setenv(labs.EXTRA_LABS_ENV, str(TOY / "labs.yaml"))
    yield labs.get("lab4")
    monkeypatch.delenv(labs.EXTRA_LABS_ENV)
    assert labs.find("lab4") is None  # gone with the variable


def test_the_fourth_lab_is_registered_from_its_own_folder(fourth_lab):
    assert labs.ids() == ["lab1", "lab2", "lab3", "lab4"]
    assert fourth_lab.notebook.parent == fourth_lab.rubric.parent == fourth_lab.checks.parent == TOY
    assert fourth_lab.cell_prefix == "lab4-" and fourth_lab.source == str(TOY / "labs.yaml")
    assert labs.defaults("lab4", "offline") == {"dataset": labs.defaults("lab1", "offline")["dataset"], "n_eval": 12}
    assert labs.defaults("lab4", "course") == {"dataset": "knkarthick/dialogsum", "n_eval": 100}
    assert labs.lab_of_notebook("lab4_word_counts.ipynb") == "lab4"


def test_the_fourth_lab_owns_its_settings(fourth_lab, tmp_path):
    """lab4's knob, declared in its own labs.yaml, goes through the profile, start_lab and the table like a built-in's."""
    from labkit.profiles import get_profile
    from labkit.session import settings_table, start_lab

    section = get_profile("offline").lab4  # a section named after the lab, a dataclass made for it
    assert type(section).__name__ == "Lab4Settings" and section.n_eval == 12 and get_profile("course").lab4.n_eval == 100
    assert dataclasses.fields(section)[0].metadata["why"].startswith("the offline test split is small")
    ns = {"n_eval": None}  # the parameters cell as it stands
    ctx = start_lab("lab4", output_dir=tmp_path / "a", namespace=ns)
    assert ctx.settings["n_eval"] == ns["n_eval"] == ctx.profile.lab4.n_eval == 12
    assert settings_table(ctx).loc["n_eval"].tolist() == ["12", "100"]  # this run beside the course's
    ctx = start_lab("lab4", output_dir=tmp_path / "b", namespace={"n_eval": 3})
    assert ctx.profile.lab4.n_eval == 3 and json.loads((tmp_path / "b" / "results.json").read_text())["settings"] == {
        "dataset": labs.defaults("lab4", "offline")["dataset"], "n_eval": 3}
    with pytest.raises(LabkitError, match=r"start_lab got n_evals, which lab4 does not have; its settings are dataset, "
                                          r"n_eval"):
        start_lab("lab4", output_dir=tmp_path / "c", n_evals=3)
    with pytest.raises(LabkitError, match=r"n_eval = 'many' in lab4's parameters cell is not an integer \(the offline "
                                          r"profile's value is 12\)"):
        start_lab("lab4", output_dir=tmp_path / "d", namespace={"n_eval": "many"})


def test_the_cli_checks_the_fourth_labs_own_knob_before_a_kernel_starts(fourth_lab, tmp_path, capsys):
    for param, why in (("n_evals=3", "Unknown parameter 'n_evals'"), ("n_eval=many", "expects a value of type int")):
        assert main(["run", "lab4", "--out", str(tmp_path), "-p", param]) == 2
        assert why in capsys.readouterr().err
    assert not (tmp_path / "lab4").exists()  # refused before anything ran


def test_fourth_lab_runs_releases_and_grades_through_the_cli(fourth_lab, tmp_path, capsys):
    out = tmp_path / "out"
    # run it headless and grade it in place (the trusted path), with its own knob set from the command line
    assert main(["run", "lab4", "--out", str(out), "--grade", "-p", "n_eval=7"]) == 0
    results = json.loads((out / "lab4" / "results.json").read_text())
    assert results["run_info"]["lab"] == "lab4" and results["settings"] == {**labs.defaults("lab4", "offline"), "n_eval": 7}
    assert len((out / "lab4" / "word_counts.csv").read_text().splitlines()) == 1 + 7
    grade = json.loads((out / "lab4" / "grade" / "grade.json").read_text())
    assert grade["status"] == "graded" and grade["score"] == grade["max"] == 5, grade
    assert "mean_words" in capsys.readouterr().out  # a headline in the run summary

    # release the student edition
    rel = tmp_path / "release"
    assert main(["release", "lab4", "--out", str(rel)]) == 0
    student = nbformat.read(rel / fourth_lab.notebook.name, as_version=4)
    ex1 = next(c for c in student.cells if c.id == "lab4-ex1")
    assert "BEGIN SOLUTION" not in ex1.source and "answer = None" in ex1.source
    assert student.metadata["labkit_release"]["lab"] == "lab4"

    # grade a class: the untouched student edition and the instructor's, sandboxed
    subs = tmp_path / "subs"
    for who, nb in {"untouched": student, "instructor": nbformat.read(fourth_lab.notebook, as_version=4)}.items():
        (subs / who).mkdir(parents=True)
        nbformat.write(nb, str(subs / who / "submission.ipynb"))
    grades = tmp_path / "grades"
    from labkit.sandbox import bwrap_works
    isolation = "bwrap" if bwrap_works()[0] else "rlimits"  # auto refuses without bubblewrap
    assert main(["grade", str(subs), "--lab", "lab4", "--out", str(grades), "--timeout", "300",
                 "--isolation", isolation]) == 0
    rows = {r["id"]: r for r in csv.DictReader(open(grades / "grades.csv"))}
    assert rows["instructor"]["status"] == "graded" and float(rows["instructor"]["score"]) == 5, rows
    assert rows["untouched"]["status"] == "graded" and float(rows["untouched"]["score"]) == 4, rows
    assert "Exercise 1 was not answered" in (grades / "untouched" / "feedback.md").read_text()
    if bwrap_works()[0]:  # the lab's own folder was readable in the sandbox, its rubric pair masked
        assert json.loads((grades / "instructor" / "grade.json").read_text())["isolation"].startswith("bubblewrap")
