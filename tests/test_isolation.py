"""Isolation levels without a kernel: the refusal without bubblewrap, process containment, the tamper check,
the rlimits private view; and the trusted path (grading the project's own executed labs) without bubblewrap."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import psutil
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hostile.notebooks import toy_notebook  # noqa: E402

import labkit  # noqa: E402
from labkit import cli, integrity  # noqa: E402
from labkit import grading as grademod  # noqa: E402
from labkit.config import LabkitError, data_dir, labkit_home, repo_root  # noqa: E402
from labkit.contain import RUN_VAR, Containment, new_run_id  # noqa: E402
from labkit.sandbox import IsolationUnavailable, Sandbox, bwrap_works, resolve_isolation  # noqa: E402

HERE = Path(__file__).parent
TOY_RUBRIC = HERE / "hostile" / "toy_rubric.yaml"


@pytest.fixture
def path_without(monkeypatch, tmp_path):
    """Set PATH to a folder holding only the given fake executables; bwrap_works() re-probes."""
    def make(**scripts: str) -> Path:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        for name, body in scripts.items():
            (bin_dir / name).write_text("#!/bin/sh\n" + body + "\n")
            (bin_dir / name).chmod(0o755)
        monkeypatch.setenv("PATH", str(bin_dir))
        bwrap_works.cache_clear()
        return bin_dir
    yield make
    bwrap_works.cache_clear()


def _would_run(tmp_path: Path) -> Path:
    """A submission that leaves a file behind if it ever runs."""
    flag = tmp_path / "it-ran"
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(toy_notebook(extra=f"open({str(flag)!r}, 'w').write('ran')"), subs / "s.ipynb")
    return flag


# ---------------------------------------------------------------- no silent downgrade

def test_auto_refuses_without_bubblewrap_and_runs_nothing(tmp_path, path_without, capsys) -> None:
    flag = _would_run(tmp_path)
    path_without()
    rc = cli.main(["grade", str(tmp_path / "subs"), "--lab", "lab1", "--out", str(tmp_path / "g"),
                   "--rubric", str(TOY_RUBRIC)])
    err = capsys.readouterr().err
    assert rc != 0 and not flag.exists() and not (tmp_path / "g" / "s").exists()
    for needle in ("bwrap is not installed", "apt-get install bubblewrap", "dnf install bubblewrap",
                   "--isolation rlimits", "reach the network", "Nothing was run"):
        assert needle in err, (needle, err)


@pytest.mark.parametrize("isolation", ["auto", "bwrap"])
def test_installed_but_broken_bubblewrap_refuses(isolation, tmp_path, path_without) -> None:
    flag = _would_run(tmp_path)
    path_without(bwrap="echo 'bwrap: setting up uid map: Permission denied' >&2; exit 1")
    with pytest.raises(IsolationUnavailable, match="installed but cannot create its sandbox") as err:
        grademod.grade_batch(tmp_path / "subs", "lab1", tmp_path / "g", rubric=str(TOY_RUBRIC), isolation=isolation,
                             progress=False)
    assert "uid map: Permission denied" in str(err.value) and "user namespaces" in str(err.value)
    assert not flag.exists()


def test_resolve_isolation(path_without) -> None:
    assert resolve_isolation("rlimits") == "rlimits" and resolve_isolation("none") == "none"
    with pytest.raises(LabkitError, match="Unknown isolation 'chroot'"):
        resolve_isolation("chroot")
    path_without()
    with pytest.raises(IsolationUnavailable):
        Sandbox(Path("/tmp"), isolation="auto")


def test_rlimits_on_a_cluster_is_refused(tmp_path) -> None:
    flag = _would_run(tmp_path)
    with pytest.raises(LabkitError, match="bubblewrap on every worker"):
        grademod.grade_batch(tmp_path / "subs", "lab1", tmp_path / "g", rubric=str(TOY_RUBRIC), isolation="rlimits",
                             scheduler="tcp://127.0.0.1:9", progress=False)
    assert not flag.exists()


def test_trusted_path_needs_no_bubblewrap(tmp_path, path_without, monkeypatch) -> None:
    """`labkit run --grade` (make labs) grades the project's own executed labs: no sandbox, no refusal."""
    from labkit.run import execute
    nb = tmp_path / "lab.ipynb"
    nbformat.write(toy_notebook(), nb)
    path_without()
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    result = execute(nb, tmp_path / "out", lab="lab1", cell_timeout=120, timeout=300)
    assert result.status == "ok", result.message
    rec = grademod.grade_run(result, rubric=str(TOY_RUBRIC))
    assert rec["status"] == "graded" and rec["score"] == rec["max"] == 5
    assert rec["isolation"] == "none (trusted run)"


# ---------------------------------------------------------------- process containment

def _wait_for(mark: str, seconds: float = 10) -> list[psutil.Process]:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        found = [p for p in psutil.process_iter(["cmdline"]) if mark in " ".join(p.info["cmdline"] or [])]
        if found:
            return found
        time.sleep(0.05)
    return []


DAEMON = ("import os, sys\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
          "        os.execvp('bash', ['bash', '-c', 'exec -a ' + sys.argv[1] + ' sleep 300'])\n    os._exit(0)\n")


def test_tag_finds_a_double_forked_daemon() -> None:
    """Not this process's descendant any more: found by the run's tag in its environment, and killed."""
    mark = f"tagged-daemon-{new_run_id()}"
    c = Containment(new_run_id())
    subprocess.run([sys.executable, "-c", DAEMON, mark], env={**os.environ, **c.environment()}, check=True)
    (daemon,) = _wait_for(mark)
    assert daemon.pid not in {p.pid for p in psutil.Process().children(recursive=True)}
    assert c.kill_all() >= 1
    assert not _wait_for(mark, 0.5) and c.killed >= 1


def test_subreaper_adopts_a_daemon_that_dropped_its_tag() -> None:
    """A subreaper (the grader process) finds an orphan that exec'd with an empty environment."""
    mark = f"untagged-daemon-{new_run_id()}"
    script = textwrap.dedent(f"""
        import json, os, subprocess, sys, time
        import psutil
        from labkit.contain import Containment, become_subreaper, tagged
        assert become_subreaper()
        c = Containment()
        daemon = {DAEMON!r}.replace("['bash', '-c'", "['env', '-i', 'bash', '-c'").replace("execvp('bash'", "execvp('env'")
        subprocess.run([sys.executable, "-c", daemon, {mark!r}], env={{**os.environ, **c.environment()}}, check=True)
        time.sleep(0.5)
        def marked():
            return [p for p in psutil.process_iter(["cmdline"])
                    if p.pid != os.getpid() and {mark!r} in " ".join(p.info["cmdline"] or [])]
        orphan = marked()
        out = {{"adopted": [p.ppid() == os.getpid() for p in orphan], "tagged": len(tagged(c.run_id)),
               "killed": c.kill_all()}}
        time.sleep(0.2)
        out["left"] = [p.pid for p in marked()]
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["adopted"] == [True] and out["tagged"] == 0 and out["killed"] >= 1 and out["left"] == [], out


# ---------------------------------------------------------------- tamper check

def test_fingerprint_sees_every_kind_of_change(tmp_path) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("a = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("b = 2\n")
    (tmp_path / "pkg" / "gone.py").write_text("")
    (tmp_path / "pkg" / "link").symlink_to("a.py")
    roots = [integrity.Root(tmp_path / "pkg")]
    before = integrity.fingerprint(roots)
    assert before.changes(integrity.fingerprint(roots)) == []
    st = (tmp_path / "pkg" / "a.py").stat()
    (tmp_path / "pkg" / "a.py").write_text("a = 7\n")           # same size, mtime put back
    os.utime(tmp_path / "pkg" / "a.py", ns=(st.st_atime_ns, st.st_mtime_ns))
    (tmp_path / "pkg" / "sub" / "new.pth").write_text("import os")
    (tmp_path / "pkg" / "gone.py").unlink()
    (tmp_path / "pkg" / "link").unlink()
    (tmp_path / "pkg" / "link").symlink_to("/etc/passwd")
    (tmp_path / "pkg" / "fixtures.lock").write_text("")          # lock files are not content
    p = str(tmp_path / "pkg")
    assert before.changes(integrity.fingerprint(roots)) == [
        f"modified: {p}/a.py", f"removed: {p}/gone.py", f"modified: {p}/link", f"added: {p}/sub/new.pth"]


def test_stat_fingerprint_catches_a_write_with_its_mtime_put_back(tmp_path) -> None:
    """Environment roots are not hashed: (size, inode, mode, ctime) still sees a same-size rewrite."""
    f = tmp_path / "site" / "mod.py"
    f.parent.mkdir()
    f.write_text("x = 1\n")
    roots = [integrity.Root(tmp_path / "site", hashed=False)]
    before = integrity.fingerprint(roots)
    st = f.stat()
    time.sleep(0.01)
    f.write_text("x = 2\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert before.changes(integrity.fingerprint(roots)) == [f"modified: {f}"]


def test_protected_roots_cover_the_grader() -> None:
    roots = {r.path: r.hashed for r in integrity.protected_roots(grademod_rubric())}
    package = Path(labkit.__file__).resolve().parent
    for must in (package, repo_root() / "labkit", data_dir(), labkit_home() / "fixtures", labkit_home() / "cache",
                 TOY_RUBRIC, HERE / "hostile" / "toy_checks.py"):
        assert any(must == r or r in must.parents for r in roots), must
    env = [r for r, hashed in roots.items() if not hashed]
    assert any(r.name == "site-packages" for r in env) and Path(sys.executable).parent in env


def grademod_rubric():
    from labkit.rubrics import load_rubric
    return load_rubric(str(TOY_RUBRIC))


def test_guard_names_who_ran_and_stops(tmp_path) -> None:
    (tmp_path / "p").mkdir()
    guard = integrity.IntegrityGuard([integrity.Root(tmp_path / "p")])
    try:
        assert guard.run("clean", lambda: {"id": "clean"}) == {"id": "clean"} and not guard.stopped
        guard._running.add("neighbour")  # another submission running at the same time
        guard.run("evil", lambda: (tmp_path / "p" / "x.py").write_text("") and {"id": "evil"})
        assert guard.culprits == ["evil", "neighbour"] and "'evil' (or 'neighbour'" in guard.stopped
        assert f"added: {tmp_path / 'p' / 'x.py'}" in guard.stopped
        assert guard.run("later", lambda: pytest.fail("ran after the stop")) is None
        assert guard.not_graded("later", "lab1", 5)["status"] == "not_graded"
        assert guard.void({"id": "evil", "score": 5, "notes": []})["score"] == 0
    finally:
        guard.close()


# ---------------------------------------------------------------- the rlimits private view

def test_rlimits_run_sees_private_read_only_copies(tmp_path) -> None:
    from labkit.rubrics import RUBRIC_DIR
    package = Path(labkit.__file__).resolve().parent
    sb = Sandbox(tmp_path, isolation="rlimits", readable=[package, data_dir()], hidden=[RUBRIC_DIR])
    env = sb.environment()
    copy = sb.view(package)
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(copy.parent) and copy.is_relative_to(tmp_path.resolve())
    assert env["LABKIT_DATA"] == str(sb.view(data_dir())) and any(sb.view(data_dir()).rglob("*.jsonl"))
    assert env[RUN_VAR] == sb.containment.run_id
    assert (copy / "__init__.py").read_bytes() == (package / "__init__.py").read_bytes()
    assert not ((copy / "__init__.py").stat().st_mode & 0o222)
    assert (copy / "rubrics").is_dir() and not any((copy / "rubrics").iterdir())  # masked, as in bubblewrap
    found = subprocess.run([sys.executable, "-c", "import labkit; print(labkit.__file__)"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert found == str(copy / "__init__.py")
