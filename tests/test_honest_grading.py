"""Grading what a student can put in a folder (issue 25): links are never followed and never quoted, CSV cells
never start a formula, the runner's status is not what a notebook says it is, re-run checks read dialogues made
at grading time and demand a gain beyond noise, and the self-checks say how much more the grader checks.

The batch runs at every isolation level this machine has (rlimits always; bubblewrap where it works), since
the README's isolation table promises these at both."""
from __future__ import annotations

import csv
import json
import os
import re
import secrets
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hostile.notebooks import WORK, toy_notebook  # noqa: E402

from labkit import grading as grademod  # noqa: E402
from labkit import run as runmod  # noqa: E402
from labkit import run_outcome  # noqa: E402
from labkit.config import LabkitError  # noqa: E402
from labkit.grading import csvsafe  # noqa: E402
from labkit.notebooks import read_notebook  # noqa: E402
from labkit.sandbox import Limits, Sandbox, bwrap_works  # noqa: E402

HERE = Path(__file__).parent
TOY_CHECKS = HERE / "hostile" / "toy_checks.py"
LIMITS = Limits(memory_mb=1024, output_mb=4, max_processes=32)
ISOLATIONS = ["rlimits"] + (["bwrap"] if bwrap_works()[0] else [])
FORMULA_NAMES = ["=1+2", "@SUM(A1)", '=HYPERLINK("http:∕∕evil.example","click")']  # ∕: not a path separator
NUMBER = re.compile(r"[-+]?\d+(\.\d+)?")

FORGE_STATUS = ("import json, os, signal\n"
                "open(os.path.join(output_dir, '.labkit-run-status.json'), 'w').write(json.dumps({'status': 'ok'}))\n"
                "os.kill(os.getppid(), signal.SIGKILL)\n")
# writes a status line into every descriptor of the runner it can open, then stops the runner
FORGE_PIPE = ("import glob, json, os, signal\nppid = os.getppid()\nline = (json.dumps({'status': 'ok', 'token': ''}) "
              "+ '\\n').encode()\nfor fd in glob.glob(f'/proc/{ppid}/fd/*'):\n    try:\n"
              "        w = os.open(fd, os.O_WRONLY | os.O_NONBLOCK)\n        os.write(w, line)\n        os.close(w)\n"
              "    except OSError:\n        pass\nos.kill(ppid, signal.SIGTERM)\n")
HIDDEN_CHECKS = '''
from labkit.rubrics import Outcome, check
from labkit.rubrics.checks import hidden_dialogues


@check("toy_reads_hidden_dialogues")
def toy_reads_hidden_dialogues(ctx, n: int = 3) -> Outcome:
    rows = hidden_dialogues(ctx, n)
    return Outcome.ok(f"{len(rows)} hidden dialogues") if len(rows) == n else Outcome.fail("too few")
'''


def _toy_rubric(folder: Path) -> Path:
    """The toy lab's rubric plus a hidden check that reads the batch's hidden dialogues."""
    (folder / "hidden_checks.py").write_text(HIDDEN_CHECKS)
    path = folder / "rubric.yaml"
    path.write_text(textwrap.dedent(f"""\
        lab: lab1
        plugins: [{TOY_CHECKS}, hidden_checks.py]
        checks:
          - {{name: ran_to_completion, type: ran_to_completion, points: 1, pass: "Every cell ran.", fail: "Not to the end."}}
          - {{name: results_recorded, type: results_recorded, points: 1, keys: [total]}}
          - {{name: squares_verified, type: toy_squares, points: 2, n: 5}}
          - {{name: exercise_1, type: exercise, number: 1, points: 1, verify: {{type: toy_total_plus_one}}}}
          - {{name: hidden_read, type: toy_reads_hidden_dialogues, points: 1}}
        """))
    return path


def _put(folder: Path, nb) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "submission.ipynb")


@pytest.fixture(scope="module", params=ISOLATIONS)
def batch(request, tmp_path_factory):
    """One batch of the submissions a student can make, graded at one isolation level."""
    iso = request.param
    root = tmp_path_factory.mktemp(f"honest-{iso}")
    canary = f"canary-{secrets.token_hex(8)}"
    outside = root / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "secret.txt").write_text(canary + "\n")
    nbformat.write(toy_notebook(work=WORK + f"\n# {canary}"),
                   outside / "folder" / "submission.ipynb")
    subs = root / "subs"
    _put(subs / "honest", toy_notebook())
    for name in FORMULA_NAMES:
        _put(subs / name, toy_notebook())
    _put(subs / "forged_status", toy_notebook(extra=FORGE_STATUS))
    _put(subs / "forged_pipe", toy_notebook(extra=FORGE_PIPE))
    (subs / "linked").mkdir()
    os.symlink(outside / "secret.txt", subs / "linked" / "submission.ipynb")
    os.symlink(outside / "folder", subs / "linked_folder")
    os.symlink(outside / "secret.txt", subs / "linked_file.ipynb")
    rubric = _toy_rubric(root)
    records = grademod.grade_batch(subs, "lab1", root / "grades", rubric=str(rubric), timeout=60, workers=2,
                                   limits=LIMITS, isolation=iso, progress=False, hidden_seed=123_456_789)
    return {"root": root, "grades": root / "grades", "canary": canary, "iso": iso, "subs": subs,
            "rubric": rubric, "records": {r["id"]: r for r in records}}


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_a_linked_submission_gets_a_reason_and_nothing_of_its_target(batch) -> None:
    recs = batch["records"]
    for sid in ("linked", "linked_folder", "linked_file"):
        r = recs[sid]
        assert r["status"] == "error" and "symbolic link" in r["reason"], r
        assert r["score"] == 0 and r["checks"] == []
    leaks = [p for p in _files(batch["grades"]) if batch["canary"].encode() in p.read_bytes()]
    assert not leaks, f"the linked files' content reached {leaks}"


def test_no_csv_cell_starts_a_formula_and_ids_stay_exact(batch) -> None:
    csvs = sorted(batch["grades"].glob("*.csv"))
    assert {p.name for p in csvs} >= {"grades.csv", "check_pass_rates.csv", "gradebook.csv"}
    for path in csvs:
        for row in csv.reader(open(path, encoding="utf-8")):
            bad = [c for c in row if c and c[0] in "=+-@\t\r" and not NUMBER.fullmatch(c)]
            assert not bad, f"{path.name}: {bad}"
    rows = list(csv.DictReader(open(batch["grades"] / "grades.csv", encoding="utf-8")))
    assert {csvsafe.uncell(r["id"]) for r in rows} == set(batch["records"])
    for name in FORMULA_NAMES:  # the names are only a name: graded like the honest one
        rec = batch["records"][name]
        assert rec["score"] == batch["records"]["honest"]["score"] == 6, rec
        folder = batch["grades"] / rec["folder"]
        assert json.loads((folder / "grade.json").read_text())["id"] == name
        assert f"# Feedback for {name} " in (folder / "feedback.md").read_text()


@pytest.mark.parametrize("sid", ["forged_status", "forged_pipe"])
def test_a_forged_runner_status_is_not_a_clean_run(batch, sid: str) -> None:
    r = batch["records"][sid]
    assert r["status"] == "crashed" and "runner was killed" in r["reason"], r
    ran = next(c for c in r["checks"] if c["name"] == "ran_to_completion")
    assert ran["points"] == 0 and not ran["passed"]
    assert r["score"] < r["max"]
    assert "Every cell ran." not in (batch["grades"] / r["folder"] / "feedback.md").read_text()


def test_the_batch_seed_is_recorded_for_the_instructor_only(batch) -> None:
    seed = "123456789"
    honest = batch["records"]["honest"]
    assert honest["hidden_seed"] == 123_456_789 and "seed 123456789" in honest["hidden_data"]
    assert next(c for c in honest["checks"] if c["name"] == "hidden_read")["passed"]
    assert f"--hidden-seed {seed}" in (batch["grades"] / "summary.md").read_text()
    for name in ("feedback.md", "results.json"):  # what students get back
        assert seed not in (batch["grades"] / "honest" / name).read_text()


def test_more_submissions_reuse_the_batch_seed_and_force_draws_a_new_one(batch, tmp_path: Path) -> None:
    if batch["iso"] != ISOLATIONS[0]:
        pytest.skip("the seed's bookkeeping does not depend on the isolation")
    subs = tmp_path / "subs"
    _put(subs / "late", toy_notebook())
    out = tmp_path / "grades"
    first = grademod.grade_batch(subs, "lab1", out, rubric=str(batch["rubric"]), timeout=60, limits=LIMITS,
                                 isolation="rlimits", progress=False)
    seed = first[0]["hidden_seed"]
    assert isinstance(seed, int) and seed > 0
    _put(subs / "later", toy_notebook())
    again = {r["id"]: r for r in grademod.grade_batch(subs, "lab1", out, rubric=str(batch["rubric"]), timeout=60,
                                                      limits=LIMITS, isolation="rlimits", progress=False)}
    assert again["late"].get("skipped") and again["later"]["hidden_seed"] == seed


# ---------------------------------------------------------------- reading a notebook

def test_a_notebook_that_is_not_json_is_named_never_quoted(tmp_path: Path) -> None:
    canary = "canary-" + secrets.token_hex(6)
    for data in (canary.encode(), b'{"cells": [' + canary.encode(), b"\xff" + canary.encode(),
                 json.dumps({"cells": [canary]}).encode(), json.dumps({"cells": [], "nbformat": canary}).encode()):
        path = tmp_path / "submission.ipynb"
        path.write_bytes(data)
        with pytest.raises(LabkitError) as err:
            read_notebook(path, name="submission.ipynb")
        assert canary not in str(err.value) and "submission.ipynb" in str(err.value), str(err.value)
    path.write_bytes(b'{"cells": [\n  oops')
    with pytest.raises(LabkitError, match="line 2, column 3"):
        read_notebook(path)


def test_the_graders_reads_refuse_links_and_huge_files(tmp_path: Path) -> None:
    real = tmp_path / "real.ipynb"
    nbformat.write(toy_notebook(), real)
    link = tmp_path / "link.ipynb"
    link.symlink_to(real)
    assert read_notebook(link).cells  # the trusted path may follow a link
    with pytest.raises(LabkitError, match="symbolic link"):
        read_notebook(link, follow_links=False)
    real.write_bytes(b" " * (2 * 2**20))
    with pytest.raises(LabkitError, match="more than the 1 MB"):
        read_notebook(real, max_mb=1)


def test_discovery_never_follows_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    nbformat.write(toy_notebook(), outside / "work.ipynb")
    subs = tmp_path / "subs"
    (subs / "a").mkdir(parents=True)
    (subs / "a" / "work.ipynb").symlink_to(outside / "work.ipynb")
    (subs / "b").mkdir()
    nbformat.write(toy_notebook(), subs / "b" / "work.ipynb")
    (subs / "b" / "linked_dir").symlink_to(outside)  # a linked folder beside a real notebook: left out
    (subs / "c").symlink_to(outside)
    (subs / "d.ipynb").symlink_to(outside / "work.ipynb")
    (subs / "notes.txt").symlink_to(outside / "work.ipynb")  # not a submission: ignored
    found = {s.id: s for s in grademod.discover(subs)}
    assert set(found) == {"a", "b", "c", "d"}
    for sid in ("a", "c", "d"):
        assert found[sid].notebook is None and "symbolic link" in found[sid].problem
    assert found["b"].notebook and not found["b"].problem


# ---------------------------------------------------------------- CSV cells

@pytest.mark.parametrize("text", ["=1+2", "+x", "-x", "@SUM(A1)", "\tx", "\rx", "'=x", "''", "'plain", "plain",
                                  "-1", "4.5", "", "Ana María (final)"])
def test_cells_round_trip_and_never_start_a_formula(text: str) -> None:
    cell = csvsafe.cell(text)
    assert not (cell and cell[0] in "=+-@\t\r" and not NUMBER.fullmatch(cell))
    assert csvsafe.uncell(cell) == text
    assert csvsafe.cell(3) == 3 and csvsafe.cell(-1.5) == -1.5 and csvsafe.cell(None) is None


def test_the_tas_sheet_merges_back_on_formula_ids(tmp_path: Path) -> None:
    from labkit.grading.class_reports import write_class_reports
    from labkit.grading.merge import merge
    from labkit.grading.reports import write_submission_files
    out = tmp_path / "grades"
    ids = ["=1+2", "'quoted", "-1", "@x"]
    for i, sid in enumerate(ids):
        check = {"name": "reflection", "points": None, "max": 2.0, "passed": False, "message": "", "detail": "",
                 "manual": True, "answer": "=cmd|' /C calc'!A0" if i == 0 else "fine", "pending": True}
        rec = {"id": sid, "folder": f"s{i}", "score": 0.0, "max": 2.0, "pending": 2.0, "status": "graded",
               "reason": "", "checks": [check], "notes": [], "isolation": "", "lab": "lab1"}
        write_submission_files(rec, out / f"s{i}")
    write_class_reports(grademod.read_records(out), out)
    text = (out / "manual.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert sorted(csvsafe.uncell(r["student"]) for r in rows) == sorted(ids)
    assert all(not r["answer"].startswith("=") for r in rows)
    for r in rows:
        r["points"] = "2"
    sheet = tmp_path / "sheet.csv"
    with open(sheet, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    records, changed = merge(out, sheet, lab="lab1")
    assert changed == 4 and {r["id"]: r["score"] for r in records} == {sid: 2.0 for sid in ids}


# ---------------------------------------------------------------- the runner's status

def test_run_status_comes_from_the_runner_not_a_file(tmp_path: Path) -> None:
    nb = tmp_path / "lab1_forged.ipynb"
    nbformat.write(toy_notebook(extra=FORGE_STATUS), nb)
    res = runmod.execute(nb, tmp_path / "out", {}, cell_timeout=60, timeout=120)
    assert res.status == "crashed" and "signal 9" in res.message and res.cell == 4
    ok = tmp_path / "lab1_ok.ipynb"
    nbformat.write(toy_notebook(), ok)
    assert runmod.execute(ok, tmp_path / "out2", {}, cell_timeout=60, timeout=120).ok


def test_signals_and_unfinished_cells() -> None:
    class Bwrap:
        isolation = "bwrap"
    assert run_outcome.signal_of(-9) == 9 and run_outcome.signal_of(137, Bwrap()) == 9
    assert run_outcome.signal_of(137) is None and run_outcome.signal_of(0, Bwrap()) is None and run_outcome.signal_of(1) is None
    src = toy_notebook()
    done = nbformat.from_dict(json.loads(json.dumps(src)))
    for c in done.cells:
        c.metadata["papermill"] = {"status": "completed"}
    assert run_outcome.unfinished_cells(done, src) == ""
    done.cells[3].metadata["papermill"]["status"] = "running"
    assert "cell 4" in run_outcome.unfinished_cells(done, src)
    assert run_outcome.unfinished_cells(None, src) == "cannot be read"
    done.cells = done.cells[:3]
    for c in done.cells:
        c.metadata["papermill"] = {"status": "completed"}
    assert "fewer code cells" in run_outcome.unfinished_cells(done, src)


# ---------------------------------------------------------------- hidden data

def _ctx(**kw):
    from labkit.rubrics.checks import GradeContext
    return GradeContext(lab="lab2", status="ok", results={}, artifacts=Path("."), **kw)


def test_hidden_dialogues_are_made_at_grading_time_and_not_in_the_data() -> None:
    from labkit.profiles import get_profile
    from labkit.data import load_dialogsum
    from labkit.insults import is_toxic_text
    from labkit.rubrics.checks import hidden_dialogues
    splits = load_dialogsum(get_profile("offline"))
    public = {d for name in splits for d in splits[name]["dialogue"]}
    a, b, c = _ctx(hidden_seed=11), _ctx(hidden_seed=11), _ctx(hidden_seed=12)
    rows = hidden_dialogues(a, 24)
    assert len(rows) == 24 and not {r["dialogue"] for r in rows} & public
    assert rows == hidden_dialogues(b, 24) and rows != hidden_dialogues(c, 24)
    assert "seed 11" in a.hidden_source and "generated at grading time" in a.hidden_source
    rude = hidden_dialogues(a, 40, toxic_only=True)
    assert len(rude) == 40 and all(is_toxic_text(r["summary"]) for r in rude)
    drawn = _ctx()
    hidden_dialogues(drawn, 2)
    assert isinstance(drawn.hidden_seed, int)  # a context without a seed draws one (and keeps it)


def test_a_rubric_can_name_an_instructors_hidden_file_and_the_sandbox_masks_it(tmp_path: Path) -> None:
    from labkit.grading.worker import GradeOptions, _make_sandbox
    from labkit.rubrics import load_rubric
    from labkit.rubrics.checks import hidden_dialogues
    hidden = tmp_path / "hidden.jsonl"
    hidden.write_text("".join(json.dumps({"id": f"h{i}", "dialogue": f"#Person1#: hi {i}", "summary": "s"}) + "\n"
                              for i in range(5)))
    rubric = tmp_path / "r.yaml"
    rubric.write_text(f"lab: lab1\nhidden_data: {hidden}\nchecks:\n  - {{name: a, type: ran_to_completion}}\n")
    rub = load_rubric(rubric)
    assert rub.hidden_data == str(hidden) and str(hidden) in rub.hidden_paths
    ctx = _ctx(hidden_data=rub.hidden_data)
    assert [r["id"] for r in hidden_dialogues(ctx, 3)] == ["h0", "h1", "h2"] and "hidden.jsonl" in ctx.hidden_source
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    sandbox = _make_sandbox(scratch, rub, GradeOptions(lab="lab1", out=str(tmp_path), isolation="rlimits"))
    assert str(hidden) in [str(h) for h in sandbox.hidden]
    bad = tmp_path / "bad.yaml"
    bad.write_text("lab: lab1\nhidden_data: [1, 2]\nchecks:\n  - {name: a, type: ran_to_completion}\n")
    with pytest.raises(LabkitError, match="hidden_data"):
        load_rubric(bad)


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_hidden_paths_are_out_of_a_submissions_reach(isolation: str, tmp_path: Path) -> None:
    """What the README promises at each level: bubblewrap masks a hidden file inside a readable folder; under
    rlimits the private copy the run reads leaves it out."""
    import subprocess
    shown = tmp_path / "shown"
    shown.mkdir()
    (shown / "public.jsonl").write_text("public\n")
    (shown / "hidden.jsonl").write_text("HIDDEN-ROW\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    sb = Sandbox(scratch, isolation=isolation, readable=[shown], hidden=[shown / "hidden.jsonl"])
    env = sb.environment()
    where = sb.view(shown)
    script = (f"for f in {where}/public.jsonl {where}/hidden.jsonl; do cat $f 2>/dev/null || echo missing; done")
    out = subprocess.run(sb.command(["bash", "-c", script]), env=env, cwd=scratch, capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["public", "missing"] or (isolation == "bwrap" and out.stdout.split() == ["public"]), out


# ---------------------------------------------------------------- the margin

def test_significant_gain_is_zero_for_no_change_and_holds_for_a_real_one() -> None:
    import numpy as np

    from labkit.rubrics.checks import significant_gain
    assert significant_gain(np.zeros(32))[0] is False
    assert significant_gain([])[0] is False
    rng = np.random.default_rng(0)
    hits = sum(significant_gain(np.random.default_rng(s).normal(0.0, 0.1, 32))[0] for s in range(200))
    assert hits <= 20  # at most ~5% of pure-noise draws clear a one-sided 95% bound (bootstrap slack allowed)
    passed, mean, low = significant_gain(rng.normal(0.15, 0.1, 32))
    assert passed and 0 < low < mean
    assert not significant_gain(rng.normal(0.15, 0.1, 32), min_gain=0.5)[0]


# ---------------------------------------------------------------- self-checks and the release

def test_self_checks_say_how_many_more_checks_and_points_come() -> None:
    from labkit.rubrics import load_rubric
    from labkit.selfcheck import still_to_come
    for lab in ("lab1", "lab2", "lab3"):
        rub = load_rubric(lab)
        hidden = [c for c in rub.checks if not c.public]
        line = still_to_come(rub)
        assert line.startswith(f"{len(hidden)} more checks, {sum(c.points for c in hidden):g} points, run when your "
                               "notebook is graded"), line
        assert not any(c.name in line for c in hidden)  # how many, never what


def test_release_says_where_hidden_data_comes_from(tmp_path: Path, capsys) -> None:
    from labkit.cli import main
    assert main(["release", "lab2", "--out", str(tmp_path / "rel")]) == 0
    out = capsys.readouterr().out
    assert "generated at grading time" in out and "seed" in out and "lab2" in out
    assert sorted(p.name for p in (tmp_path / "rel").iterdir()) == ["README.md", "lab2_fine_tuning.ipynb"]


def test_a_lab3_adapter_that_changes_nothing_earns_nothing(tmp_path: Path, fixtures_manifest) -> None:
    """Lab 3's re-run check once passed an adapter exactly as toxic as the base (``ha <= hb``). A PPO adapter as
    policy_from_summarizer makes it (lora_B = 0: the policy is the reference) now fails at the first look, on
    dialogues generated at grading time, and says why. (A trained one earns the points: the slow lab 3 test
    grades the lab's own adapter with full marks.)"""
    import torch

    from labkit import cached_summarizer
    from labkit.policy import policy_from_summarizer
    from labkit.profiles import get_profile
    from labkit.rubrics import CHECKS
    from labkit.rubrics.checks import GradeContext
    prof = get_profile("offline")
    summarizer = cached_summarizer.lora_summarizer(prof, seed=0, device=torch.device("cpu"), progress=False)
    policy = policy_from_summarizer(summarizer, prof.lora, seed=0)
    policy.model.save_pretrained(tmp_path / "ppo_adapter")
    ctx = GradeContext(lab="lab3", status="ok", results={}, artifacts=tmp_path, hidden_seed=7)
    out = CHECKS["lab3_adapter_regenerates"](ctx, adapter="ppo_adapter", n_hidden=32, max_hidden=256, confidence=0.95)
    assert out.fraction == 0 and not out.forged, out.detail
    assert out.detail.startswith("32 hidden rude dialogues") and "32 of 32 summaries are exactly those" in out.detail
    assert "generated at grading time" in ctx.hidden_source and "seed 7" in ctx.hidden_source
