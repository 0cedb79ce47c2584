"""Shared test setup: never touch the network; build the offline fixtures once."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.pop("LABKIT_MODELS", None)  # the course profile's Hub ids, unless a test points it at a folder

import pytest  # noqa: E402

from labkit.config import shared_dialogsum_path  # noqa: E402


@pytest.fixture(autouse=True)
def _fp32_unless_asked():
    """start_lab makes its dtype choice the active one (labkit.precision): reset it after every test, so a
    later test in the same process computes in fp32, whatever this CPU's 'auto' picked for an earlier one."""
    yield
    from labkit import precision

    precision.set_active(None)


@pytest.fixture(scope="session")
def fixtures_manifest() -> dict:
    """The offline fixtures (built on first use into LABKIT_HOME or ~/.cache/labkit)."""
    from labkit import fixtures

    return fixtures.build()


@pytest.fixture(scope="session")
def tokenizer(fixtures_manifest):
    from labkit.models import load_tokenizer

    return load_tokenizer("offline")


@pytest.fixture(scope="session")
def dialogsum_dev_path():
    """The real DialogSum validation split beside the checkout; skip when absent."""
    path = shared_dialogsum_path()
    if not path.is_file():
        pytest.skip(f"real DialogSum validation split not found at {path}")
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tiny-model tests on one torch thread: the tiny model gains
    nothing from a second one, and on a shared, busy 2-core machine two OpenMP
    threads run several times slower than one."""
    from labkit.config import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture
def graded_default_run(tmp_path, fixtures_manifest):
    """Run a lab as ``make labs`` does (``labkit run --grade``: papermill, then the lab's rubric on the executed
    notebook and its artifacts) and assert the reference solution earns every automatic point, the reflection
    waiting for a person. Returns (results.json, the grade record, the labkit.run.RunResult).

    The rubric's checks are the same code in the sandboxed grader (test_release grades each lab there)."""
    def run(lab: str, **parameters):
        from labkit import grading
        from labkit import run as runmod
        from labkit.run_params import resolve_labs

        notebook = dict(resolve_labs([lab]))[lab]
        result = runmod.execute(notebook, tmp_path / "out", parameters, profile="offline", cwd=tmp_path)
        assert result.ok, (result.status, result.message, result.exception)
        record = grading.grade_run(result, parameters=parameters)
        failed = [c for c in record["checks"] if not c["passed"] and not c.get("pending")]
        assert record["status"] == "graded" and record["score"] + record["pending"] == record["max"], failed
        assert [c["name"] for c in record["checks"] if c.get("pending")] == ["reflection"], record["checks"]
        return result.results, record, result

    return run
