"""The three labs with profile="course" on the course-shaped stand-in, on this machine's CPU: per lab the wall
time, the peak memory of the lab's processes, seconds per step of its heavy part, and the memory its
"Hardware for the course profile" text states, all from one run.

The stand-in (``labkit fixtures --course-shaped``; random weights, for shapes and memory only) is built into
``LABKIT_HOME/course-shaped`` unless ``--models`` names one. The course's settings, with only the sizes turned
down (lab 2 takes 4 steps so that one steady-state step is timed; lab 3 two PPO steps), on the real DialogSum
validation split (``--dataset``; default ../shared/data/dialogsum/dialogsum.dev.jsonl).

The measured figures the labs' texts quote live in BENCHMARKS.md's quoted-figures table (``read_figures``);
a full run prints its rows for that table, and ``tests/test_quoted_figures.py`` holds the labs' texts to it.

Each lab runs in fp32 and, where this CPU is fast at it, in bf16 too (``--dtypes``; the labs' ``dtype``
parameter: bf16 autocast with fp32 weights, labkit.precision), side by side in one run. Where bf16 is not
faster (labkit.precision's measurement, or no avx512_bf16/amx_bf16 flag), the bf16 runs are skipped and the
bench says why; ``--dtypes fp32 bf16`` runs both regardless. The quoted figures come from the fp32 runs.

Run: .venv/bin/python bench/course_shaped.py [--models DIR] [--dataset FILE] [--out DIR] [--labs lab1 lab2 lab3]
     [--dtypes auto | fp32 [bf16]]
Quick (``--quick``: seconds, no model): checks what a full run relies on without running a lab: the sizes it
turns down are knobs of each lab, the cells it times exist, and the quoted-figures table reads, with a row for
every figure it measures.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
FIGURES_FILE = ROOT / "BENCHMARKS.md"
FIGURES_MARK = "<!-- quoted-figures"  # the line before the table's header in BENCHMARKS.md

SIZES = {
    "lab1": {"n_eval": 4},
    "lab2": {"n_eval": 4, "max_steps": 4, "train_size": 32},
    "lab3": {"n_eval": 4, "ppo_steps": 2, "batch_size": 4, "mini_batch_size": 2, "min_new_tokens": 8,
             "max_new_tokens": 16},
}
# The cell each lab's seconds per step are read from (papermill's per-cell duration).
TIMED_CELLS = {"lab1": "lab1-s5-run", "lab3": "lab3-train"}
# What each lab's "Hardware for the course profile" text states (GB), to print beside the measurement.
STATED = {
    "lab1": "weights 1.0 GB fp32 (4 B/param); any 4 GB GPU",
    "lab2": "rule of thumb 5.9 GB full FT (24 B/param), 1.1 GB LoRA + activations; GPU >= 16 GB",
    "lab3": "policy 1.0 GB + reward model 0.5 GB + rollouts of up to 400 tokens; GPU >= 16 GB",
}


# ----------------------------------------------------------------------------- the quoted figures


@dataclass(frozen=True)
class Figure:
    """One measured figure a lab's text quotes: its stable key, the lab, the value and unit, where and when it
    was measured, and the lab's words around it (``{}`` stands for the number)."""

    key: str
    lab: str
    value: float
    unit: str
    measured: str
    words: str

    def row(self) -> str:
        """The figure as a row of BENCHMARKS.md's table."""
        return f"| {self.key} | {self.lab} | {self.value:.1f} | {self.unit} | {self.measured} | `{self.words}` |"

    def quoted_in(self, text: str) -> float | None:
        """The number ``text`` states in the figure's words (line breaks and spacing aside), or None."""
        parts = [re.escape(word).replace(r"\{\}", r"([0-9][0-9,]*(?:\.[0-9]+)?)") for word in self.words.split()]
        found = re.search(r"\s+".join(parts), text)
        return float(found.group(1).replace(",", "")) if found else None


def read_figures(path: Path = FIGURES_FILE) -> dict[str, Figure]:
    """BENCHMARKS.md's quoted-figures table: the rows of the table after the ``<!-- quoted-figures`` line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(FIGURES_MARK)), None)
    if start is None:
        raise SystemExit(f"{path} has no quoted-figures table (a line starting {FIGURES_MARK!r} before it)")
    figures = {}
    for line in lines[start + 3:]:  # the marker, the header, the separator
        if not line.startswith("|"):
            break
        key, lab, value, unit, measured, words = (cell.strip() for cell in line.strip().strip("|").split("|"))
        figures[key] = Figure(key, lab, float(value), unit, measured, words.strip("`"))
    return figures


def _lab1_per_summary(row: dict[str, Any]) -> float | None:
    seconds = row.get("timed_cell_seconds")
    return seconds / (5 * SIZES["lab1"]["n_eval"]) if seconds else None  # section 5: five strategies


def _lab2_live(method: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda row: ((row.get("results") or {}).get("peak_memory_mb") or {}).get(method, 0) / 1024 or None


# Each quoted figure a run measures: its key in the table -> how it is read from one lab's run.
MEASURES: dict[str, Callable[[dict[str, Any]], float | None]] = {
    "lab1.peak_gb": lambda row: row["peak_gb"],
    "lab1.seconds_per_summary": _lab1_per_summary,
    "lab2.peak_gb": lambda row: row["peak_gb"],
    "lab2.live_tensors_full_gb": _lab2_live("full_ft"),
    "lab2.live_tensors_lora_gb": _lab2_live("lora"),
    "lab3.peak_gb": lambda row: row["peak_gb"],
}


def new_figures(rows: dict[str, dict[str, Any]], recorded: dict[str, Figure]) -> list[Figure]:
    """The table's figures this run measured, with today's values (the lab's words kept)."""
    today = datetime.date.today().isoformat()
    out = []
    for key, measure in MEASURES.items():
        lab = key.split(".")[0]
        value = measure(rows[lab]) if lab in rows else None
        if value is not None and key in recorded:
            out.append(replace(recorded[key], value=round(value, 1), measured=f"bench/course_shaped.py, {today}"))
    return out


# ----------------------------------------------------------------------------- one lab's run


def cell_seconds(notebook: Path, cell_id: str) -> float | None:
    """How long one cell of an executed notebook ran (papermill's per-cell record)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.get("id") == cell_id:
            return cell.metadata.get("papermill", {}).get("duration")
    return None


def per_step(lab: str, row: dict[str, Any]) -> str:
    """The lab's time per step of its heavy part, in words."""
    if lab == "lab1":
        seconds = _lab1_per_summary(row)
        n = SIZES["lab1"]["n_eval"]
        return f"{seconds:.1f} s per summary (section 5: 5 strategies x {n}, 50 new tokens)" if seconds else "-"
    if lab == "lab2":
        s, peak = row["results"].get("seconds_per_step", {}), row["results"].get("peak_memory_mb", {})
        return (f"full FT {s.get('full_ft', 0):.1f} s/step, LoRA {s.get('lora', 0):.1f} s/step (batch 8); live tensors "
                f"in a step: full {peak.get('full_ft', 0) / 1024:.1f} GB, LoRA {peak.get('lora', 0) / 1024:.1f} GB")
    seconds = row.get("timed_cell_seconds")
    steps = SIZES["lab3"]["ppo_steps"]
    return f"{seconds / steps:.1f} s per PPO step (batch 4, 8-16 new tokens)" if seconds else "-"


def run_one(lab: str, dataset: Path, out: Path, dtype: str = "fp32") -> dict:
    """Run one lab in ``dtype`` (this process's children are only that lab's, so their peak RSS is the lab's)."""
    import resource

    from labkit import labs
    from labkit.run import execute

    res = execute(labs.get(lab).notebook, out / dtype, {"dataset": str(dataset), "dtype": dtype, **SIZES[lab]},
                  profile="course", cell_timeout=3600, timeout=3600)
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB: the largest process
    row = {"lab": lab, "dtype": dtype, "ok": res.ok, "message": res.message, "seconds": res.seconds, "peak_gb": peak_gb,
           "settings": res.results.get("settings"), "results": {k: res.results.get(k) for k in (
               "seconds_per_step", "peak_memory_mb")},
           "timed_cell_seconds": cell_seconds(res.output_notebook, TIMED_CELLS[lab]) if lab in TIMED_CELLS and res.ok
           else None}
    row["per_step"] = per_step(lab, row) if res.ok else "-"
    return row


# ----------------------------------------------------------------------------- quick and full


def quick_check() -> int:
    """What a full run relies on, checked without running a lab. Returns the exit status."""
    import nbformat

    from labkit import labs
    from labkit.run_params import inspect_parameters

    problems = []
    for lab, sizes in SIZES.items():
        knobs = labs.defaults(lab, "course")
        problems += [f"{lab} has no knob {name!r} (SIZES)" for name in sizes if name not in knobs]
        if lab in TIMED_CELLS:
            ids = {cell.get("id") for cell in nbformat.read(labs.get(lab).notebook, as_version=4).cells}
            problems += [] if TIMED_CELLS[lab] in ids else [f"{lab} has no cell {TIMED_CELLS[lab]!r} (TIMED_CELLS)"]
    problems += [f"{lab}'s parameters cell has no 'dtype' (the runs in each dtype set it)" for lab in SIZES
                 if "dtype" not in inspect_parameters(labs.get(lab).notebook)]
    recorded = read_figures()
    problems += [f"BENCHMARKS.md's quoted-figures table has no row {key!r}" for key in MEASURES if key not in recorded]
    print(f"quick: the sizes turned down are knobs of {', '.join(SIZES)}; the timed cells exist; "
          f"BENCHMARKS.md records {len(recorded)} quoted figures:")
    for figure in recorded.values():
        print(figure.row())
    print("skipped: running the labs themselves (about 10 minutes and 16 GB at flan-t5-base size): run without --quick")
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


def report(rows: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The run's table for BENCHMARKS.md (a row per lab and dtype, bf16's wall time as a ratio to fp32's), and
    its rows of the quoted-figures table (from the fp32 runs: what the labs' texts quote)."""
    print("\n| lab | dtype | sizes turned down | wall | peak memory (RSS) | per step | the lab's hardware text |")
    print("|---|---|---|---|---|---|---|")
    for (lab, dtype), row in rows.items():
        turned = ", ".join(f"{k} {v}" for k, v in SIZES[lab].items())
        wall = f"{row['seconds']:.0f} s"
        fp32 = rows.get((lab, "fp32"))
        if dtype != "fp32" and fp32:
            wall += f" ({fp32['seconds'] / row['seconds']:.2f}x fp32's speed)"
        print(f"| {lab} | {dtype} | {turned} | {wall} | {row['peak_gb']:.1f} GB | {row['per_step']} | {STATED[lab]} |")
    print("\nThe quoted-figures table's rows this run measured (paste them into BENCHMARKS.md; then make each lab's "
          "text agree: tests/test_quoted_figures.py):")
    for figure in new_figures({lab: row for (lab, dtype), row in rows.items() if dtype == "fp32"}, read_figures()):
        print(figure.row())


def chosen_dtypes(asked: list[str]) -> list[str]:
    """The dtypes a run measures: ``asked`` as given, or for ``auto`` fp32 and, where this CPU is fast at it
    (labkit.precision's measurement, or an avx512_bf16/amx_bf16 flag), bf16; it says why bf16 is skipped."""
    if asked != ["auto"]:
        bad = [d for d in asked if d not in ("fp32", "bf16")]
        if bad:
            raise SystemExit(f"--dtypes takes auto, or fp32 and/or bf16; got {' '.join(bad)}")
        return list(dict.fromkeys(asked))
    from labkit import precision

    measured, flags = precision.cached_measurement(), precision.cpu_bf16_flags()
    print(f"CPU: {precision.cpu_model()}: fp32 {measured.fp32_gflops:.1f}, bf16 {measured.bf16_gflops:.1f} GFLOP/s "
          f"({measured.speedup:.2f}x; flags: {', '.join(flags) or 'no avx512_bf16/amx_bf16'})")
    if measured.fast_bf16 or flags:
        return ["fp32", "bf16"]
    print(f"bf16 skipped: this CPU has no fast bf16 (bf16 matmuls ran {measured.speedup:.2f}x as fast as fp32, < "
          f"{precision.FAST_BF16_RATIO}x, and neither avx512_bf16 nor amx_bf16): the labs' dtype='auto' uses fp32 "
          "here (--dtypes fp32 bf16 runs it anyway)")
    return ["fp32"]


def run_labs(labs_: list[str], dtypes: list[str], dataset: Path,
             out: Path) -> tuple[dict[tuple[str, str], dict[str, Any]], int]:
    """Each lab in each dtype in its own process; the rows of those that ran, and the exit status."""
    rows, status = {}, 0
    for lab, dtype in ((lab, dtype) for lab in labs_ for dtype in dtypes):
        proc = subprocess.run([sys.executable, __file__, "--one", lab, "--dtype", dtype, "--dataset", str(dataset),
                               "--out", str(out)], capture_output=True, text=True)
        try:
            row = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            print(f"{lab} ({dtype}): the run crashed: {proc.stderr[-800:]}")
            status = 1
            continue
        if not row["ok"]:
            print(f"{lab} ({dtype}): failed: {row['message']}")
            status = 1
            continue
        rows[(lab, dtype)] = row
        print(f"{lab} ({dtype}): {row['seconds']:.0f} s, peak {row['peak_gb']:.1f} GB; {row['per_step']}; "
              f"settings {json.dumps(row['settings'])}", flush=True)
    return rows, status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None, help="a stand-in folder (default: LABKIT_HOME/course-shaped, built)")
    parser.add_argument("--dataset", default=None, help="a DialogSum file or folder (default: the shared dev split)")
    parser.add_argument("--out", default=None, help="where the executed notebooks go (default: a temporary folder)")
    parser.add_argument("--labs", nargs="*", default=list(SIZES))
    parser.add_argument("--dtypes", nargs="+", default=["auto"],
                        help="auto (fp32, and bf16 where this CPU is fast at it), or fp32 and/or bf16")
    parser.add_argument("--quick", action="store_true", help="check what a full run relies on, in seconds, no lab run")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one lab, print JSON
    parser.add_argument("--dtype", default="fp32", help=argparse.SUPPRESS)  # internal: that run's dtype
    args = parser.parse_args()
    if args.quick:
        chosen_dtypes([d for d in args.dtypes if d != "auto"] or ["fp32"])  # the names only: no measurement
        return quick_check()

    from labkit import standin
    from labkit.config import labkit_home, shared_dialogsum_path

    dataset = Path(args.dataset) if args.dataset else shared_dialogsum_path()
    if args.one:
        print(json.dumps(run_one(args.one, dataset, Path(args.out), args.dtype)))
        return 0
    dtypes = chosen_dtypes(args.dtypes)
    models = Path(args.models) if args.models else labkit_home() / "course-shaped"
    standin.build(models)
    os.environ["LABKIT_MODELS"] = str(models)
    if not dataset.exists():
        print(f"no dataset at {dataset}: pass --dataset (a DialogSum .jsonl file or folder)")
        return 2
    out = Path(args.out or tempfile.mkdtemp(prefix="course-shaped-"))
    print(f"course-shaped stand-in {models} (random weights: shapes and memory only); dataset {dataset}; out {out}")
    rows, status = run_labs(args.labs, dtypes, dataset, out)
    report(rows)
    return status


if __name__ == "__main__":
    sys.exit(main())
