"""`labkit export`: Canvas's import file from its own gradebook export, the plain CSV and Moodle's; pending points
not counted; unmatched submissions named; no cell a formula. Fast: grade records written by hand."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from labkit.cli import main
from labkit.grading import export
from labkit.grading.discover import safe_name

ROSTER = ('Student,ID,SIS User ID,SIS Login ID,Section,Lab 1 (101),Lab 2 (102),Current Score\n'
          '    Points Possible,,,,,18,20,(read only)\n'
          '"Ana, A",1001,A1,ana,S1,,7,50\n'
          '"Bo, B",1002,B2,bo,S1,,,\n'
          '"López, María",1003,C3,mlopez,S2,,,\n'
          '"=cmd|\' /C calc\'!A0",1004,D4,dee,S1,3,,\n')


def _grades(root: Path, records: list[dict]) -> Path:
    for r in records:
        rec = {"lab": "lab1", "max": 18.0, "pending": 0.0, "status": "ok", "reason": "", "checks": [], **r}
        (root / safe_name(rec["id"])).mkdir(parents=True, exist_ok=True)
        (root / safe_name(rec["id"]) / "grade.json").write_text(json.dumps(rec), encoding="utf-8")
    return root


@pytest.fixture
def grades(tmp_path):
    return _grades(tmp_path / "lab1", [
        {"id": "ana", "score": 14.0, "pending": 2.0},            # by SIS Login ID; reflection not graded yet
        {"id": "1002", "score": 16.5},                           # by Canvas ID
        {"id": "maria_lopez", "score": 9.0},                     # by name (words in any order, no accents)
        {"id": "cy", "score": 12.0},                             # no roster row
        {"id": "=1+2", "score": 1.0, "status": "grader_error", "reason": "grader error: lost"},
    ])


def _read(path: Path) -> list[list[str]]:
    return list(csv.reader(open(path, encoding="utf-8")))


def test_canvas_file_keeps_the_roster_and_fills_the_assignment(tmp_path, grades, capsys):
    (tmp_path / "roster.csv").write_text(ROSTER, encoding="utf-8")
    out = tmp_path / "canvas.csv"
    code = main(["export", str(grades), "--format", "canvas", "--roster", str(tmp_path / "roster.csv"),
                 "--assignment", "Lab 1 (101)", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0
    rows = _read(out)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 1 (101)"]  # no other column
    assert rows[1][0].strip() == "Points Possible" and rows[1][-1] == "18"
    body = {r[3]: r[-1] for r in rows[2:]}
    assert body == {"ana": "14", "bo": "16.5", "mlopez": "9", "dee": ""}  # pending not counted; dee: none
    assert rows[-1][0].startswith("'=")  # a roster cell that is a formula is written as text
    assert "cy" in err and "=1+2" in err and "ana: 2 points pending" in err


def test_canvas_strict_fails_on_an_unmatched_submission_and_adds_a_missing_column(tmp_path, grades, capsys):
    (tmp_path / "roster.csv").write_text(ROSTER, encoding="utf-8")
    args = ["export", str(grades), "--format", "canvas", "--roster", str(tmp_path / "roster.csv"),
            "--assignment", "Lab 1 final", "--out", str(tmp_path / "c.csv")]
    assert main(args + ["--strict"]) == 1
    assert "cy" in capsys.readouterr().err
    rows = _read(tmp_path / "c.csv")
    assert rows[0][-1] == "Lab 1 final" and rows[1][-1] == "18"  # a new column: the rubric's maximum


def test_canvas_needs_a_canvas_roster(tmp_path, grades):
    (tmp_path / "r.csv").write_text("name,email\nana,a@x\n", encoding="utf-8")
    assert main(["export", str(grades), "--format", "canvas", "--roster", str(tmp_path / "r.csv"),
                 "--assignment", "Lab 1", "--out", str(tmp_path / "c.csv")]) == 2
    assert main(["export", str(grades), "--format", "canvas", "--out", str(tmp_path / "c.csv")]) == 2


def test_plain_csv_and_moodle(tmp_path, grades):
    res = export.export_grades(grades, "csv", tmp_path / "g.csv")
    rows = _read(tmp_path / "g.csv")
    assert rows[0] == ["id", "score", "max", "pending", "status"]
    by = {r[0]: r for r in rows[1:]}
    assert by["ana"] == ["ana", "14", "18", "2", "ok"]
    assert by["'=1+2"][1] == "" and by["'=1+2"][4] == "grader_error"  # no number for an ungraded one; no formula
    assert res.rows == 5 and res.not_graded and res.pending
    export.export_grades(grades, "moodle", tmp_path / "m.csv", assignment="Lab 1")
    assert _read(tmp_path / "m.csv")[0] == ["username", "Lab 1"]


def test_name_key_ignores_order_case_accents_and_punctuation():
    assert export.name_key("López, María") == export.name_key("maria_lopez") == export.name_key("MARIA LOPEZ")
    assert export.name_key("Ana, A") != export.name_key("Ana")
