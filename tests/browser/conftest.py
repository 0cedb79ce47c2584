"""Fixtures of the real-browser checks (the harness itself lives in jlab_harness.py).

Everything here is skipped cleanly when /usr/bin/chromium or the playwright package
is absent (``make test-browser`` installs both).
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from jlab_harness import CHROMIUM, CHROMIUM_ARGS, NEWS_OFF, LabServer, free_port, stop_server, wait_until_up


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM}; `make test-browser` installs Debian's chromium")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed; `make test-browser` installs it")
    return CHROMIUM


@pytest.fixture(scope="session")
def lab_server(chromium_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A private JupyterLab on 127.0.0.1 serving a temp notebook folder."""
    root = tmp_path_factory.mktemp("jupyterlab")
    notebooks, config, data, runtime = (root / d for d in ("notebooks", "config", "data", "runtime"))
    for folder in (notebooks, config / "labconfig", data, runtime):
        folder.mkdir(parents=True)
    # Defaults layered under any user choice, read from this private config dir only.
    (config / "labconfig" / "default_setting_overrides.json").write_text(json.dumps(NEWS_OFF), encoding="utf-8")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_DATA_DIR": str(data),
           "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTER_PREFER_ENV_PATH": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    port, token = free_port(), secrets.token_hex(24)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
           f"--IdentityProvider.token={token}", "--allow-root", f"--ServerApp.root_dir={notebooks}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           # A safety net should pytest itself be killed: idle kernels are culled, then the server exits.
           "--MappingKernelManager.cull_idle_timeout=900", "--MappingKernelManager.cull_interval=60",
           "--ServerApp.shutdown_no_activity_timeout=1200"]
    log_path = root / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=notebooks, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", token, notebooks, log_path, proc)
    try:
        wait_until_up(server)
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def browser(chromium_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, lab_server: LabServer) -> Iterator[Any]:
    """A fresh browser tab; the kernels it started are shut down afterwards."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()
        try:
            lab_server.stop_sessions()
        except OSError:  # the server is gone already; the session fixture reports that
            pass
