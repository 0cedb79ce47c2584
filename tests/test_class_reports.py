"""The class view: exact student ids, the TA's manual sheet and its merge, what needs a person, the gradebook.

Fast tests on grade records written the way the grader writes them; the end-to-end class run (a real kernel,
the sandbox, a self-check in the learner's cell) is in test_class_workflow.py."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from labkit.config import LabkitError
from labkit.grading import discover, merge_manual, read_records, safe_name, write_class_reports, write_submission_files
from labkit.grading.summary import frequent_failures, needs_a_person
from labkit.run_child import why_stopped


def _check(name: str, points: float | None, max_: float, *, passed: bool | None = None, detail: str = "",
           message: str = "", **extra) -> dict:
    return {"name": name, "points": points, "max": max_, "passed": bool(passed if passed is not None else
            points == max_), "message": message, "detail": detail, "forged": False, "seconds": 0.0, **extra}


def _reflection(answer: str | None) -> dict:
    if answer:
        return _check("reflection", None, 2, passed=False, detail="to be graded by a person", manual=True,
                      answer=answer, pending=True)
    return _check("reflection", 0, 2, detail="reflection was not answered", manual=True, answer="", pending=False)


def _record(sid: str, checks: list[dict], *, status: str = "graded", reason: str = "", lab: str = "lab1",
            notes: list[str] | None = None, changes: list[str] | None = None) -> dict:
    pending = sum(c["max"] for c in checks if c.get("pending"))
    return {"id": sid, "folder": safe_name(sid), "lab": lab, "status": status, "reason": reason,
            "score": sum(c["points"] for c in checks if c["points"] is not None), "max": sum(c["max"] for c in checks),
            "pending": pending, "checks": checks, "notes": notes or [], "changes": changes or [], "isolation": "test",
            "run_seconds": 1.0, "grading_seconds": 1.0}


def _write(out: Path, records: list[dict]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for r in records:
        write_submission_files(r, out / r["folder"])
    write_class_reports(records, out)
    return out


@pytest.fixture()
def grades(tmp_path: Path) -> Path:
    """A lab1 grades folder (grades/lab1) with four students."""
    ex_ok, ex_bad = _check("exercise_1", 2, 2), _check("exercise_1", 0, 2, detail='"no_prompt" is not the best')
    records = [
        _record("Ana María (final)", [_check("ran", 1, 1), ex_ok, _reflection("Few-shot helped beyond noise.")]),
        _record("bob", [_check("ran", 1, 1), ex_bad, _reflection("It did not help.")],
                changes=["cell lab1-load was altered"]),
        _record("carla", [_check("ran", 1, 1), _check("exercise_1", 0, 2, detail="Exercise 1 was not answered"),
                          _reflection(None)]),
        _record("dan", [_check("ran", 0, 1, detail="timed out"), ex_bad, _reflection(None)], status="timeout",
                reason="timed out after 120 s while running cell 7 (id stuck-here)"),
    ]
    return _write(tmp_path / "grades" / "lab1", records)


def _sheet(grades: Path, tmp_path: Path, points: dict[str, str], comment: str = "") -> Path:
    rows = list(csv.DictReader(open(grades / "manual.csv", encoding="utf-8")))
    for r in rows:
        if r["student"] in points:
            r["points"], r["comment"] = points[r["student"]], comment
    path = tmp_path / "sheet.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _scores(grades: Path) -> dict[str, tuple[float, float]]:
    return {r["id"]: (float(r["score"]), float(r["pending"])) for r in csv.DictReader(open(grades / "grades.csv",
                                                                                             encoding="utf-8"))}


# ---------------------------------------------------------------- ids

def test_ids_keep_the_folder_name_and_folders_get_a_safe_form(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    for name in ("Ana María (final)", "a b", "a_b", "ana"):
        (subs / name).mkdir(parents=True)
        (subs / name / "work.ipynb").write_text("{}")
    (subs / "ana.ipynb").write_text("{}")     # a bare notebook beside a folder of the same name
    (subs / "Zoë.ipynb").write_text("{}")
    found = {s.id: s.slug for s in discover(subs)}
    assert found == {"Ana María (final)": "Ana_María_final", "a b": "a_b", "a_b": "a_b_2", "ana": "ana",
                     "ana.ipynb": "ana.ipynb", "Zoë": "Zoë"}


def test_reports_use_the_exact_id(grades: Path) -> None:
    rows = list(csv.DictReader(open(grades / "grades.csv", encoding="utf-8")))
    assert rows[0]["id"] == "Ana María (final)" and list(rows[0]) == ["id", "score", "max", "pending", "status",
                                                                    "reason"]
    assert (grades / "Ana_María_final" / "feedback.md").read_text().startswith("# Feedback for Ana María (final)")
    assert json.loads((grades / "Ana_María_final" / "results.json").read_text())["extra_data"]["student"] == \
        "Ana María (final)"


# ---------------------------------------------------------------- pending, the sheet, the merge

def test_pending_points_show_as_pending_never_zero(grades: Path) -> None:
    assert _scores(grades)["Ana María (final)"] == (3.0, 2.0)
    fb = (grades / "Ana_María_final" / "feedback.md").read_text()
    assert "| ✍ reflection | pending / 2 |" in fb and "2 points pending" in fb
    tests = {t["name"]: t for t in json.loads((grades / "Ana_María_final" / "results.json").read_text())["tests"]}
    assert tests["reflection"]["score"] is None and tests["reflection"]["output"].startswith("pending")
    rates = {r["check"]: r for r in csv.DictReader(open(grades / "check_pass_rates.csv"))}
    assert (rates["reflection"]["graded"], rates["reflection"]["pending"]) == ("2", "2")  # carla, dan: unanswered


def test_manual_sheet_lists_every_answer(grades: Path) -> None:
    rows = {r["student"]: r for r in csv.DictReader(open(grades / "manual.csv", encoding="utf-8"))}
    assert list(next(iter(rows.values()))) == ["student", "question", "answer", "points", "max_points", "comment"]
    assert rows["Ana María (final)"] == {"student": "Ana María (final)", "question": "reflection",
                                         "answer": "Few-shot helped beyond noise.", "points": "", "max_points": "2",
                                         "comment": ""}
    assert (rows["carla"]["points"], rows["carla"]["comment"]) == ("0", "not answered")


def test_merge_adds_exactly_the_points_given_and_touches_nobody_else(grades: Path, tmp_path: Path) -> None:
    before = _scores(grades)
    sheet = _sheet(grades, tmp_path, {"Ana María (final)": "1.5"}, comment="Good use of the interval.")
    records, changed = merge_manual(grades, sheet, lab="lab1")
    after = _scores(grades)
    assert changed == 1
    assert after["Ana María (final)"] == (before["Ana María (final)"][0] + 1.5, 0.0)
    assert {k: v for k, v in after.items() if k != "Ana María (final)"} == \
        {k: v for k, v in before.items() if k != "Ana María (final)"}
    fb = (grades / "Ana_María_final" / "feedback.md").read_text()
    assert "| ❌ reflection | 1.5 / 2 | Good use of the interval. graded by a person |" in fb
    tests = {t["name"]: t for t in json.loads((grades / "Ana_María_final" / "results.json").read_text())["tests"]}
    assert tests["reflection"]["score"] == 1.5
    # merging the same sheet again changes nothing; the regenerated sheet carries the points
    assert merge_manual(grades, sheet, lab="lab1")[1] == 0 and _scores(grades) == after
    row = next(r for r in csv.DictReader(open(grades / "manual.csv", encoding="utf-8"))
               if r["student"] == "Ana María (final)")
    assert (row["points"], row["comment"]) == ("1.5", "Good use of the interval.")
    # a row emptied again is pending again
    merge_manual(grades, _sheet(grades, tmp_path, {"Ana María (final)": ""}), lab="lab1")
    assert _scores(grades)["Ana María (final)"] == before["Ana María (final)"]


@pytest.mark.parametrize("edit,needle", [
    ({"student": "Ana Maria (final)"}, "student 'Ana Maria (final)' has no grade"),
    ({"question": "exercise_1"}, "'exercise_1' is not a hand-graded question of lab1"),
    ({"points": "3"}, "points 3 is outside 0 to 2"),
    ({"points": "two"}, "points 'two' is not a number"),
])
def test_a_bad_sheet_merges_nothing_and_says_which_line(grades: Path, tmp_path: Path, edit: dict,
                                                        needle: str) -> None:
    rows = list(csv.DictReader(open(grades / "manual.csv", encoding="utf-8")))
    rows[1]["points"] = "2"            # a good row that must not be merged either
    rows[0].update(edit)
    sheet = tmp_path / "bad.csv"
    with open(sheet, "w", newline="", encoding="utf-8-sig") as fh:  # a spreadsheet's byte-order mark is fine
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    before = (grades / "grades.csv").read_text()
    with pytest.raises(LabkitError, match="line 2") as err:
        merge_manual(grades, sheet, lab="lab1")
    assert needle in str(err.value) and "nothing merged" in str(err.value)
    assert (grades / "grades.csv").read_text() == before


def test_merge_refuses_another_labs_grades_and_a_sheet_without_points(grades: Path, tmp_path: Path) -> None:
    with pytest.raises(LabkitError, match="holds grades of lab1, not lab2"):
        merge_manual(grades, grades / "manual.csv", lab="lab2")
    (tmp_path / "x.csv").write_text("student,answer\nbob,hi\n")
    with pytest.raises(LabkitError, match="lacks the column"):
        merge_manual(grades, tmp_path / "x.csv", lab="lab1")


def test_a_regrade_keeps_a_persons_points_for_the_same_answer() -> None:
    from labkit.grading.manual import carry_over
    merged = _record("bob", [_check("ran", 1, 1), {**_reflection("It did not help."), "points": 2, "pending": False,
                                                   "passed": True, "graded_by_hand": True, "message": "ok"}])
    again = _record("bob", [_check("ran", 1, 1), _reflection("It did not help.")])
    assert carry_over(merged, again) and (again["score"], again["pending"]) == (3, 0)
    changed = _record("bob", [_check("ran", 1, 1), _reflection("A new answer.")])
    assert not carry_over(merged, changed) and changed["pending"] == 2


# ---------------------------------------------------------------- what needs a person

def test_summary_names_what_needs_a_person_with_reasons(grades: Path) -> None:
    look = {(s, what): reason for s, what, reason in needs_a_person(read_records(grades))}
    assert look[("dan", "timed out")].startswith("timed out after 120 s")
    assert look[("bob", "altered or deleted cells")] == "cell lab1-load was altered"
    assert "2 points of reflection wait for a person" in look[("Ana María (final)", "hand-graded points pending")]
    assert not any(s == "carla" for s, _ in look)  # ran, nothing pending, no changes: nothing to look at
    md = (grades / "summary.md").read_text()
    assert "## Needs a person (3 submissions)" in md
    assert any("dan" in line and "timed out after 120 s" in line for line in md.splitlines())
    assert "### exercise_1: 3 of 4 failed" in md and '- 2 × "no_prompt" is not the best' in md


def test_summary_html_is_self_contained(grades: Path) -> None:
    page = (grades / "summary.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and 'src="data:image/png;base64,iVBOR' in page
    assert "Ana María (final)" in page and "timed out after 120 s" in page
    assert "score_histogram.png" not in page  # nothing to fetch beside it


def test_frequent_failures_count_and_order() -> None:
    recs = [_record(f"s{i}", [_check("ex", 0, 1, detail="A" if i < 3 else "B")]) for i in range(5)]
    recs.append(_record("ok", [_check("ex", 1, 1)]))
    assert frequent_failures(recs) == {"ex": [("A", 3), ("B", 2)]}


# ---------------------------------------------------------------- the gradebook

def test_gradebook_has_one_row_per_student_and_one_column_per_lab(grades: Path) -> None:
    root = grades.parent
    _write(root / "lab2", [_record("bob", [_check("ran", 5, 5)], lab="lab2"),
                           _record("Émile", [_check("ran", 2, 5)], lab="lab2")])
    rows = list(csv.reader(open(root / "gradebook.csv", encoding="utf-8")))
    assert rows[0] == ["student", "lab1", "lab2", "pending"]
    body = {r[0]: r[1:] for r in rows[1:]}
    assert body == {"Ana María (final)": ["3", "", "lab1: 2 points"], "bob": ["1", "5", "lab1: 2 points"],
                    "carla": ["1", "", ""], "dan": ["0", "", ""], "Émile": ["", "2", ""]}
    assert not (grades / "gradebook.csv").exists()  # the root holds it, not each lab's folder


def test_gradebook_of_a_folder_not_named_by_a_lab(tmp_path: Path) -> None:
    out = _write(tmp_path / "grades", [_record("bob", [_check("ran", 1, 1)])])
    assert list(csv.reader(open(out / "gradebook.csv"))) == [["student", "lab1", "pending"], ["bob", "1", ""]]


# ---------------------------------------------------------------- reasons are one readable sentence

def test_a_stopped_process_reason_drops_kernel_warnings() -> None:
    stderr = "\n".join([
        "[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All communication (including code "
        "and outputs) is sent in plain text and is susceptible to eavesdropping.",
        "Kernel is running over TCP without encryption. All communication is sent in plain text",
        "0.00s - Debugger warning: It seems that frozen modules are being used, which may",
        "Traceback (most recent call last):",
        '  File "worker.py", line 3, in <module>',
        "MemoryError: cannot allocate",
        "Executing:  50%|#####     | 2/4 [00:01<00:01,  1.20cell/s]",
    ])
    assert why_stopped(stderr) == "MemoryError: cannot allocate"
    assert why_stopped("[IPKernelApp] WARNING | Kernel is running over TCP without encryption.") == ""
    assert why_stopped("Killed\n") == "Killed"


def test_grading_another_lab_into_a_folder_of_grades_is_refused(grades: Path, tmp_path: Path) -> None:
    from labkit.grading import grade_batch
    (tmp_path / "subs").mkdir()
    with pytest.raises(LabkitError, match=r"already holds grades of lab1.*--out .*grades/lab2"):
        grade_batch(tmp_path / "subs", "lab2", grades, isolation="rlimits", progress=False)
