"""Process containment for sandboxed runs: find, and kill, every process a run started.

psutil's process tree loses a process whose parent has exited: a double-forked
daemon, or a ``start_new_session`` child whose kernel has ended, is re-parented
to the nearest *child subreaper*, or to init, and is no longer anyone's
descendant. :class:`Containment` casts two nets over a run:

- **subreaper**: the grader process calls :func:`become_subreaper`
  (``prctl(PR_SET_CHILD_SUBREAPER)``, Linux 3.4+), so every orphan of its run
  is re-parented to it; any child it did not start itself was adopted from
  the run, and is killed and reaped with it;
- **tag**: every process of the run inherits ``LABKIT_SANDBOX_RUN=<id>`` in
  its environment, found in ``/proc/<pid>/environ`` (a process that exec'd
  with a fresh environment drops the tag; the first net still holds it). The
  driver uses the tag to clean up after a grader process that was itself
  killed (its run is then orphaned to init).

Inside bubblewrap the PID namespace does the same job (when its first process
ends, the kernel kills the others); containment costs nothing extra there.

Not contained: a process started *on the run's behalf* by something outside
the tree (cron/at, ``systemd-run``, a D-Bus activated service, a container
runtime's socket). A cgroup per submission (the pids controller; ``cgroup.kill``
on cgroup v2) would hold those too, but needs root or a delegated cgroup,
and a root-run submission could move itself out again; bubblewrap is the
answer there. ``pgrep -f``-style matching on command lines is not used:
a process chooses its own command line.
"""
from __future__ import annotations

import ctypes
import logging
import os
import secrets
import time
import psutil

log = logging.getLogger(__name__)

RUN_VAR = "LABKIT_SANDBOX_RUN"
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


def _prctl(option: int, arg: object) -> int:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, arg, 0, 0, 0))
    except (OSError, AttributeError):  # not Linux, or no prctl
        return -1


def become_subreaper() -> bool:
    """Make this process the child subreaper of its descendants; False where the OS does not allow it."""
    ok = _prctl(_PR_SET_CHILD_SUBREAPER, 1) == 0
    if not ok:
        log.warning("prctl(PR_SET_CHILD_SUBREAPER) is not available: orphaned processes of a sandboxed run "
                    "are found by their %s tag only", RUN_VAR)
    return ok


def is_subreaper() -> bool:
    """Whether this process is a child subreaper (orphans of its descendants become its children)."""
    value = ctypes.c_int(0)
    return _prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(value)) == 0 and value.value != 0


def new_run_id() -> str:
    """A fresh, unguessable id for one run's tag."""
    return secrets.token_hex(8)


def tagged(run_id: str) -> list[int]:
    """Pids of the live processes whose environment carries ``LABKIT_SANDBOX_RUN=run_id`` (this process excluded)."""
    needle = f"{RUN_VAR}={run_id}".encode()
    found = []
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for name in entries:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                env = fh.read()
        except OSError:  # gone, or not ours to read
            continue
        if needle in env.split(b"\0"):
            found.append(int(name))
    return found


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Containment:
    """Every process of one sandboxed run: its tree, the orphans this process adopted, the tagged ones."""

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id or os.environ.get(RUN_VAR) or new_run_id()
        self.root_pid: int | None = None
        self.killed = 0            # processes killed by kill_all, all calls together
        me = psutil.Process()
        self._me = me
        # children that exist before the run are not the run's (the snapshot is taken before it starts)
        self._preexisting = {c.pid for c in me.children()}
        self._exclude = {me.pid, *(p.pid for p in me.parents())}

    def environment(self) -> dict[str, str]:
        """The tag every process of the run inherits."""
        return {RUN_VAR: self.run_id}

    def members(self, *, deep: bool = True) -> list[psutil.Process]:
        """The run's live processes: the root's tree, adopted orphans (when a subreaper) and, if ``deep``,
        tagged processes anywhere (a /proc scan: the watchdog's frequent polls use ``deep=False``)."""
        found: dict[int, psutil.Process] = {}

        def add(proc: psutil.Process) -> None:
            try:
                for p in (proc, *proc.children(recursive=True)):
                    found.setdefault(p.pid, p)
            except psutil.Error:
                pass

        if self.root_pid is not None:
            try:
                add(psutil.Process(self.root_pid))
            except psutil.Error:
                pass
        if is_subreaper():
            try:
                for child in self._me.children():
                    if child.pid not in self._preexisting:
                        add(child)
            except psutil.Error:
                pass
        if deep:
            for pid in tagged(self.run_id):
                try:
                    add(psutil.Process(pid))
                except psutil.Error:
                    pass
        return [p for pid, p in found.items() if pid not in self._exclude and _alive(p)]

    def kill_all(self, *, rounds: int = 30) -> int:
        """SIGKILL every member until none is left (a forking process gets no time to outrun it), reap the
        killed processes that are this process's own children (adopted orphans, never the run's root: its
        Popen waits for it), and return how many processes were killed."""
        killed: set[int] = set()
        for _ in range(rounds):
            procs = self.members(deep=True)
            if not procs:
                break
            for p in procs:
                try:
                    p.kill()
                    killed.add(p.pid)
                except psutil.Error:
                    pass
            time.sleep(0.02)
            self._reap(killed)
        else:
            log.warning("processes of run %s were still starting after %d rounds of kills", self.run_id, rounds)
        self._reap(killed)
        self.killed += len(killed)
        return len(killed)

    def _reap(self, pids: set[int]) -> None:
        if is_subreaper():  # adopted orphans that exited by themselves are zombies of ours too
            try:
                pids = pids | {c.pid for c in self._me.children() if c.pid not in self._preexisting}
            except psutil.Error:
                pass
        for pid in pids - {self.root_pid}:
            try:
                os.waitpid(pid, os.WNOHANG)
            except OSError:  # not our child (re-parented elsewhere, or reaped already)
                pass
