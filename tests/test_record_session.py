"""Foundation: the record contract and lab start-up."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from labkit.config import LabkitError
from labkit.record import MIMETYPE, load_results, record, results_from_notebook, set_results_dir, to_jsonable
from labkit.session import start_lab


@pytest.fixture(autouse=True)
def _no_results_dir():
    yield
    set_results_dir(None)


def test_record_mirrors_to_results_json(tmp_path):
    set_results_dir(tmp_path)
    record("a", 1)
    record("b", {"x": np.float32(0.5), "y": (1, 2)})
    record("a", 2)  # last value wins
    assert load_results(tmp_path) == {"a": 2, "b": {"x": 0.5, "y": [1, 2]}}


def test_set_results_dir_resets_stale_results(tmp_path):
    set_results_dir(tmp_path)
    record("old", 1)
    set_results_dir(tmp_path)
    assert load_results(tmp_path) == {}


def test_to_jsonable_converts_and_refuses():
    import torch

    assert to_jsonable({"t": torch.tensor([1.0, 2.0]), "n": np.int64(3), "nan": math.nan}) == {"t": [1.0, 2.0], "n": 3, "nan": None}
    with pytest.raises(LabkitError, match=r"bad\['k'\] is a object"):
        to_jsonable({"k": object()}, "bad")


def test_record_rejects_bad_names():
    with pytest.raises(LabkitError, match="short identifier"):
        record("has space", 1)


def test_results_from_notebook_reads_mimetype():
    nb = {"cells": [
        {"outputs": [{"data": {MIMETYPE: {"name": "x", "value": 1}}}]},
        {"outputs": [{"data": {"text/plain": "hi"}}, {"data": {MIMETYPE: {"name": "x", "value": 2}}}]},
    ]}
    assert results_from_notebook(nb) == {"x": 2}


def test_start_lab_sets_up_outputs(tmp_path):
    ctx = start_lab("lab1", profile="offline", seed=3, output_dir=tmp_path / "o")
    assert ctx.output_dir == (tmp_path / "o").resolve()
    info = json.loads((ctx.output_dir / "results.json").read_text())["run_info"]
    assert info["lab"] == "lab1" and info["profile"] == "offline" and info["seed"] == 3 and info["dtype"] == "float32"


def test_start_lab_refuses_course_on_cpu(tmp_path):
    with pytest.raises(LabkitError, match="course profile needs a GPU"):
        start_lab("lab2", profile="course", output_dir=tmp_path)


def test_start_lab_unknown_lab(tmp_path):
    with pytest.raises(LabkitError, match="Unknown lab 'lab9'"):
        start_lab("lab9", output_dir=tmp_path)


@pytest.mark.parametrize(
    ("imports", "preset", "expected"),
    [
        ("import labkit", None, "PASSIVE True"),           # labkit first: torch's threads will sleep when idle
        ("import torch, labkit", None, "None False"),       # torch already loaded its OpenMP runtime: too late
        ("import labkit", "active", "active False"),        # a user's own setting wins
    ],
)
def test_labkit_asks_for_sleeping_openmp_threads_only_before_torch_loads(imports, preset, expected):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset is not None:
        env["OMP_WAIT_POLICY"] = preset
    code = f"{imports}; import os; print(os.environ.get('OMP_WAIT_POLICY'), labkit.OMP_PASSIVE)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[-2] == expected


def test_offline_threads_follow_the_wait_policy(monkeypatch):
    import os

    import labkit
    from labkit.session import OFFLINE_MAX_THREADS, offline_threads

    monkeypatch.setattr(labkit, "OMP_PASSIVE", False)
    assert offline_threads() == 1
    monkeypatch.setattr(labkit, "OMP_PASSIVE", True)
    assert offline_threads() == max(1, min(OFFLINE_MAX_THREADS, os.cpu_count() or 1))
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert offline_threads() == 1


def test_labkit_messages_follow_a_redirected_stdout():
    import contextlib
    import io
    import logging

    from labkit.session import _configure_logging

    _configure_logging()
    first, second = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(first):
        logging.getLogger("labkit.test").warning("one")
    with contextlib.redirect_stdout(second):
        logging.getLogger("labkit.test").warning("two")
    assert "one" in first.getvalue() and "two" in second.getvalue() and "one" not in second.getvalue()
