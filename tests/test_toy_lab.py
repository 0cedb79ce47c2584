"""A fourth lab, added without touching labkit: a toy lab in tests/toy_lab/ (notebook, registry entry, rubric pair)
is registered through labkit.labs and run, released and graded through the CLI."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest

from labkit import labs
from labkit.cli import main

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
    assert labs.defaults("lab4", "offline") == {"dataset": labs.defaults("lab1", "offline")["dataset"]}
    assert labs.lab_of_notebook("lab4_word_counts.ipynb") == "lab4"


def test_fourth_lab_runs_releases_and_grades_through_the_cli(fourth_lab, tmp_path, capsys):
    out = tmp_path / "out"
    # run it headless and grade it in place (the trusted path)
    assert main(["run", "lab4", "--out", str(out), "--grade"]) == 0
    results = json.loads((out / "lab4" / "results.json").read_text())
    assert results["run_info"]["lab"] == "lab4" and results["settings"] == labs.defaults("lab4", "offline")
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
