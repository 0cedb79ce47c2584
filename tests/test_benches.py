"""Every benchmark in bench/ has a quick mode (``--quick``: tiny models or sizes, seconds, no network) and it runs.

A refactor that breaks a benchmark fails here, in ``make test``, instead of months later when someone runs it by
hand (bench/ppo_memory.py once crashed on a signature that had changed under it, and nothing had run it since).
The list is every file in bench/, so a new benchmark without a working ``--quick`` fails too; ``_``-prefixed
files are helpers, not benchmarks. The full runs stay manual; their figures are in BENCHMARKS.md.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from labkit.config import repo_root

BENCH = repo_root() / "bench"
BENCHES = sorted(p.name for p in BENCH.iterdir() if p.suffix in (".py", ".sh") and not p.name.startswith("_"))
# A benchmark whose quick mode another one's runs, rather than on its own (the same work twice otherwise):
# course_gpu.sh --quick runs "course_gpu.py all --quick", every part of it.
RUN_BY = {"course_gpu.py": "course_gpu.sh"}
TIMEOUT_S = 300  # a quick mode takes seconds to tens of seconds on a busy 2-core machine


def command(name: str) -> list[str]:
    if name.endswith(".sh"):
        return ["bash", str(BENCH / name), "--device", "cpu", "--quick"]
    return [sys.executable, str(BENCH / name), "--quick"]


def test_every_benchmark_is_listed():
    assert {"ppo_memory.py", "course_shaped.py", "course_gpu.sh", "eval_throughput.py"} <= set(BENCHES)
    assert all(runner in BENCHES for runner in RUN_BY.values())


@pytest.mark.parametrize("name", BENCHES)
def test_quick_mode_runs(name, tmp_path, fixtures_manifest):
    if name in RUN_BY:
        runner = (BENCH / RUN_BY[name]).read_text(encoding="utf-8")
        assert f"bench/{name} all" in runner and '"--quick"' in (BENCH / name).read_text(encoding="utf-8")
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHON": sys.executable, "OUT": str(tmp_path / "out")}
    env.pop("COURSE_MODELS", None)
    started = time.perf_counter()
    proc = subprocess.run(command(name), cwd=repo_root(), env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    seconds = time.perf_counter() - started
    assert proc.returncode == 0, (f"bench/{name} --quick exited {proc.returncode} after {seconds:.0f} s:\n"
                                  f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    assert proc.stdout.strip(), f"bench/{name} --quick printed nothing"
