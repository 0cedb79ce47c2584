"""The runner's child process, seen from the parent: start it (sandboxed or not), hand it its status channel,
wait for it under the watchdog, and read why it stopped from its stderr.

The child reports how papermill ended on a pipe of its own (:class:`StatusPipe`), never in a file: the kernel
runs the student's code with write access to the output folder, and could write a status of its choosing
there. The child's side of that channel is :mod:`labkit.run_engine`.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import select
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

STATUS_LIMIT_BYTES = 1 << 16

# stderr lines that never say why a process stopped: log records at warning level or below (a kernel's
# "running over TCP without encryption", traitlets' "[IPKernelApp] WARNING | ..."), debugger notes, progress bars
_NOISE = re.compile(r"^\[\w+\]|^\[[A-Z] |^\d+(\.\d+)?s - |\b(WARNING|INFO|DEBUG)\b|Warning\b|warnings\.warn|"
                    r"without encryption|eavesdropping|it/s\]|s/it\]|\d+%\|")
_EXCEPTION = re.compile(r"^[\w.]*(Error|Exception|Exit|Interrupt)\b")


def why_stopped(text: str, limit: int = 200) -> str:
    """The one line of a process's stderr that says why it stopped: its last exception line, else its last
    line that is not a warning, a log record or a progress bar; "" when there is none."""
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    lines = [ln for ln in lines if not _NOISE.search(ln)]
    errors = [ln for ln in lines if _EXCEPTION.match(ln)]
    line = (errors or lines or [""])[-1]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def stderr_tail(path: Path) -> str:
    """Why the runner stopped, from its stderr log, when it wrote no status (see :func:`why_stopped`)."""
    try:
        return why_stopped(path.read_text(errors="replace"))
    except OSError:
        return ""


class StatusPipe:
    """The runner's status channel: a pipe the kernel has no end of, and a token it never sees.

    The parent hands the runner the pipe's write end (``pass_fds``) and a fresh random token on its stdin; the
    runner reads the token before any kernel starts, keeps the pipe's end out of every process it starts, and
    at the end writes its status as one JSON line carrying the token. Only such a line counts: whatever a
    notebook writes into a file, or manages to push into the pipe, is not the runner's word."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self.read_fd, self.write_fd = os.pipe()
        self._data = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)

    def started(self) -> None:
        """The runner holds its own copy of the write end: close the parent's and start draining."""
        os.close(self.write_fd)
        self._thread.start()

    def _drain(self) -> None:
        deadline = None
        while True:
            if self._stop.is_set():
                deadline = deadline or time.monotonic() + 2.0
                if time.monotonic() > deadline:
                    return
            try:
                ready, _, _ = select.select([self.read_fd], [], [], 0.1)
                if not ready:
                    if self._stop.is_set():
                        return
                    continue
                chunk = os.read(self.read_fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            if len(self._data) < STATUS_LIMIT_BYTES:
                self._data += chunk[: STATUS_LIMIT_BYTES - len(self._data)]

    def result(self) -> dict[str, Any]:
        """The runner's status (without the token), or {} when it wrote none."""
        self._stop.set()
        if self._thread.is_alive() or self._thread.ident is not None:
            self._thread.join(timeout=5)
        try:
            os.close(self.read_fd)
        except OSError:
            pass
        for line in reversed(bytes(self._data).splitlines()):
            try:
                got = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(got, dict) and secrets.compare_digest(str(got.pop("token", "")), self.token):
                return got
        return {}

    def close(self) -> None:
        """Close both ends (a run that never started)."""
        for fd in (self.write_fd, self.read_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def run_child(argv: list[str], *, env: dict[str, str] | None, timeout: float | None, sandbox: Any | None,
              log_output: bool, log_path: Path | None = None, status: StatusPipe | None = None) -> Any:
    """Start the runner (``argv``, wrapped by the caller for its sandbox), give it the status token, and wait
    for it under a :class:`labkit.sandbox.Watchdog` (``timeout`` and the sandbox's limits); every process it
    started is killed afterwards. Returns the watchdog's report, with the runner's ``returncode``."""
    from labkit.sandbox import Watchdog

    kwargs: dict[str, Any] = {}
    if sandbox is not None and sandbox.preexec() is not None:
        kwargs["preexec_fn"] = sandbox.preexec()
    if sandbox is not None:  # not the caller's folder (a checkout there would shadow the private labkit copy)
        kwargs["cwd"] = str(sandbox.scratch)
    log_fh = open(log_path, "wb") if (log_path is not None and not log_output) else None
    out = None if log_output else (log_fh or subprocess.DEVNULL)
    try:
        try:
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE if status else subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL if not log_output else None, stderr=out,
                                    start_new_session=True, pass_fds=(status.write_fd,) if status else (), **kwargs)
        except BaseException:
            if status is not None:
                status.close()
            raise
        if status is not None:
            status.started()
            try:  # the token, on the runner's stdin (it reads it before any kernel starts)
                proc.stdin.write((status.token + "\n").encode())  # type: ignore[union-attr]
                proc.stdin.close()  # type: ignore[union-attr]
            except OSError:  # the runner is gone already: it will have written nothing
                pass
        with Watchdog(proc, timeout=timeout, limits=getattr(sandbox, "limits", None),
                      containment=getattr(sandbox, "containment", None)) as dog:
            proc.wait()
    finally:
        if log_fh is not None:
            log_fh.close()
    dog.kill_tree()
    report = dog.report
    report.returncode = proc.returncode  # type: ignore[attr-defined]
    return report
