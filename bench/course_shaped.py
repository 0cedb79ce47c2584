"""The three labs with profile="course" on the course-shaped stand-in, on this machine's CPU: per lab the wall
time, the peak memory of the lab's processes, seconds per step of its heavy part, and the memory its
"Hardware for the course profile" text states, all from one run.

The stand-in (``labkit fixtures --course-shaped``; random weights, for shapes and memory only) is built into
``LABKIT_HOME/course-shaped`` unless ``--models`` names one. The course's settings, with only the sizes turned
down (lab 2 takes 4 steps so that one steady-state step is timed; lab 3 two PPO steps), on the real DialogSum
validation split (``--dataset``; default ../shared/data/dialogsum/dialogsum.dev.jsonl).

Run: .venv/bin/python bench/course_shaped.py [--models DIR] [--dataset FILE] [--out DIR] [--labs lab1 lab2 lab3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SIZES = {
    "lab1": {"n_eval": 4},
    "lab2": {"n_eval": 4, "max_steps": 4, "train_size": 32},
    "lab3": {"n_eval": 4, "ppo_steps": 2, "batch_size": 4, "mini_batch_size": 2, "min_new_tokens": 8,
             "max_new_tokens": 16},
}
# What each lab's "Hardware for the course profile" text states (GB), to print beside the measurement.
STATED = {
    "lab1": "weights 1.0 GB fp32 (4 B/param); any 4 GB GPU",
    "lab2": "rule of thumb 5.9 GB full FT (24 B/param), 1.1 GB LoRA + activations; GPU >= 16 GB",
    "lab3": "policy 1.0 GB + reward model 0.5 GB + rollouts of up to 400 tokens; GPU >= 16 GB",
}


def cell_seconds(notebook: Path, cell_id: str) -> float | None:
    """How long one cell of an executed notebook ran (papermill's per-cell record)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.get("id") == cell_id:
            return cell.metadata.get("papermill", {}).get("duration")
    return None


def per_step(lab: str, res) -> str:  # noqa: ANN001
    r = res.results
    if lab == "lab1":
        seconds = cell_seconds(res.output_notebook, "lab1-s5-run")
        n = 5 * SIZES["lab1"]["n_eval"]
        return f"{seconds / n:.1f} s per summary (section 5: 5 strategies x {n // 5}, 50 new tokens)" if seconds else "-"
    if lab == "lab2":
        s, peak = r.get("seconds_per_step", {}), r.get("peak_memory_mb", {})
        return (f"full FT {s.get('full_ft', 0):.1f} s/step, LoRA {s.get('lora', 0):.1f} s/step (batch 8); live tensors "
                f"in a step: full {peak.get('full_ft', 0) / 1024:.1f} GB, LoRA {peak.get('lora', 0) / 1024:.1f} GB")
    seconds = cell_seconds(res.output_notebook, "lab3-train")
    steps = SIZES["lab3"]["ppo_steps"]
    return f"{seconds / steps:.1f} s per PPO step (batch 4, 8-16 new tokens)" if seconds else "-"


def run_one(lab: str, dataset: Path, out: Path) -> dict:
    """Run one lab (this process's children are only that lab's, so their peak RSS is the lab's)."""
    import resource

    from labkit import labs
    from labkit.run import execute

    res = execute(labs.get(lab).notebook, out, {"dataset": str(dataset), **SIZES[lab]}, profile="course",
                  cell_timeout=3600, timeout=3600)
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB: the largest process
    return {"lab": lab, "ok": res.ok, "message": res.message, "seconds": res.seconds, "peak_gb": peak_gb,
            "per_step": per_step(lab, res) if res.ok else "-", "settings": res.results.get("settings")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None, help="a stand-in folder (default: LABKIT_HOME/course-shaped, built)")
    parser.add_argument("--dataset", default=None, help="a DialogSum file or folder (default: the shared dev split)")
    parser.add_argument("--out", default=None, help="where the executed notebooks go (default: a temporary folder)")
    parser.add_argument("--labs", nargs="*", default=list(SIZES))
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one lab, print JSON
    args = parser.parse_args()

    from labkit import standin
    from labkit.config import labkit_home, shared_dialogsum_path

    dataset = Path(args.dataset) if args.dataset else shared_dialogsum_path()
    if args.one:
        print(json.dumps(run_one(args.one, dataset, Path(args.out))))
        return 0
    models = Path(args.models) if args.models else labkit_home() / "course-shaped"
    standin.build(models)
    os.environ["LABKIT_MODELS"] = str(models)
    if not dataset.exists():
        print(f"no dataset at {dataset}: pass --dataset (a DialogSum .jsonl file or folder)")
        return 2
    out = Path(args.out or tempfile.mkdtemp(prefix="course-shaped-"))
    print(f"course-shaped stand-in {models} (random weights: shapes and memory only); dataset {dataset}; out {out}")
    rows, status = [], 0
    for lab in args.labs:
        proc = subprocess.run([sys.executable, __file__, "--one", lab, "--dataset", str(dataset), "--out", str(out)],
                              capture_output=True, text=True)
        try:
            row = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            print(f"{lab}: the run crashed: {proc.stderr[-800:]}")
            status = 1
            continue
        if not row["ok"]:
            print(f"{lab}: failed: {row['message']}")
            status = 1
            continue
        turned = ", ".join(f"{k} {v}" for k, v in SIZES[lab].items())
        rows.append((lab, row["seconds"], row["peak_gb"], row["per_step"], turned))
        print(f"{lab}: {row['seconds']:.0f} s, peak {row['peak_gb']:.1f} GB; {row['per_step']}; "
              f"settings {json.dumps(row['settings'])}", flush=True)
    print("\n| lab | sizes turned down | wall | peak memory (RSS) | per step | the lab's hardware text |")
    print("|---|---|---|---|---|---|")
    for lab, seconds, peak, step, turned in rows:
        print(f"| {lab} | {turned} | {seconds:.0f} s | {peak:.1f} GB | {step} | {STATED[lab]} |")
    return status


if __name__ == "__main__":
    sys.exit(main())
