"""Student editions: `labkit release`, solution regions, submission fingerprints.

Runs against small toy labs built here and, where they exist, the real labs/*.ipynb.
"""
from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

from labkit.grading import provenance as prov
from labkit import release as rel
from labkit.cli import main as cli_main
from labkit.config import LabkitError, repo_root
from labkit.notebooks import read_notebook
from labkit.run_params import resolve_labs
from labkit.solutions import cell_source

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
LAB_FILES = {lab: nb.name for lab, nb in resolve_labs(["all"])}  # lab id -> notebook file name (the registry's)


def describe(nb, **kwargs) -> list[str]:
    """How a submission differs from its release, in words (labkit.grading.provenance's changes, as feedback shows them)."""
    return [change.text for change in prov.submission_changes(nb, **kwargs)]


# --------------------------------------------------------------------------- toy labs

def _code(cid: str, text: str, tags: tuple[str, ...] = (), **meta) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(text, metadata={"tags": list(tags), **meta} if tags or meta else {})
    cell["id"] = cid
    return cell


def _md(cid: str, text: str, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(text, metadata={"tags": list(tags)} if tags else {})
    cell["id"] = cid
    return cell


def toy_lab(lab: str = "lab1", *, setup_value: str = "3.0") -> nbformat.NotebookNode:
    """A tiny instructor lab with every kind of solution the release handles."""
    cells = [
        _md(f"{lab}-intro", "# Toy lab\nA lesson about picking the best of a few scores."),
        _code(f"{lab}-parameters", 'profile = "offline"\nseed = 0', ("parameters",)),
        _code(f"{lab}-setup", f"import labkit\nscores = {{'zero_shot': 1.0, 'few_shot': {setup_value}, 'one_shot': 2.0}}"),
        _code(f"{lab}-ex1",
              "# Exercise 1: name the strategy with the highest score.\n"
              "### BEGIN SOLUTION\n"
              "ranked_strategies = sorted(scores, key=scores.get, reverse=True)\n"
              "answer = ranked_strategies[0]\n"
              "### END SOLUTION\n"
              'labkit.record("exercise_1", answer)'),
        _code(f"{lab}-ex2",
              "# Exercise 2: the gain of few-shot over zero-shot, in %.\n"
              "def relative_gain(new, old):\n"
              "    ### BEGIN SOLUTION\n"
              "    return 100.0 * (new - old) / old  # solution arithmetic here\n"
              "    ### END SOLUTION\n"
              "\n"
              "### BEGIN SOLUTION\n"
              "answer = relative_gain(scores['few_shot'], scores['zero_shot'])\n"
              "### END SOLUTION\n"
              'labkit.record("exercise_2", answer)'),
        _md(f"{lab}-ex3-question", "**Exercise 3**: why does few-shot help here? Then pick the runner-up below."),
        _md(f"{lab}-ex3-answer", "The examples in the prompt show the model the expected output format.",
            ("solution",)),
        _code(f"{lab}-ex3-code", "runner_up_strategy = sorted(scores, key=scores.get)[-2]", ("solution",)),
        _code(f"{lab}-ex3-record", 'labkit.record("exercise_3", runner_up_strategy)'),
        _md(f"{lab}-outro", "That's all."),
    ]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})
    nb.nbformat_minor = 5
    nbformat.validate(nb)
    return nb


def write_toy_labs(folder: Path, **kw) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for lab, name in LAB_FILES.items():
        nbformat.write(toy_lab(lab, **kw), str(folder / name))
    return folder


def _with_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy that looks executed, with hidden-data metadata an instructor might keep."""
    nb = copy.deepcopy(nb)
    nb.metadata["grading"] = {"hidden_answer": "few_shot"}
    for n, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.execution_count = n + 1
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="few_shot\n")]
            cell.metadata["execution"] = {"iopub.execute_input": "2026-11-24T10:00:00Z"}
            cell.metadata["grading_note"] = "the answer is few_shot"
    return nb


# --------------------------------------------------------------------------- what the acceptance script checks

def _secret_lines(nb) -> set[str]:
    """Solution lines (>= 20 chars, not comments) that appear nowhere outside a solution."""
    def lines(t):
        return {ln.strip() for ln in t.splitlines() if len(ln.strip()) >= 20 and not ln.strip().startswith("#")}
    secret, other = set(), set()
    for c in nb["cells"]:
        s = cell_source(c)
        tags = c.get("metadata", {}).get("tags", [])
        regions = re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", s, re.S)
        if "solution" in tags:
            regions.append(s)
        for r in regions:
            secret |= lines(r)
        if "solution" not in tags:
            other |= lines(re.sub(r"### BEGIN SOLUTION\n.*?### END SOLUTION", "", s, flags=re.S))
    return secret - other


def _sources(nb) -> str:
    return "\n".join(cell_source(c) for c in nb["cells"])


def _real_labs() -> list[Path]:
    return sorted((repo_root() / "labs").glob("lab[123]_*.ipynb"))


SOURCES = [pytest.param(("toy", None), id="toy")] + [
    pytest.param((p.name[:4], p), id=p.stem) for p in _real_labs()]


def _load(spec) -> tuple[str, nbformat.NotebookNode, str]:
    kind, path = spec
    if path is None:
        return "lab1", _with_outputs(toy_lab("lab1")), "toy"
    return kind, read_notebook(path), str(path)


# --------------------------------------------------------------------------- tests

@pytest.mark.parametrize("spec", SOURCES)
def test_release_leaks_no_solution_and_no_output(spec):
    lab, source, name = _load(spec)
    secret = _secret_lines(source)
    assert secret, f"{name} has no solution regions"
    student = rel.release_notebook(source, lab, name=name)
    text = rel.dumps(student)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    released = _sources(student)
    leaked = [ln for ln in secret if ln in released]
    assert not leaked, f"solution text in the student edition of {name}: {leaked[:3]}"
    # valid nbformat 4, no outputs, same ids in the same order, parameters cell kept
    nbformat.validate(nbformat.reads(text, as_version=4))
    assert student.nbformat == 4
    assert [c.id for c in student.cells] == [c.id for c in source.cells]
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert "execution" not in cell.metadata
    params = [c for c in student.cells if "parameters" in c.metadata.get("tags", [])]
    src_params = [c for c in source.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1 and params[0].source == src_params[0].source
    meta = student.metadata[rel.METADATA_KEY]
    assert prov.release_info(student) == meta and prov.release_info(source) is None
    assert meta["lab"] == lab and meta["version"] == rel.release_version(source)
    assert len(meta["digest"]) == 64 and meta["answer_cells"]


@pytest.mark.parametrize("spec", SOURCES)
def test_put_back_solutions_reproduces_source_code(spec):
    lab, source, name = _load(spec)
    student = rel.release_notebook(source, lab, name=name)
    restored = rel.put_back_solutions(student, source)
    src_code = [(c.id, c.source) for c in source.cells if c.cell_type == "code"]
    assert [(c.id, c.source) for c in restored.cells if c.cell_type == "code"] == src_code
    assert [c.source for c in restored.cells] == [c.source for c in source.cells]
    assert describe(restored, source=source) == []  # setup cells untouched
    assert student.cells != restored.cells  # the release really did remove something


@pytest.mark.parametrize("spec", SOURCES)
def test_exercise_cells_record_the_stubbed_name(spec):
    """Contract: an untouched exercise records the stub's None as is, so "not answered" is
    graded instead of a crash (e.g. `float(answer)` would raise TypeError on None)."""
    import ast

    lab, source, name = _load(spec)
    student = rel.release_notebook(source, lab, name=name)
    exercises = [c for c in student.cells if re.fullmatch(r"lab\d-ex\d+", c.id)]
    assert exercises, f"{name}: no exercise cells with ids like {lab}-ex1"
    for cell in exercises:
        tree = ast.parse(cell.source)
        stubbed = {t.id for node in tree.body if isinstance(node, ast.Assign)
                   and isinstance(node.value, ast.Constant) and node.value.value is None for t in node.targets
                   if isinstance(t, ast.Name)}
        records = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "record"]
        assert records, f"{name}: {cell.id} records nothing"
        for call in records:
            value = call.args[1] if len(call.args) > 1 else None
            assert isinstance(value, ast.Name) and value.id in stubbed, (
                f"{name}: cell {cell.id} records {ast.unparse(value) if value else '?'} — in the student edition "
                f"that must be the stubbed name ({', '.join(sorted(stubbed)) or 'none'}) set to None; "
                f"move any conversion inside the solution region")


@pytest.mark.parametrize("path", _real_labs(), ids=lambda p: p.stem)
def test_student_edition_keeps_self_checks_and_leaks_no_rubric(path):
    """The student edition still records each self-checked answer and the reflection (so labkit's self-checks
    run in the learner's kernel), and holds nothing of the rubric: no check or verifier names of the lab, no
    hidden check's feedback, no sample reflection."""
    from labkit.rubrics import load_rubric

    lab = path.name[:4]
    rubric = load_rubric(lab)
    source = read_notebook(path)
    student = rel.release_notebook(source, lab, name=str(path))
    code = _sources(student)
    text = code + rel.dumps(student)  # the cells as a learner reads them, and the file with its metadata
    for check in rubric.public_checks:
        if check.trigger.startswith("exercise_") or check.manual:
            assert f'labkit.record("{check.trigger}", ' in code, f"{path.name}: {check.trigger} is never recorded"
    assert "reflection = None" in code and "### BEGIN SOLUTION" in _sources(source)
    names = {c.type for c in rubric.checks} | {str((c.params.get("verify") or {}).get("type")) for c in rubric.checks}
    leaked = sorted(n for n in names if n.startswith(f"{lab}_") and n in text)
    assert not leaked, f"{path.name}: rubric names in the student edition: {leaked}"
    hidden_feedback = [m for c in rubric.checks if not c.public for m in (c.pass_msg, c.fail_msg) if m]
    assert hidden_feedback and not [m for m in hidden_feedback if m in text]
    reflection = next(c for c in source.cells if c.get("id") == f"{lab}-reflection")
    sample = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", reflection.source, re.S).group(1)
    assert len(sample) > 100 and sample.strip() not in text


def test_stubs_keep_the_notebook_running():
    student = rel.release_notebook(toy_lab(), "lab1")
    by_id = {c.id: c.source for c in student.cells}
    assert by_id["lab1-ex1"] == ("# Exercise 1: name the strategy with the highest score.\n"
                                 "# YOUR CODE HERE\nanswer = None\n"
                                 'labkit.record("exercise_1", answer)')
    # an indented region keeps its indentation and stays valid Python; the helper name
    # `ranked_strategies` is not needed after the region, so it gets no stub
    assert "    # YOUR CODE HERE\n    pass\n" in by_id["lab1-ex2"]
    assert "ranked_strategies" not in by_id["lab1-ex1"]
    assert by_id["lab1-ex3-answer"] == "YOUR ANSWER HERE"
    # a solution-tagged cell whose name a later cell uses leaves that name as None
    assert by_id["lab1-ex3-code"] == "# YOUR CODE HERE\nrunner_up_strategy = None"
    for cid, text in by_id.items():
        if student.cells[[c.id for c in student.cells].index(cid)].cell_type == "code":
            compile(text, cid, "exec")


def test_release_cli_is_idempotent_and_writes_only_student_files(tmp_path):
    labs = write_toy_labs(tmp_path / "labs")
    for name in LAB_FILES.values():  # executed sources must release the same way
        nbformat.write(_with_outputs(read_notebook(labs / name)), str(labs / name))
    for out in ("a", "b"):
        assert cli_main(["release", "--labs-dir", str(labs), "--out", str(tmp_path / out)]) == 0
    files_a = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files_a == sorted([*LAB_FILES.values(), "README.md"])
    for name in files_a:
        a, b = (tmp_path / "a" / name).read_bytes(), (tmp_path / "b" / name).read_bytes()
        assert a == b, f"{name} differs between two releases"
        text = a.decode()
        assert "hidden_answer" not in text and "grading_note" not in text and "2026-11-24" not in text
    # one lab only; the CLI refuses an unknown lab with a clear error
    assert cli_main(["release", "lab2", "--labs-dir", str(labs), "--out", str(tmp_path / "c")]) == 0
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["README.md", LAB_FILES["lab2"]]
    assert cli_main(["release", "lab7", "--labs-dir", str(labs), "--out", str(tmp_path / "d")]) == 2
    with pytest.raises(LabkitError, match="overwrite the source"):
        rel.release(["lab1"], labs, labs_dir=labs)


def test_altered_added_deleted_cells_are_reported():
    source = toy_lab()
    student = rel.release_notebook(source, "lab1")
    assert describe(student, source=source) == []
    sub = copy.deepcopy(student)
    cells = {c.id: c for c in sub.cells}
    cells["lab1-setup"].source += "\nscores['zero_shot'] = 99.0"
    cells["lab1-ex1"].source = cells["lab1-ex1"].source.replace("answer = None", "answer = 'few_shot'")
    cells["lab1-intro"].source = cells["lab1-intro"].source + "\r\n  "  # whitespace only: not a change
    extra = nbformat.v4.new_code_cell("print('mine')")
    extra["id"] = "my-own-cell"
    injected = nbformat.v4.new_code_cell("profile = 'offline'", metadata={"tags": ["injected-parameters"]})
    injected["id"] = "papermill-injected"
    sub.cells = [c for c in sub.cells if c.id != "lab1-outro"] + [extra]
    sub.cells.insert(2, injected)
    lines = describe(sub, source=source)
    assert "cell lab1-setup was altered" in lines
    assert "cell my-own-cell was added" in lines
    assert "cell lab1-outro was deleted" in lines
    assert not any("lab1-ex1" in ln or "lab1-intro" in ln or "papermill" in ln for ln in lines), lines
    assert not any("older release" in ln for ln in lines)
    review = {c.text for c in prov.submission_changes(sub, source=source) if c.needs_review}
    assert review == {"cell lab1-setup was altered", "cell lab1-outro was deleted"}  # an added cell is no concern
    # deleting an exercise cell is reported too
    sub2 = copy.deepcopy(student)
    sub2.cells = [c for c in sub2.cells if c.id != "lab1-ex2"]
    assert describe(sub2, source=source) == ["exercise cell lab1-ex2 was deleted"]


def test_older_release_is_detected(tmp_path):
    old_source, new_source = toy_lab(setup_value="3.0"), toy_lab(setup_value="2.5")
    old = rel.release_notebook(old_source, "lab1")
    new = rel.release_notebook(new_source, "lab1")
    v_old, v_new = old.metadata[rel.METADATA_KEY]["version"], new.metadata[rel.METADATA_KEY]["version"]
    assert v_old != v_new and v_old.startswith(rel.__version__)
    lines = describe(old, source=new_source)
    assert lines == [f"built from an older release (version {v_old}; current {v_new})"]
    # cells of an old submission are checked against the digests it was released with
    cells = {c.id: c for c in old.cells}
    cells["lab1-parameters"].source = 'profile = "course"\nseed = 0'
    assert describe(old, source=new_source)[1:] == ["cell lab1-parameters was altered"]
    # through the files and the default source lookup as well
    labs = write_toy_labs(tmp_path / "labs", setup_value="2.5")
    path = tmp_path / "old.ipynb"
    path.write_text(rel.dumps(old))
    out = describe(path, labs_dir=labs)
    assert out[0].startswith(f"built from an older release (version {v_old}; current {v_new})")


@pytest.mark.parametrize("text, problem", [
    ("x = 1\n### BEGIN SOLUTION\nanswer = 2\n", "never closed"),
    ("### BEGIN SOLUTION\na = 1\n### BEGIN SOLUTION\nb = 2\n### END SOLUTION\n### END SOLUTION", "cannot nest"),
    ("answer = 2\n### END SOLUTION\nlabkit.record('exercise_1', answer)", "closes no region"),
    ("# BEGIN SOLUTION\nanswer = 2\n# END SOLUTION", "mentions a solution marker"),
])
def test_broken_markers_name_notebook_and_cell(tmp_path, text, problem):
    labs = write_toy_labs(tmp_path / "labs")
    nb = read_notebook(labs / LAB_FILES["lab2"])
    nb.cells[4].source = text
    nbformat.write(nb, str(labs / LAB_FILES["lab2"]))
    with pytest.raises(LabkitError) as err:
        rel.release(["lab1", "lab2"], tmp_path / "out", labs_dir=labs)
    msg = str(err.value)
    assert problem in msg and LAB_FILES["lab2"] in msg and "cell 4" in msg and "lab2-ex2" in msg
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_missing_parameters_cell_and_duplicate_ids_are_refused():
    nb = toy_lab()
    nb.cells[1].metadata["tags"] = []
    with pytest.raises(LabkitError, match="parameters"):
        rel.release_notebook(nb, "lab1")
    nb = toy_lab()
    nb.cells[3]["id"] = nb.cells[2]["id"]
    with pytest.raises(LabkitError, match="repeats the id"):
        rel.release_notebook(nb, "lab1")


@pytest.mark.parametrize("weird", [
    None, "", 42, {}, {"cells": "not a list"}, {"metadata": {rel.METADATA_KEY: "v1"}},
    {"metadata": {rel.METADATA_KEY: {"lab": "lab1", "version": "0+x", "cells": [1, 2]}}, "cells": []},
    {"metadata": {rel.METADATA_KEY: {"lab": "lab9", "version": "0+x"}}, "cells": [None, 3]},
    "/nonexistent/submission.ipynb",
])
def test_describe_submission_never_raises(weird):
    lines = describe(weird, source=toy_lab())
    assert lines and all(isinstance(ln, str) for ln in lines)
    assert any("could not" in ln for ln in lines)


def test_describe_submission_without_release_metadata():
    source = toy_lab()
    assert describe(source, source=source) == []  # the instructor edition itself
    sub = rel.release_notebook(source, "lab1")
    del sub.metadata[rel.METADATA_KEY]
    sub.cells[2].source += "\nscores = {}"
    lines = describe(sub, source=source)
    assert "metadata is missing" in lines[0] and lines[1:] == ["cell lab1-setup was altered"]


def test_describe_submission_without_ids():
    source = toy_lab()
    sub = json.loads(rel.dumps(rel.release_notebook(source, "lab1")))
    for c in sub["cells"]:
        del c["id"]
    lines = describe(sub, source=source)
    assert any("carry no ids" in ln for ln in lines)


def test_untouched_toy_release_runs_headless_and_records_none(tmp_path):
    """The released toy lab executes with papermill; put-back solutions record the answers."""
    papermill = pytest.importorskip("papermill")
    from labkit.record import results_from_notebook

    source = toy_lab()
    student = rel.release_notebook(source, "lab1")
    runs = {"student": student, "restored": rel.put_back_solutions(student, source), "source": source}
    recorded = {}
    for name, nb in runs.items():
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(nb, str(path))
        done = papermill.execute_notebook(str(path), str(tmp_path / f"{name}.out.ipynb"), kernel_name="python3",
                                          parameters={"seed": 1}, progress_bar=False, cwd=str(tmp_path))
        recorded[name] = results_from_notebook(done)
    assert {k: recorded["student"].get(k) for k in ("exercise_1", "exercise_2", "exercise_3")} == \
        {"exercise_1": None, "exercise_2": None, "exercise_3": None}
    assert recorded["restored"]["exercise_1"] == "few_shot"
    assert recorded["restored"]["exercise_2"] == pytest.approx(200.0)
    assert recorded["restored"]["exercise_3"] == "one_shot"
    assert {k: recorded["source"][k] for k in ("exercise_1", "exercise_2", "exercise_3")} == \
        {k: recorded["restored"][k] for k in ("exercise_1", "exercise_2", "exercise_3")}


# --------------------------------------------------------------------------- end to end on the real labs

# Each lab shortened to what releasing and grading need (the lesson's own bars are the labs' slow tests).
SHORT_RUNS = {"lab1": {"n_eval": 8},
              "lab2": {"max_steps": 20, "n_eval": 16},
              "lab3": {"ppo_steps": 2, "batch_size": 8, "mini_batch_size": 4, "n_eval": 16, "min_new_tokens": 8,
                       "max_new_tokens": 12, "dpo_steps": 2, "dpo_prompts": 8, "dpo_samples_per_prompt": 2,
                       "dpo_batch_size": 4}}
# Shortened runs train adapters too weak for lab 3's re-run checks, which then look at every size up to the
# rubric's max_hidden (~20 minutes for three submissions): this test's rubric stops them at the first look. The
# checks' own bars are the labs' slow tests and tests/test_honest_grading.py.
SHORT_RUBRIC = {"lab3": {"lab3_adapter_regenerates": {"max_hidden": 128}}}


def _short_rubric(lab: str, folder: Path) -> list[str]:
    """``--rubric FILE`` for the shortened runs: the lab's default rubric with SHORT_RUBRIC's settings."""
    import yaml

    from labkit.rubrics import default_rubric_path
    if lab not in SHORT_RUBRIC:
        return []
    rubric = yaml.safe_load(default_rubric_path(lab).read_text(encoding="utf-8"))
    for check in rubric["checks"]:
        check.update(SHORT_RUBRIC[lab].get(check["type"], {}))
    path = folder / f"{lab}-short.yaml"
    path.write_text(yaml.safe_dump(rubric, sort_keys=False), encoding="utf-8")
    return ["--rubric", str(path)]

@pytest.mark.slow
@pytest.mark.parametrize("source_path", _real_labs(), ids=lambda p: p.stem)
def test_released_lab_grades_partial_and_restored_grades_full(tmp_path, source_path):
    """Untouched student edition: full non-exercise points, 0 + "not answered" per exercise;
    solutions put back: full marks, the same score as the instructor edition."""
    import csv
    import subprocess

    pytest.importorskip("labkit.grading")
    from labkit.sandbox import bwrap_works
    lab = source_path.name[:4]
    out = tmp_path / "rel"
    assert cli_main(["release", lab, "--out", str(out)]) == 0
    student = read_notebook(out / source_path.name)
    source = read_notebook(source_path)
    subs = tmp_path / "subs"
    for who, nb in {"untouched": student, "restored": rel.put_back_solutions(student, source),
                    "instructor": source}.items():
        (subs / who).mkdir(parents=True)
        nbformat.write(nb, str(subs / who / "submission.ipynb"))
    grades = tmp_path / "g"
    shorter = [arg for name, value in SHORT_RUNS[lab].items() for arg in ("-p", f"{name}={value}")]
    proc = subprocess.run([str(Path(sys.executable).with_name("labkit")), "grade", str(subs), "--lab", lab,
                           "--out", str(grades), "--timeout", "1200", "--workers", "1", *shorter,
                           *_short_rubric(lab, tmp_path),
                           "--isolation", "bwrap" if bwrap_works()[0] else "rlimits"],
                          capture_output=True, text=True, timeout=4000)
    assert (grades / "grades.csv").is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = {r["id"]: r for r in csv.DictReader(open(grades / "grades.csv"))}
    score = {who: float(rows[who]["score"]) for who in ("untouched", "restored", "instructor")}
    pending = {who: float(rows[who]["pending"]) for who in ("untouched", "restored", "instructor")}
    # Shortened runs (the lesson's bars are test_grade's full-marks test): the restored edition scores what the
    # instructor's does, the sample reflection waiting for a person in both.
    assert pending["instructor"] == 2, rows["instructor"]
    assert (score["restored"], pending["restored"]) == (score["instructor"], 2), rows["restored"]
    exercises = json.loads((grades / "untouched" / "results.json").read_text())["tests"]
    ex_tests = [t for t in exercises if t["name"].startswith("exercise") or t["name"] == "reflection"]
    n_exercises = sum(1 for c in source.cells if re.fullmatch(rf"{lab}-ex\d+", c.get("id", "")))
    assert len(ex_tests) == n_exercises + 1 and all(t["score"] == 0 for t in ex_tests) and pending["untouched"] == 0
    answered = json.loads((grades / "instructor" / "results.json").read_text())["tests"]
    ex_points = sum(t["score"] for t in answered if t["name"].startswith("exercise"))
    assert ex_points == sum(t["max_score"] for t in ex_tests if t["name"] != "reflection")  # the answers score
    assert score["untouched"] == pytest.approx(score["instructor"] - ex_points)  # and only the answers differ
    feedback = (grades / "untouched" / "feedback.md").read_text()
    n_ex = len(ex_tests)
    assert feedback.lower().count("not answered") >= n_ex, feedback
    assert "was altered" not in feedback and "older release" not in feedback, feedback
