"""What self-checks cost a lab: the learner's kernel time spent in the rubric's public checks, against the run.

Each lab runs once headless (labkit.run.execute, the offline profile) with self-checks on. Its last
``labkit.check()`` cell reports the kernel time every self-check took (loading the rubric at
start_lab included), measured inside the kernel around each check; the bench prints it beside the
run's wall-clock time and their ratio. For lab 1 (the shortest) it also runs the lab alternately with
self-checks off (``LABKIT_SELF_CHECK=off``) and on, three times each, and prints the mean wall clock
of each: on a busy 2-core machine their difference is mostly noise, far larger than the checks' own time.

Run:  .venv/bin/python bench/selfcheck_overhead.py [lab1 lab2 lab3]   (default: lab1; lab 1 ~3 min, labs 2-3 ~2-4 min)
Quick (``--quick``: instead of the lab, a three-cell notebook that starts it, records an answer to its first
self-check and calls ``labkit.check()``, run once; seconds, the share means nothing): checks the bench itself.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_TOOK = re.compile(r"self-checks took ([0-9.]+) s")
PAIRS = 3  # lab 1 runs with and without self-checks, alternately


def quick_notebook(lab: str, folder: Path) -> Path:
    """A stand-in for the lab in three cells: start it, record an answer that triggers its first self-check
    (the check may well fail: nothing else ran), ``labkit.check()``."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from labkit.rubrics import load_rubric

    trigger = next(c.trigger for c in load_rubric(lab).public_checks if c.trigger)
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = new_code_cell("profile = None\noutput_dir = None", id="parameters")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params,
                new_code_cell(f"import labkit\nctx = labkit.start_lab({lab!r}, profile=profile, output_dir=output_dir)",
                              id="setup"),
                new_code_cell(f"labkit.record({trigger!r}, 0)\nlabkit.check()", id="check")]
    path = folder / f"{lab}_quick.ipynb"
    nbformat.write(nb, path)
    return path


def run_lab(lab: str, out: Path, *, checks: bool, notebook: Path | None = None) -> tuple[float, float | None]:
    """(wall seconds of the run, seconds its self-checks took in the kernel, or None when off); ``notebook``
    replaces the lab's own."""
    import nbformat

    from labkit import labs, selfcheck
    from labkit.run import execute
    if checks:
        os.environ.pop(selfcheck.ENV, None)
    else:
        os.environ[selfcheck.ENV] = "off"
    try:
        result = execute(notebook or labs.get(lab).notebook, out, {}, lab=lab, timeout=1800)
    finally:
        os.environ.pop(selfcheck.ENV, None)
    if result.status != "ok":
        raise SystemExit(f"{lab} did not run: {result.message}")
    nb = nbformat.read(result.output_notebook, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream")
    found = _TOOK.findall(text)
    return result.seconds, float(found[-1]) if found else None


def on_and_off(lab: str, first: float, tmp: Path) -> None:
    """Run ``lab`` alternately without and with self-checks and print the mean wall clock of each."""
    on, off = [first], []
    for i in range(PAIRS):
        off.append(run_lab(lab, tmp / f"{lab}-off{i}", checks=False)[0])
        if i < PAIRS - 1:
            on.append(run_lab(lab, tmp / f"{lab}-on{i}", checks=True)[0])
    mean_on, mean_off = sum(on) / len(on), sum(off) / len(off)
    print(f"{lab}: wall clock, {PAIRS} runs each, alternating: with self-checks mean {mean_on:.1f} s "
          f"({', '.join(f'{x:.1f}' for x in on)}), without {mean_off:.1f} s "
          f"({', '.join(f'{x:.1f}' for x in off)}): on/off {mean_on / mean_off:.3f}", flush=True)


def main(argv: list[str]) -> int:
    from labkit import fixtures
    quick = "--quick" in argv
    chosen = [a for a in argv if a != "--quick"] or ["lab1"]
    fixtures.build()
    print("self-check overhead: kernel time of the public checks (rubric load included) / the lab's wall clock")
    if quick:
        print("quick: a three-cell notebook stands in for each lab (start, one answer, labkit.check()): "
              "the share means nothing")
    with tempfile.TemporaryDirectory(prefix="labkit-bench-selfcheck-") as tmp:
        for lab in chosen:
            notebook = quick_notebook(lab, Path(tmp)) if quick else None
            wall, took = run_lab(lab, Path(tmp) / f"{lab}-on", checks=True, notebook=notebook)
            if took is None:
                raise SystemExit(f"{lab}: no labkit.check() output with the self-checks' time")
            print(f"{lab}: self-checks {took:.2f} s of a {wall:.1f} s run: {100 * took / wall:.2f}%", flush=True)
            if lab == "lab1" and not quick:
                on_and_off(lab, wall, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
