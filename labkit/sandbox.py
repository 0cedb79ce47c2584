"""Isolation for running untrusted notebooks: bubblewrap when it works, rlimits always.

A :class:`Sandbox` turns a command line into one that runs

- inside ``bwrap`` (when available and working): read-only system, Python and
  labkit; the fixtures cache read-only; the rubrics folder and any hidden data
  masked; the scratch folder the only writable place; no network; its own
  PID namespace (every process dies with the sandbox); no capabilities;
- always with ``resource`` rlimits set in a ``preexec_fn`` (address space,
  file size, open files, no core dumps) and an environment without
  credentials.

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
    output_mb: float = 8.0         # notebook outputs kept; more is truncated (enforced by labkit.run)
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


@functools.lru_cache(maxsize=None)
def bwrap_works() -> tuple[bool, str]:
    """Whether ``bwrap`` exists and can build the sandbox here (namespaces allowed).

    Returns (ok, why-not)."""
    exe = shutil.which("bwrap")
    if not exe:
        return False, "bwrap is not installed (Debian: apt-get install bubblewrap)"
    try:
        probe = subprocess.run(
            [exe, "--unshare-all", "--uid", "65534", "--gid", "65534", "--die-with-parent",
             "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--", "true"],
            capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, f"bwrap could not start: {err}"
    if probe.returncode != 0:
        return False, f"bwrap cannot create namespaces here: {probe.stderr.strip()[:200]}"
    return True, ""


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
        if self.isolation == "auto":
            ok, why = bwrap_works()
            self.isolation = "bwrap" if ok else "rlimits"
            self.fallback_reason = "" if ok else why
        else:
            self.fallback_reason = ""
        if self.isolation == "bwrap" and not bwrap_works()[0]:
            raise RuntimeError(f"isolation 'bwrap' requested but {bwrap_works()[1]}")

    def describe(self) -> str:
        """One line for reports: which isolation ran, with its limits."""
        lim = self.limits
        base = (f"memory {lim.memory_mb} MB, file size {lim.file_size_mb} MB, "
                f"{lim.max_processes} processes, output {lim.output_mb:g} MB, scratch folder, no credentials")
        if self.isolation == "bwrap":
            return f"bubblewrap (read-only system, no network, own PID namespace, no capabilities) + rlimits: {base}"
        if self.isolation == "rlimits":
            why = f" (bubblewrap unavailable: {self.fallback_reason})" if getattr(self, "fallback_reason", "") else ""
            return f"rlimits + scratch folder{why}: {base}"
        return "none (trusted run)"

    def environment(self) -> dict[str, str]:
        """The environment of the sandboxed process."""
        home = self.scratch / ".home"
        home.mkdir(parents=True, exist_ok=True)
        return clean_environment(
            HOME=str(home), JUPYTER_RUNTIME_DIR=str(home / ".runtime"), JUPYTER_DATA_DIR=str(home / ".jupyter-data"),
            IPYTHONDIR=str(home / ".ipython"), MPLCONFIGDIR=str(home / ".mpl"), XDG_CACHE_HOME=str(home / ".cache"),
            TMPDIR=str(home / ".tmp"), MPLBACKEND="Agg", **self.env_extra)

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

    def preexec(self) -> Callable[[], None] | None:
        """The preexec_fn setting the rlimits (None for isolation 'none')."""
        if self.isolation == "none":
            return None
        limits = self.limits
        return lambda: _set_rlimits(limits)


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
                 interval: float = 0.1) -> None:
        self.proc, self.timeout, self.limits, self.interval = proc, timeout, limits, interval
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
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def kill_tree(self) -> None:
        """SIGKILL every process of the tree (children first collected, then all killed)."""
        import psutil
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
