"""A class end to end on the toy fourth lab: self-checks in the learner's kernel (instructor, wrong and untouched
student editions), a sandboxed grading run that does not self-check, the TA's sheet merged back through the CLI
without running a notebook, and exact student ids everywhere."""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from labkit import grading, labs, release, selfcheck
from labkit.cli import main
from labkit.run import execute
from labkit.sandbox import Limits, bwrap_works

TOY = Path(__file__).resolve().parent / "toy_lab"
BEST = "bwrap" if bwrap_works()[0] else "rlimits"  # auto refuses without bubblewrap
PASS, FAIL = "Exercise 1: correct.", "Exercise 1: the largest count in word_counts.csv."
SAMPLE = "Long summaries count more words, so the largest count belongs to the most detailed one."


def _cell(cid: str, text: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(text)
    cell["id"] = cid
    return cell


@pytest.fixture(scope="module")
def toy_class(tmp_path_factory):
    """A copy of the toy lab with a public exercise, a reflection graded by a person and a labkit.check() cell,
    registered through LABKIT_LABS (which kernels and grader processes inherit)."""
    root = tmp_path_factory.mktemp("class")
    lab_dir = root / "toy_lab"
    shutil.copytree(TOY, lab_dir)
    rubric = yaml.safe_load((lab_dir / "lab4.yaml").read_text())
    for c in rubric["checks"]:
        c["public"] = c["name"] == "exercise_1"
    rubric["checks"].append({"name": "reflection", "type": "manual", "record": "reflection", "points": 2,
                             "public": True})
    (lab_dir / "lab4.yaml").write_text(yaml.safe_dump(rubric, sort_keys=False, allow_unicode=True))
    path = lab_dir / "lab4_word_counts.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells += [_cell("lab4-reflection", f'### BEGIN SOLUTION\nreflection = "{SAMPLE}"\n### END SOLUTION\n'
                                          'labkit.record("reflection", reflection)'),
                 _cell("lab4-self-check", "labkit.check()")]
    nbformat.write(nb, str(path))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(labs.EXTRA_LABS_ENV, str(lab_dir / "labs.yaml"))
        wrong = nbformat.read(path, as_version=4)
        ex1 = next(c for c in wrong.cells if c.id == "lab4-ex1")
        ex1.source = re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "answer = -1", ex1.source, flags=re.S)
        editions = {"instructor": nbformat.read(path, as_version=4), "wrong": wrong,
                    "untouched": release.release_notebook(nbformat.read(path, as_version=4), "lab4")}
        yield {"root": root, "lab_dir": lab_dir, "notebook": path, "editions": editions, "mp": mp}


def _outputs(nb_path: Path, cid: str) -> str:
    nb = nbformat.read(nb_path, as_version=4)
    cell = next(c for c in nb.cells if c.get("id") == cid)
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _run(toy_class, edition: str, out: Path) -> Path:
    src = toy_class["root"] / f"{edition}.ipynb"
    nbformat.write(toy_class["editions"][edition], str(src))
    result = execute(src, out, {}, lab="lab4", timeout=600)
    assert result.status == "ok", result.message
    return result.output_notebook


def test_self_checks_print_the_rubrics_messages_in_the_learners_cells(toy_class, tmp_path: Path) -> None:
    good = _run(toy_class, "instructor", tmp_path / "good")
    assert f"✅ self-check: {PASS}" in _outputs(good, "lab4-ex1")
    assert "✍ self-check: reflection saved; a person grades it (2 points)." in _outputs(good, "lab4-reflection")
    table = _outputs(good, "lab4-self-check")
    assert "self-checks of lab4: 1 of 1 checked pass; 1 answer(s) wait for a person" in table
    assert "counts_verified" not in table  # hidden checks never run in the kernel
    wrong = _run(toy_class, "wrong", tmp_path / "wrong")
    line = next(ln for ln in _outputs(wrong, "lab4-ex1").splitlines() if "self-check" in ln)
    assert line == f"❌ self-check: {FAIL}"
    longest = max(int(r["words"]) for r in csv.DictReader(open(tmp_path / "wrong" / "lab4" / "word_counts.csv")))
    assert str(longest) not in line  # the hint never holds the expected value


def test_the_untouched_student_edition_self_checks_too(toy_class, tmp_path: Path) -> None:
    nb = _run(toy_class, "untouched", tmp_path / "stu")
    assert "· self-check: exercise_1 is not answered yet." in _outputs(nb, "lab4-ex1")
    assert "· self-check: reflection is not answered yet." in _outputs(nb, "lab4-reflection")
    student = nbformat.writes(toy_class["editions"]["untouched"])
    assert SAMPLE not in student and "lab4_most_words" not in student and "BEGIN SOLUTION" not in student


def test_self_checks_can_be_turned_off(toy_class, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(selfcheck.ENV, "off")
    nb = _run(toy_class, "instructor", tmp_path / "off")
    assert "self-check:" not in _outputs(nb, "lab4-ex1")
    assert "self-checks are off" in _outputs(nb, "lab4-self-check")


@pytest.fixture(scope="module")
def graded(toy_class):
    """The three editions handed in, one under a name with an accent, spaces and brackets, graded sandboxed."""
    subs = toy_class["root"] / "subs"
    names = {"instructor": "Ana María (final)", "wrong": "wrong", "untouched": "untouched"}
    for edition, who in names.items():
        (subs / who).mkdir(parents=True)
        nbformat.write(toy_class["editions"][edition], str(subs / who / "submission.ipynb"))
    out = toy_class["root"] / "grades" / "lab4"
    records = grading.grade_batch(subs, "lab4", out, timeout=300, isolation=BEST, progress=False,
                                  limits=Limits(memory_mb=2048))
    return {"subs": subs, "out": out, "records": {r["id"]: r for r in records}}


def test_grading_keeps_ids_leaves_manual_points_pending_and_does_not_self_check(graded) -> None:
    out, recs = graded["out"], graded["records"]
    assert set(recs) == {"Ana María (final)", "wrong", "untouched"}
    ana = recs["Ana María (final)"]
    assert ana["status"] == "graded" and (ana["score"], ana["pending"], ana["max"]) == (5, 2, 7), ana
    kept = nbformat.read(out / "Ana_María_final" / "executed.ipynb", as_version=4)
    outputs = json.dumps([c.get("outputs", []) for c in kept.cells], ensure_ascii=False)
    assert "self-check:" not in outputs and "self-checks are off" in outputs  # off in the sandbox
    rows = {r["student"]: r for r in csv.DictReader(open(out / "manual.csv", encoding="utf-8"))}
    assert (rows["Ana María (final)"]["answer"], rows["Ana María (final)"]["points"]) == (SAMPLE, "")
    assert (rows["untouched"]["points"], rows["untouched"]["comment"]) == ("0", "not answered")
    summary = (out / "summary.md").read_text()
    assert any("Ana María (final)" in ln and "hand-graded points pending" in ln for ln in summary.splitlines())
    assert (out / "summary.html").read_text().count("data:image/png;base64,") == 1
    book = list(csv.reader(open(out.parent / "gradebook.csv", encoding="utf-8")))
    assert book[0] == ["student", "lab4", "pending"] and ["Ana María (final)", "5", "lab4: 2 points"] in book


def test_the_cli_merges_a_sheet_without_running_a_notebook(graded, tmp_path: Path, capsys) -> None:
    out = graded["out"]
    rows = list(csv.DictReader(open(out / "manual.csv", encoding="utf-8")))
    for r in rows:
        if r["student"] == "Ana María (final)":
            r["points"], r["comment"] = "2", "Clear and right."
    sheet = tmp_path / "sheet.csv"
    with open(sheet, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    before = {r["id"]: float(r["score"]) for r in csv.DictReader(open(out / "grades.csv", encoding="utf-8"))}
    executed = out / "Ana_María_final" / "executed.ipynb"
    stamp = executed.stat().st_mtime_ns
    assert main(["grade", str(graded["subs"]), "--lab", "lab4", "--out", str(out), "--manual", str(sheet)]) == 0
    assert "merged 1 hand-graded answer(s)" in capsys.readouterr().out
    after = {r["id"]: float(r["score"]) for r in csv.DictReader(open(out / "grades.csv", encoding="utf-8"))}
    assert after["Ana María (final)"] == before["Ana María (final)"] + 2
    assert {k: v for k, v in after.items() if k != "Ana María (final)"} == \
        {k: v for k, v in before.items() if k != "Ana María (final)"}
    assert executed.stat().st_mtime_ns == stamp  # nothing ran again
    assert "Clear and right." in (out / "Ana_María_final" / "feedback.md").read_text()
    assert main(["grade", str(graded["subs"]), "--lab", "lab4", "--out", str(out), "--manual", str(sheet),
                 "--force"]) == 2  # --force with --manual is refused, with a reason
