"""Hostile submissions against each isolation level: bubblewrap where it works, ``--isolation rlimits`` always.

The probes attack what issue 17 found open without bubblewrap: the installed
labkit package (through ``labkit.__file__``), the repository's ``labkit/`` and
``data/`` (relative to the imported package, and by absolute path), and the
process table (a daemon in its own session, a double-forked daemon). After
each batch the checkout must be byte-identical, or the batch must have stopped
naming the submission, and no process a probe started may be alive.

If a probe gets through, the module's ``checkout`` fixture puts labkit/ and
data/ back from a copy taken at the start (and the test that saw it fails).
"""
from __future__ import annotations

import hashlib
import secrets
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hostile.notebooks import toy_notebook  # noqa: E402

import labkit  # noqa: E402
from labkit import grading as grademod  # noqa: E402
from labkit.config import data_dir  # noqa: E402
from labkit.integrity import TamperedError  # noqa: E402
from labkit.record import results_from_notebook  # noqa: E402
from labkit.sandbox import Limits, bwrap_works  # noqa: E402

HERE = Path(__file__).parent
TOY_RUBRIC = HERE / "hostile" / "toy_rubric.yaml"
LIMITS = Limits(memory_mb=1024, output_mb=4, max_processes=32)
MARK = f"labkit-probe-{secrets.token_hex(4)}"
PACKAGE = Path(labkit.__file__).resolve().parent
DATA = data_dir().resolve()
ISOLATIONS = [pytest.param("bwrap", marks=pytest.mark.skipif(not bwrap_works()[0], reason=bwrap_works()[1])),
              "rlimits"]

PROBES = {
    "good": None,
    "rewrites_package": (
        "import labkit, pathlib\np = pathlib.Path(labkit.__file__)\n"
        "try:\n    p.write_text(p.read_text() + '\\n# {mark}\\n')\n    record('package_write', str(p))\n"
        "except Exception as e:\n    record('package_write', 'blocked: ' + type(e).__name__)"),
    "writes_repo": (
        "import labkit, pathlib\nroot = pathlib.Path(labkit.__file__).resolve().parents[1]\nwrote = []\n"
        "for rel in ('labkit/rubrics/p_{mark}.py', 'labkit/p_{mark}.py', 'data/p_{mark}.jsonl'):\n"
        "    try:\n        (root / rel).write_text('x')\n        wrote.append(str(root / rel))\n"
        "    except Exception as e:\n        wrote.append('blocked')\nrecord('repo_writes', wrote)"),
    "session_daemon": (
        "import os, subprocess, time\n"
        "p = subprocess.Popen(['bash', '-c', 'exec -a {mark}-session sleep 300'], start_new_session=True)\n"
        "time.sleep(0.5)\nos.kill(p.pid, 0)\nrecord('daemon_started', os.getsid(p.pid) == p.pid)"),
    "double_fork": (
        "import os, time\nr, w = os.pipe()\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        os.write(w, str(os.getpid()).encode())\n"
        "        os.execvp('bash', ['bash', '-c', 'exec -a {mark}-double sleep 300'])\n    os._exit(0)\n"
        "pid = int(os.read(r, 32))\ntime.sleep(0.5)\nos.kill(pid, 0)\nrecord('daemon_started', True)"),
}


def _snapshot() -> dict[Path, bytes]:
    return {p: p.read_bytes() for root in (PACKAGE, DATA) for p in root.rglob("*") if p.is_file()}


def _digest(snap: dict[Path, bytes]) -> dict[str, str]:
    return {str(p): hashlib.sha256(b).hexdigest() for p, b in snap.items()}


@pytest.fixture(scope="module")
def checkout():
    """labkit/ and data/ as they were; put back (and reported) after the module if a probe got through."""
    before = _snapshot()
    yield before
    now = _snapshot()
    for path in set(now) - set(before):
        path.unlink()
    for path, content in before.items():
        if now.get(path) != content:
            path.write_bytes(content)


def _alive_probes() -> list[str]:
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        if p.info["status"] != psutil.STATUS_ZOMBIE and MARK in " ".join(p.info["cmdline"] or []):
            found.append(f"{p.info['pid']}: {' '.join(p.info['cmdline'])}")
    return found


def _write(folder: Path, cells: dict[str, str | None]) -> None:
    folder.mkdir(parents=True)
    for name, cell in cells.items():
        nbformat.write(toy_notebook(extra=cell.replace("{mark}", MARK) if cell else None), folder / f"{name}.ipynb")


def _recorded(grades: Path, sid: str) -> dict:
    return results_from_notebook(nbformat.read(grades / sid / "executed.ipynb", as_version=4))


@pytest.fixture(scope="module", params=ISOLATIONS)
def probe_batch(request, tmp_path_factory, checkout):
    """The probes graded once per isolation level; what the checkout and the process table look like after."""
    root = tmp_path_factory.mktemp(f"probes-{request.param}")
    _write(root / "subs", PROBES)
    records = grademod.grade_batch(root / "subs", "lab1", root / "grades", rubric=str(TOY_RUBRIC), timeout=60,
                                   workers=2, limits=LIMITS, isolation=request.param, progress=False)
    time.sleep(1)
    return {"isolation": request.param, "records": {r["id"]: r for r in records}, "grades": root / "grades",
            "alive": _alive_probes(), "after": _snapshot()}


def test_every_probe_is_graded(probe_batch) -> None:
    recs = probe_batch["records"]
    assert sorted(recs) == sorted(PROBES)
    for rid, r in recs.items():
        assert r["status"] == "graded" and r["score"] == r["max"] == 5, (rid, r["reason"])
        assert r["isolation"].startswith("bubblewrap" if probe_batch["isolation"] == "bwrap" else "rlimits")


def test_rewriting_the_installed_package_leaves_it_intact(probe_batch, checkout) -> None:
    after = probe_batch["after"]
    init = PACKAGE / "__init__.py"
    assert after[init] == checkout[init], "the submission rewrote the grader's labkit/__init__.py"
    wrote = _recorded(probe_batch["grades"], "rewrites_package")["package_write"]
    if probe_batch["isolation"] == "bwrap":
        assert wrote.startswith("blocked"), wrote  # a read-only mount
    else:  # its private copy (written as root, who ignores its read-only bits; refused for anyone else)
        assert wrote.startswith("blocked: PermissionError") or "/.readonly/" in wrote, wrote


def test_writing_into_the_repository_labkit_and_data_is_contained(probe_batch, checkout) -> None:
    after = probe_batch["after"]
    added = sorted(str(p) for p in set(after) - set(checkout))
    assert not added, f"files added to the checkout: {added}"
    assert _digest(after) == _digest(checkout)
    wrote = _recorded(probe_batch["grades"], "writes_repo")["repo_writes"]
    assert len(wrote) == 3 and not any(w.startswith((str(PACKAGE), str(DATA))) for w in wrote), wrote


@pytest.mark.parametrize("probe", ["session_daemon", "double_fork"])
def test_daemons_do_not_outlive_the_submission(probe_batch, probe: str) -> None:
    assert _recorded(probe_batch["grades"], probe)["daemon_started"] is True  # the probe really got its daemon
    assert not probe_batch["alive"], f"probe processes alive after the batch: {probe_batch['alive']}"
    if probe_batch["isolation"] == "rlimits":  # bubblewrap's PID namespace may have killed it first
        assert any("were killed" in n for n in probe_batch["records"][probe]["notes"]), probe_batch["records"][probe]


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_writing_the_checkout_by_absolute_path(isolation: str, tmp_path: Path, checkout) -> None:
    """bubblewrap blocks it; rlimits cannot, so the batch stops, names the submission and restores nothing."""
    targets = [PACKAGE / f"_probe_{MARK}.py", DATA / f"_probe_{MARK}.jsonl"]
    cell = "".join(f"try:\n    open({str(t)!r}, 'w').write('x')\nexcept OSError as e:\n    print('blocked', e)\n"
                   for t in targets)
    _write(tmp_path / "subs", {"a_tamper": cell, "b_good": None})
    try:
        if isolation == "bwrap":
            recs = {r["id"]: r for r in grademod.grade_batch(
                tmp_path / "subs", "lab1", tmp_path / "g", rubric=str(TOY_RUBRIC), timeout=60, workers=1,
                limits=LIMITS, isolation=isolation, progress=False)}
            assert not any(t.exists() for t in targets)
            assert recs["a_tamper"]["status"] == recs["b_good"]["status"] == "graded"
            return
        with pytest.raises(TamperedError) as err:
            grademod.grade_batch(tmp_path / "subs", "lab1", tmp_path / "g", rubric=str(TOY_RUBRIC), timeout=60,
                                 workers=1, limits=LIMITS, isolation=isolation, progress=False)
        msg = str(err.value)
        assert "'a_tamper'" in msg and "tampered" in msg and "Nothing was restored" in msg
        assert all(f"added: {t}" in msg for t in targets), msg
        assert all(t.exists() for t in targets)  # restored nothing silently
        recs = {r["id"]: r for r in err.value.records}
        assert recs["a_tamper"]["status"] == "tampered" and recs["a_tamper"]["score"] == 0
        assert recs["b_good"]["status"] == "not_graded" and "'a_tamper'" in recs["b_good"]["reason"]
        assert not (tmp_path / "g" / "b_good" / "grade.json").exists()  # a rerun grades it
        assert (tmp_path / "g" / "summary.md").read_text().startswith("> **GRADING STOPPED")
        assert (tmp_path / "g" / "grades.csv").is_file()
    finally:
        for t in targets:
            t.unlink(missing_ok=True)
