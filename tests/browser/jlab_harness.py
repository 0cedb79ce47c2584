"""The real-browser harness: a private JupyterLab on loopback and Debian's Chromium settings.

The server (started by the ``lab_server`` fixture in conftest.py) gets its own
config/data/runtime folders and notebook folder under a temp directory (the
learner's ~/.jupyter and the repo's labs/ are never touched), a random token, a
free 127.0.0.1 port, and Jupyter news / update checks off. ``stop_server`` shuts
it and its kernels down, also when a test fails.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("LABKIT_CHROMIUM", "/usr/bin/chromium"))
# playwright's own browser download cannot work on these machines; these flags keep
# Debian's Chromium from phoning home or needing a sandbox/GPU in a container.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# "false" (a string) is the schema's "Never": no news request and no first-start toast asking.
NEWS_OFF = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
SERVER_START_TIMEOUT_S = 120


def screenshot_dir() -> Path:
    """Where the screenshots go (``LABKIT_BROWSER_OUT`` overrides ``outputs/browser``)."""
    out = Path(os.environ.get("LABKIT_BROWSER_OUT") or REPO / "outputs" / "browser")
    out.mkdir(parents=True, exist_ok=True)
    return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LabServer:
    """A running JupyterLab: its base URL, token, notebook folder and process."""

    base_url: str
    token: str
    notebook_dir: Path
    log_path: Path
    proc: subprocess.Popen

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}{'&' if '?' in path else '?'}token={self.token}"

    def api(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        """Call the server's REST API (token in a header; JSON in, JSON out)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method,
                                     headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            text = resp.read().decode() or "null"
        return json.loads(text)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def notebook_kernel_ready(self, path: str) -> bool:
        """Whether the kernel of the notebook at ``path`` is connected to the page and idle."""
        try:
            sessions = self.api("GET", "/api/sessions")
        except urllib.error.HTTPError:  # briefly, while another kernel shuts down
            return False
        for session in sessions:
            if session.get("path") == path:
                kernel = session.get("kernel") or {}
                return kernel.get("connections", 0) >= 1 and kernel.get("execution_state") == "idle"
        return False

    def stop_sessions(self, timeout_s: float = 60) -> None:
        """Shut every kernel down and wait until they are gone (one lab's models
        should not sit in memory during the next)."""
        for session in self.api("GET", "/api/sessions"):
            try:
                self.api("DELETE", f"/api/sessions/{session['id']}")
            except urllib.error.URLError:
                pass
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if not self.api("GET", "/api/kernels"):
                    return
            except urllib.error.HTTPError:
                pass
            time.sleep(0.5)


def wait_until_up(server: LabServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            server.api("GET", "/api/status", timeout=5)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise RuntimeError(f"jupyter lab did not answer within {SERVER_START_TIMEOUT_S} s:\n{server.log_tail()}")


def stop_server(server: LabServer) -> None:
    # The API shutdown stops the kernels too; signals to the process group are the fallback.
    if server.proc.poll() is None:
        try:
            server.api("POST", "/api/shutdown", timeout=10)
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            pass
    for sig, wait_s in ((None, 30), (signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if sig is not None and server.proc.poll() is None:
            try:
                os.killpg(server.proc.pid, sig)
            except ProcessLookupError:
                break
        try:
            server.proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue


