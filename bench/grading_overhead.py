"""Grading overhead per submission beyond the lab's own runtime.

Ten copies of a tiny notebook (a parameters cell, a few labkit.record calls,
an artifact) are graded one at a time (``--workers 1``) with a one-check-per-
artifact rubric. For each submission:

    overhead = wall time of grading it (grader process start, sandbox, papermill,
               kernel start and shutdown, checks, report files)
             - the notebook's own runtime (sum of its cells' execution times)

Prints the per-submission figures, their mean and median, and the goal (<= 3 s).
Run: .venv/bin/python bench/grading_overhead.py [--n 10] [--isolation auto|bwrap|rlimits]
Quick (``--quick``: one submission, no warm-up; seconds, the figure is a cold start's): checks the bench itself.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

RUBRIC = """lab: lab1
checks:
  - {name: ran_to_completion, type: ran_to_completion, points: 1}
  - {name: results_recorded, type: results_recorded, points: 1, keys: [total, exercise_1]}
  - {name: artifact, type: artifact_exists, points: 1, paths: [squares.csv]}
  - {name: exercise_1, type: exercise, number: 1, points: 1, verify: {type: close_to_result, path: total}}
"""


def tiny_notebook() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = new_code_cell('output_dir = "outputs/lab1"\nn = 5', id="p")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params,
                new_code_cell("from labkit.record import record, set_results_dir\nset_results_dir(output_dir)", id="s"),
                new_code_cell("rows = [(x, x * x) for x in range(n)]\n"
                              "open(f'{output_dir}/squares.csv', 'w').write('x,y\\n' + ''.join(f'{x},{y}\\n' for x, y in rows))\n"
                              "total = sum(y for _, y in rows)\nrecord('total', total)", id="w"),
                new_code_cell("record('exercise_1', total)", id="e")]
    return nb


def cell_seconds(executed: Path) -> float:
    nb = nbformat.read(executed, as_version=4)
    return sum(float(c.get("metadata", {}).get("papermill", {}).get("duration") or 0) for c in nb.cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--isolation", default="auto")
    ap.add_argument("--quick", action="store_true", help="one submission, no warm-up: checks the bench in seconds")
    args = ap.parse_args()
    if args.quick:
        args.n = 1
    from labkit import grading as grade

    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        root = Path(tmp)
        (root / "subs").mkdir()
        for i in range(args.n):
            nbformat.write(tiny_notebook(), root / "subs" / f"student{i:02d}.ipynb")
        (root / "rubric.yaml").write_text(RUBRIC)
        if not args.quick:  # warm-up (imports, page cache) so the first measured submission is not a cold start
            (root / "warmsubs").mkdir()
            nbformat.write(tiny_notebook(), root / "warmsubs" / "warm.ipynb")
            grade.grade_batch(root / "warmsubs", "lab1", root / "warmgrades", rubric=str(root / "rubric.yaml"),
                              timeout=60, workers=1, isolation=args.isolation, progress=False)
        subs = grade.discover(root / "subs")
        opts = grade.GradeOptions(lab="lab1", out=str(root / "grades"), rubric=str(root / "rubric.yaml"),
                                  timeout=60, isolation=args.isolation)
        rows = []
        for sub in subs:
            t0 = time.perf_counter()
            rec = grade.grade_submission(sub, opts)
            wall = time.perf_counter() - t0
            own = cell_seconds(root / "grades" / sub.id / "executed.ipynb")
            rows.append((sub.id, wall, own, wall - own, rec["score"], rec["max"]))
        iso = rec.get("isolation", "").split(":")[0]
    print(f"isolation: {iso}")
    print(f"{'submission':>12} {'wall s':>8} {'cells s':>8} {'overhead s':>10} score")
    for sid, wall, own, over, score, mx in rows:
        print(f"{sid:>12} {wall:8.2f} {own:8.2f} {over:10.2f} {score:g}/{mx:g}")
    over = [r[3] for r in rows]
    print(f"overhead per submission: mean {statistics.mean(over):.2f} s, median {statistics.median(over):.2f} s, "
          f"max {max(over):.2f} s over {len(rows)} submissions (goal <= 3 s)")
    print(json.dumps({"overhead_mean_s": round(statistics.mean(over), 3),
                      "overhead_median_s": round(statistics.median(over), 3), "n": len(rows)}))


if __name__ == "__main__":
    main()
