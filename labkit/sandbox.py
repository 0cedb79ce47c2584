"""Isolation for running untrusted notebooks: bubblewrap, or an explicitly accepted rlimits fallback.

A :class:`Sandbox` turns a command line into one that runs

- ``bwrap`` (what ``auto``, the default, means): inside bubblewrap with a
  read-only system, Python and labkit; the fixtures cache read-only; the
  rubrics folder and any hidden data masked; the scratch folder the only
  writable place; no network; its own PID namespace (every process dies with
  the sandbox); no capabilities. Where bubblewrap is missing or does not
  work, ``auto`` and ``bwrap`` *refuse* (:class:`IsolationUnavailable`, with
  what is unprotected and how to install it): no silent downgrade;
- ``rlimits`` (only when asked for): no namespaces, so the run has the
  grader's user rights. It imports labkit, reads data/ and loads the fixtures
  from private read-only copies in its scratch folder (rubrics and hidden data
  left out), so a write through ``labkit.__file__`` lands in a copy; writes by
  absolute path are caught by :mod:`labkit.integrity`, which stops the batch;
- always: ``resource`` rlimits set in a ``preexec_fn`` (address space, file
  size, open files, no core dumps), an environment without credentials, and
  :class:`labkit.contain.Containment`, which finds every process of the run,
  even one that left its session or was double-forked, and kills it when the
  run ends.

The process count and the resident memory of the whole process tree are
watched from outside by :class:`Watchdog` (RLIMIT_NPROC is not enforced for
root, nor inside bwrap's user namespace on this kernel), which kills the tree
when a limit is passed and says which one.
"""
from __future__ import annotations

import fnmatch
import functools
import logging
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from labkit.config import LabkitError
from labkit.contain import Containment

log = logging.getLogger(__name__)

# Environment variables a submission never sees (credentials of any kind).
SECRET_PATTERNS = ("*TOKEN*", "*KEY*", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*CREDENTIAL*",
                   "AWS_*", "HF_TOKEN*", "HUGGING_FACE_HUB_TOKEN", "GITHUB_*", "GH_*", "SSH_*",
                   "GOOGLE_*", "AZURE_*", "OPENAI_*", "ANTHROPIC_*", "DASK_*", "*_AUTH*")
# Variables forced on for every sandboxed run: never reach the network.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", "PYTHONDONTWRITEBYTECODE": "1",
               "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run."""

    memory_mb: int = 4096          # resident memory of the whole tree (watchdog) and RLIMIT_AS per process (+ slack)
    file_size_mb: int = 512        # RLIMIT_FSIZE: largest file a process may write
    max_processes: int = 32        # processes in the tree (watchdog)
    output_mb: float = 8.0         # notebook outputs kept; more is truncated (enforced by labkit.run_engine)
    open_files: int = 1024         # RLIMIT_NOFILE
    address_space_slack_mb: int = 3072  # torch reserves address space it never touches


def clean_environment(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """A copy of ``base`` (default os.environ) without credentials, offline, plus ``extra``."""
    env = {}
    for key, value in (os.environ if base is None else base).items():
        upper = key.upper()
        if any(fnmatch.fnmatchcase(upper, pat) for pat in SECRET_PATTERNS):
            continue
        env[key] = value
    env.update(OFFLINE_ENV)
    env.update(extra)
    return env


def _set_rlimits(limits: Limits) -> None:
    # Runs in the child between fork and exec: only async-signal-safe-ish work.
    mb = 1024 * 1024
    aspace = (limits.memory_mb + limits.address_space_slack_mb) * mb
    for which, value in ((resource.RLIMIT_AS, aspace),
                         (resource.RLIMIT_FSIZE, limits.file_size_mb * mb),
                         (resource.RLIMIT_NOFILE, limits.open_files),
                         (resource.RLIMIT_CORE, 0)):
        try:
            soft, hard = resource.getrlimit(which)
            cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (cap, cap))
        except (ValueError, OSError):
            pass


ISOLATIONS = ("auto", "bwrap", "rlimits")   # what `labkit grade --isolation` accepts ("none" is the trusted path)


class IsolationUnavailable(LabkitError):
    """The isolation asked for (``auto``/``bwrap``) cannot run on this machine."""


@functools.lru_cache(maxsize=None)
def bwrap_works() -> tuple[bool, str]:
    """Whether ``bwrap`` is on PATH and can build the sandbox here (namespaces allowed).

    Returns (ok, why-not)."""
    exe = shutil.which("bwrap")
    if not exe:
        return False, "bwrap is not installed (not found on PATH)"
    try:
        probe = subprocess.run(
            [exe, "--unshare-all", "--uid", "65534", "--gid", "65534", "--die-with-parent",
             "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--", "true"],
            capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, f"{exe} is installed but could not start: {err}"
    if probe.returncode != 0:
        return False, (f"{exe} is installed but cannot create its sandbox here ({probe.stderr.strip()[:200]}); "
                       "user namespaces are probably restricted: allow them (Debian: sysctl -w "
                       "kernel.unprivileged_userns_clone=1; Ubuntu 24.04+: sysctl -w "
                       "kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for bwrap; "
                       "in a container: run it with user namespaces allowed)")
    return True, ""


def bubblewrap_missing(why: str) -> str:
    """The refusal: why bubblewrap cannot run, what is unprotected without it, how to fix, how to accept the risk."""
    return (f"Grading untrusted notebooks needs bubblewrap, and it is not usable here: {why}. "
            "Without it a submission's code runs with your user's rights: it can read and change your files "
            "(this grader's code, the rubrics and hidden data, other students' submissions, your keys and "
            "tokens), reach the network, and leave processes running. Nothing was run. "
            "Install it and grade again: Debian/Ubuntu `sudo apt-get install bubblewrap`, Fedora "
            "`sudo dnf install bubblewrap` (or `make grader-deps` in the project). To grade anyway with the weaker "
            "fallback, accept the risk explicitly with `--isolation rlimits`: it keeps the grader's code, rubrics, "
            "data and fixtures out of the run's reach (private copies, and a tamper check that stops the batch) "
            "and kills every process a submission starts, but does not hide your other files or block the network.")


def resolve_isolation(isolation: str) -> str:
    """``auto``/``bwrap`` → ``bwrap`` when bubblewrap works, else :class:`IsolationUnavailable` (never a silent
    downgrade); ``rlimits`` and ``none`` as given."""
    if isolation in ("auto", "bwrap"):
        ok, why = bwrap_works()
        if not ok:
            raise IsolationUnavailable(bubblewrap_missing(why))
        return "bwrap"
    if isolation in ("rlimits", "none"):
        return isolation
    raise LabkitError(f"Unknown isolation {isolation!r}: expected one of {', '.join(ISOLATIONS)}.")


@dataclass
class Sandbox:
    """How to run one untrusted command: where it may write, what it may read, its limits."""

    scratch: Path
    isolation: str = "auto"                      # auto | bwrap | rlimits | none
    limits: Limits = field(default_factory=Limits)
    readable: list[Path] = field(default_factory=list)   # extra read-only paths (bwrap)
    hidden: list[Path] = field(default_factory=list)     # paths masked inside the sandbox (bwrap)
    env_extra: dict[str, str] = field(default_factory=dict)
    binds: list[tuple[Path, Path]] = field(default_factory=list)  # (source, target inside scratch), read-only

    def __post_init__(self) -> None:
        self.scratch = Path(self.scratch).resolve()
        self.isolation = resolve_isolation(self.isolation)
        self.containment: Containment | None = Containment() if self.isolation != "none" else None
        self._view_built = False

    def describe(self) -> str:
        """One line for reports: which isolation ran, with its limits."""
        lim = self.limits
        base = (f"memory {lim.memory_mb} MB, file size {lim.file_size_mb} MB, "
                f"{lim.max_processes} processes, output {lim.output_mb:g} MB, scratch folder, no credentials")
        if self.isolation == "bwrap":
            return f"bubblewrap (read-only system, no network, own PID namespace, no capabilities) + rlimits: {base}"
        if self.isolation == "rlimits":
            return ("rlimits, chosen explicitly (no bubblewrap): private read-only copies of labkit, data and fixtures, "
                    "tamper check, every process killed at the end; your other files and the network are NOT "
                    f"protected; {base}")
        return "none (trusted run)"

    def expose(self, source: Path, target: Path) -> None:
        """Make ``source`` readable at ``target`` (inside the scratch folder) without a way to change ``source``:
        bubblewrap mounts it read-only; rlimits copies it (a private copy, write bits removed)."""
        source, target = Path(source).resolve(), Path(target)
        if self.isolation == "bwrap":
            target.mkdir(parents=True, exist_ok=True)
            self.binds.append((source, target))
        elif self.isolation == "rlimits":
            _readonly_copy(source, target, hidden=[Path(h).resolve() for h in self.hidden])
        else:
            target.symlink_to(source)

    def view(self, path: Path) -> Path:
        """Where the run sees a ``readable`` path: the path itself in bubblewrap, its private copy under rlimits."""
        path = Path(path).resolve()
        if self.isolation != "rlimits":
            return path
        return self.scratch / ".readonly" / path.relative_to(path.anchor)

    def _build_private_view(self) -> dict[str, str]:
        """rlimits: copy every ``readable`` path (minus ``hidden``) under scratch/.readonly, mirroring its absolute
        path; the run imports labkit from there (PYTHONPATH), reads data/ there (LABKIT_DATA) and registers the
        extra labs of ``LABKIT_LABS`` from there."""
        import labkit
        from labkit.config import data_dir
        hidden = [Path(h).resolve() for h in self.hidden]
        if not self._view_built:
            for path in self.readable:
                path = Path(path).resolve()
                if path.exists() and path not in hidden:
                    _readonly_copy(path, self.view(path), hidden=hidden)
            self._view_built = True
        extra: dict[str, str] = {}
        readable = {Path(p).resolve() for p in self.readable}
        package = Path(labkit.__file__).resolve().parent
        if package in readable:
            extra["PYTHONPATH"] = os.pathsep.join(
                [str(self.view(package).parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
        if data_dir().resolve() in readable:
            extra["LABKIT_DATA"] = str(self.view(data_dir()))
        from labkit.labs import EXTRA_LABS_ENV, extension_files
        if extension_files():  # extra labs registered from their private copies too
            extra[EXTRA_LABS_ENV] = os.pathsep.join(
                str(self.view(p)) if p.parent in readable else str(p) for p in extension_files())
        return extra

    def environment(self) -> dict[str, str]:
        """The environment of the sandboxed process."""
        home = self.scratch / ".home"
        home.mkdir(parents=True, exist_ok=True)
        extra = dict(self.containment.environment()) if self.containment is not None else {}
        if self.isolation == "rlimits":
            extra.update(self._build_private_view())
        return clean_environment(
            HOME=str(home), JUPYTER_RUNTIME_DIR=str(home / ".runtime"), JUPYTER_DATA_DIR=str(home / ".jupyter-data"),
            IPYTHONDIR=str(home / ".ipython"), MPLCONFIGDIR=str(home / ".mpl"), XDG_CACHE_HOME=str(home / ".cache"),
            TMPDIR=str(home / ".tmp"), MPLBACKEND="Agg", **{**extra, **self.env_extra})

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` wrapped for this isolation."""
        if self.isolation != "bwrap":
            return list(argv)
        args = ["bwrap", "--unshare-all", "--uid", "65534", "--gid", "65534", "--die-with-parent",
                "--cap-drop", "ALL", "--hostname", "sandbox"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        args += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
                 "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        ro = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent.parent}
        ro.update(Path(p).resolve() for p in self.readable)
        for path in sorted(ro, key=lambda p: len(p.parts)):
            if path.exists() and not str(path).startswith(("/usr", "/etc")):
                args += ["--ro-bind", str(path), str(path)]
        mounted = [p for p in ro if p.exists()]
        hidden = [Path(p).resolve() for p in self.hidden]
        for path in hidden:
            if not any(path == m or m in path.parents for m in mounted):
                continue  # not visible in the sandbox anyway
            if any(h in path.parents for h in hidden if h.is_dir()):
                continue  # inside a folder that is masked already
            if path.is_dir():
                args += ["--tmpfs", str(path), "--remount-ro", str(path)]
            elif path.exists():
                args += ["--ro-bind", "/dev/null", str(path)]
        args += ["--bind", str(self.scratch), str(self.scratch)]
        for src, dst in self.binds:
            args += ["--ro-bind", str(Path(src).resolve()), str(dst)]
        args += ["--chdir", str(self.scratch), "--"]
        return args + list(argv)

    def end(self) -> list[str]:
        """After the run: kill whatever is left of it (nothing a notebook started may outlive it, nor run while
        its artifacts are checked); a note for the report when processes had to be killed."""
        if self.containment is None:
            return []
        self.containment.kill_all()
        n = self.containment.killed
        return [f"{n} process(es) of the run were still alive when it ended (or hit a limit) and were killed"] if n else []

    def preexec(self) -> Callable[[], None] | None:
        """The preexec_fn setting the rlimits (None for isolation 'none')."""
        if self.isolation == "none":
            return None
        limits = self.limits
        return lambda: _set_rlimits(limits)


def _readonly_copy(source: Path, target: Path, *, hidden: list[Path]) -> None:
    """Copy ``source`` (a file or a folder) to ``target``, leaving out ``hidden`` paths
    (a hidden folder stays as an empty folder, as bubblewrap's mask shows it); files lose their write bits.
    Folders stay writable by their owner so the scratch folder can be removed afterwards."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if (Path(folder) / n).resolve() in hidden}

    if source.is_dir():
        shutil.copytree(source, target, symlinks=False, ignore=ignore, dirs_exist_ok=True,
                        ignore_dangling_symlinks=True)  # links copied as files: none may lead back to the original
        for h in hidden:  # a masked folder: present, empty
            if h.is_dir() and source in h.parents:
                (target / h.relative_to(source)).mkdir(parents=True, exist_ok=True)
        files = [p for p in target.rglob("*") if p.is_file() and not p.is_symlink()]
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        files = [target]
    for f in files:
        try:
            f.chmod(f.stat().st_mode & ~0o222)
        except OSError:
            pass


@dataclass
class WatchReport:
    """Why a watched process tree was killed ('' when it was not)."""

    killed: str = ""
    peak_rss_mb: float = 0.0
    peak_processes: int = 0


def _proportional_rss(proc: "psutil.Process") -> int:  # noqa: F821
    """Proportional resident memory (PSS): forked children sharing pages are not counted twice."""
    import psutil
    try:
        return int(proc.memory_full_info().pss)
    except (psutil.Error, AttributeError, OSError):
        try:
            return int(proc.memory_info().rss)
        except psutil.Error:
            return 0


class Watchdog:
    """Polls a process tree; kills all of it on wall-clock, memory or process-count excess."""

    def __init__(self, proc: subprocess.Popen, *, timeout: float | None, limits: Limits | None,
                 interval: float = 0.1, containment: Containment | None = None) -> None:
        self.proc, self.timeout, self.limits, self.interval = proc, timeout, limits, interval
        self.containment = containment
        if containment is not None:
            containment.root_pid = proc.pid
        self.report = WatchReport()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Watchdog":
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _tree(self) -> list:
        import psutil
        if self.containment is not None:  # the tree, plus what left it (adopted orphans)
            return self.containment.members(deep=False)
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def kill_tree(self) -> None:
        """SIGKILL every process of the tree (children first collected, then all killed); with a containment,
        every process of the run, also those that left the tree."""
        import psutil
        if self.containment is not None:
            self.containment.kill_all()
            try:
                self.proc.kill()
            except OSError:
                pass
            return
        procs = self._tree()
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass
        try:
            self.proc.kill()
        except OSError:
            pass

    def _run(self) -> None:
        import psutil
        while not self._stop.wait(self.interval):
            if self.proc.poll() is not None:
                # The main process ended: anything it left behind goes too.
                self.kill_tree()
                return
            if self.timeout is not None and time.monotonic() - self._start > self.timeout:
                self.report.killed = "timeout"
                self.kill_tree()
                return
            if self.limits is None:
                continue
            procs = self._tree()
            rss = 0
            for p in procs:
                rss += _proportional_rss(p)
            rss_mb = rss / 2**20
            self.report.peak_rss_mb = max(self.report.peak_rss_mb, rss_mb)
            self.report.peak_processes = max(self.report.peak_processes, len(procs))
            if len(procs) > self.limits.max_processes:
                self.report.killed = "processes"
                self.kill_tree()
                return
            if rss_mb > self.limits.memory_mb:
                self.report.killed = "memory"
                self.kill_tree()
                return
