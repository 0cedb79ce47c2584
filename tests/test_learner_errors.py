"""Errors a learner can cause get a short message that says what to do next.

One test per error (unknown profile, too-large ``n_eval``, the course profile
without a GPU, missing or damaged offline fixtures) asserts the message text; a
papermill run of a small notebook then checks what a learner sees in a real
kernel: each error is ONE line (``labkit.session`` installs an IPython handler for
LabkitError), and the cell still counts as failed for nbclient/papermill/the grader.

"Missing fixtures", for a learner: the offline profile builds absent fixtures by
itself (~2 min), so that is not an error. The error cases are (a) the project's
data/ is missing, so nothing can be built, and (b) a damaged cache (a deleted or
half-copied weight file is rebuilt automatically; anything else that cannot load
says "labkit fixtures --force").
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

import labkit
from labkit.config import LabkitError

ANSI = re.compile(r"\x1b\[[0-9;]*m")
MAX_TRACEBACK_LINES = 3


def assert_learner_message(err: BaseException, *needles: str) -> str:
    """A short, single-paragraph message containing every needle."""
    msg = str(err)
    assert isinstance(err, LabkitError), f"{type(err).__name__} instead of LabkitError: {msg}"
    assert "\n" not in msg and len(msg) <= 400, f"not a short message: {msg!r}"
    for needle in needles:
        assert needle in msg, f"{needle!r} missing from: {msg}"
    return msg


@pytest.fixture
def damaged_home(fixtures_manifest: dict, tmp_path: Path) -> Path:
    """A LABKIT_HOME holding a copy of the built fixtures, for a test to break."""
    from labkit.config import fixture_dir

    home = tmp_path / "labkit-home"
    shutil.copytree(fixture_dir(), home / "fixtures")
    return home


# ----------------------------------------------------------------------------- each error, in process


def test_unknown_profile_names_the_choices_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(LabkitError) as info:
        labkit.start_lab("lab1", profile="ofline", output_dir=tmp_path)
    assert_learner_message(info.value, "Unknown profile 'ofline'", "offline, course", "Did you mean 'offline'?",
                           'Set profile = "offline" in the parameters cell')


def test_too_large_n_eval_gives_the_largest_allowed_value() -> None:
    import datasets

    from labkit.data import take

    split = datasets.Dataset.from_dict({"id": ["a", "b", "c"], "dialogue": ["x"] * 3, "summary": ["y"] * 3})
    with pytest.raises(LabkitError) as info:
        take(split, 10)
    assert_learner_message(info.value, "n_eval=10 is larger than the split, which has 3 rows", "Use n_eval <= 3")
    assert len(take(split, 3)) == 3


def test_course_profile_without_gpu_says_offline_or_allow_cpu(tmp_path: Path) -> None:
    with pytest.raises(LabkitError) as info:
        labkit.start_lab("lab1", profile="course", device="cpu", output_dir=tmp_path)
    assert_learner_message(info.value, "needs a GPU", 'profile = "offline"', "allow_cpu_course = True")
    ctx = labkit.start_lab("lab1", profile="course", device="cpu", allow_cpu_course=True, output_dir=tmp_path)
    assert ctx.profile.name == "course" and ctx.device.type == "cpu"


def test_missing_data_says_how_to_restore_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Nothing installed and no data/ to install from: the offline models cannot exist.
    from labkit import models

    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path / "no-data"))
    with pytest.raises(Exception) as info:
        models.load_tokenizer("offline")
    assert_learner_message(info.value, "missing", "git checkout -- data/original-model", "labkit fixtures --rebuild")


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_damaged_fixture_weights_are_installed_again_not_loaded(
    damage: str, damaged_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labkit import fixtures

    monkeypatch.setenv("LABKIT_HOME", str(damaged_home))
    assert fixtures.is_current(), "an intact copy of the cache should be current"
    weights = damaged_home / "fixtures" / "policy" / "model.safetensors"
    if damage == "deleted":
        weights.unlink()
    else:
        with open(weights, "r+b") as fh:
            fh.truncate(1000)
    # Not current means fixtures.ensure() installs the shipped copy again (seconds) instead of failing to load.
    assert not fixtures.is_current()


def test_unloadable_fixture_says_rebuild(damaged_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit import models

    monkeypatch.setenv("LABKIT_HOME", str(damaged_home))
    (damaged_home / "fixtures" / "policy" / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(Exception) as info:
        models.load_seq2seq("offline", device="cpu")
    assert_learner_message(info.value, "offline fixtures", "labkit fixtures --force", "re-run this cell")


# ----------------------------------------------------------------------------- what a learner sees in a kernel


def _error_notebook(out_dir: Path, empty: Path, damaged_home: Path) -> nbformat.NotebookNode:
    """Learner-style cells, each causing one error; all but the last are tagged
    raises-exception so the run goes on; the last one must stop the run."""
    def cell(source: str, cid: str, tolerated: bool = True) -> nbformat.NotebookNode:
        return nbformat.v4.new_code_cell(source, id=cid, metadata={"tags": ["raises-exception"]} if tolerated else {})

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        cell("import os\nimport labkit\nfrom labkit import data, models", "setup", tolerated=False),
        cell('labkit.start_lab("lab1", profile="ofline")', "unknown-profile"),
        cell(f'ctx = labkit.start_lab("lab1", output_dir=r"{out_dir}")\n'
             'test = data.load_dialogsum(ctx.profile)["test"]\n'
             "data.take(test, 100_000)", "n-eval"),
        cell(f'os.environ.update(LABKIT_HOME=r"{empty / "home"}", LABKIT_DATA=r"{empty / "data"}")\n'
             "try:\n    models.load_seq2seq(ctx.profile)\n"
             "finally:\n    del os.environ['LABKIT_HOME'], os.environ['LABKIT_DATA']", "missing-data"),
        cell(f'os.environ["LABKIT_HOME"] = r"{damaged_home}"\n'
             'try:\n    models.load_seq2seq("offline")\n'
             "finally:\n    del os.environ['LABKIT_HOME']", "damaged-cache"),
        cell('labkit.start_lab("lab1", profile="course", device="cpu")', "course-on-cpu", tolerated=False),
        cell('print("not reached")', "after"),
    ]
    return nb


EXPECTED_IN_KERNEL = {
    "unknown-profile": 'Set profile = "offline"',
    "n-eval": "Use n_eval <= ",
    "missing-data": "git checkout -- data/original-model",
    "damaged-cache": "labkit fixtures --force",
    "course-on-cpu": "needs a GPU",
}


def test_errors_in_a_papermill_run_are_one_line_and_fail_the_cell(damaged_home: Path, tmp_path: Path) -> None:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    (damaged_home / "fixtures" / "policy" / "config.json").write_text("{not json", encoding="utf-8")
    src, out = tmp_path / "errors.ipynb", tmp_path / "errors.out.ipynb"
    nbformat.write(_error_notebook(tmp_path / "outputs", tmp_path / "empty", damaged_home), src)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")} | {"HF_HUB_OFFLINE": "1"}
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        with pytest.raises(PapermillExecutionError) as info:
            pm.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False, cwd=str(tmp_path),
                                start_timeout=120, execution_timeout=300)
    finally:
        os.environ.clear()
        os.environ.update(old)
    # papermill reports the cell that stopped the run, with the learner's message (not an empty one).
    assert info.value.ename == "LabkitError" and "needs a GPU" in info.value.evalue

    cells = {c.id: c for c in nbformat.read(out, as_version=4).cells}
    for cid, needle in EXPECTED_IN_KERNEL.items():
        errors = [o for o in cells[cid].outputs if o.output_type == "error"]
        assert len(errors) == 1, f"{cid}: expected one error output, got {[o.output_type for o in cells[cid].outputs]}"
        err = errors[0]
        assert err.ename == "LabkitError", f"{cid}: {err.ename}: {err.evalue}"
        assert needle in err.evalue, f"{cid}: {needle!r} missing from {err.evalue!r}"
        lines = ANSI.sub("", "\n".join(err.traceback)).splitlines()
        assert len(lines) <= MAX_TRACEBACK_LINES, f"{cid}: a {len(lines)}-line traceback:\n" + "\n".join(lines[:12])
    # The untagged failure stops the run like any failed cell.
    assert cells["course-on-cpu"].metadata["papermill"]["exception"] is True
    assert cells["after"].execution_count is None
