"""A toy lab and the hostile submissions built from it (written into a folder by the grading tests).

The toy lab mirrors a real lab's contract at a fraction of the cost: a
``parameters`` cell, results recorded with labkit.record, an artifact
(``squares.csv``) the rubric verifies, and an exercise. Each hostile variant
replaces or adds one cell.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}

PARAMS = 'output_dir = "outputs/lab1"\nn = 5'
SETUP = "from labkit.record import record, set_results_dir\nset_results_dir(output_dir)"
WORK = ('import csv\nrows = [(x, x * x) for x in range(n)]\n'
        'with open(f"{output_dir}/squares.csv", "w", newline="") as fh:\n'
        '    csv.writer(fh).writerows([("x", "y"), *rows])\n'
        'total = sum(y for _, y in rows)\nrecord("total", total)')
EXERCISE = "# Exercise 1: the total plus one\n### BEGIN SOLUTION\nanswer = total + 1\n### END SOLUTION\nrecord(\"exercise_1\", answer)"


def toy_notebook(*, work: str = WORK, exercise: str = EXERCISE, extra: str | None = None,
                 tag_parameters: bool = True, params: str = PARAMS) -> nbformat.NotebookNode:
    """The toy lab; ``extra`` is a cell run between setup and work (where hostile code goes)."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    p = new_code_cell(params, id="toy-parameters")
    if tag_parameters:
        p.metadata["tags"] = ["parameters"]
    cells = [new_markdown_cell("# Toy lab", id="toy-intro"), p, new_code_cell(SETUP, id="toy-setup")]
    if extra:
        cells.append(new_code_cell(extra, id="toy-extra"))
    cells += [new_code_cell(work, id="toy-work"), new_code_cell(exercise, id="toy-ex1")]
    nb.cells = cells
    return nb


def hostile_cells(secret_paths: list[str], outside_target: str) -> dict[str, dict]:
    """name → keyword arguments of toy_notebook (or {'raw': text} for a file that is not a notebook)."""
    reads = "\n".join(f"    try:\n        leak.append(open({p!r}).read()[:200])\n    except Exception as e:\n"
                      f"        leak.append('')" for p in secret_paths)
    return {
        "good": {},
        "unanswered": {"exercise": "# Exercise 1\n# YOUR CODE HERE\nanswer = None\nrecord(\"exercise_1\", answer)"},
        "infinite_loop": {"extra": "while True:\n    pass"},
        "huge_output": {"extra": "import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 1_000_000 + '\\n')"},
        "os_exit": {"extra": "import os\nos._exit(1)"},
        "segfault": {"extra": "import ctypes\nctypes.string_at(0)"},
        "memory_hog": {"extra": "hog = bytearray(16 * 2**30)"},
        "memory_creep": {"extra": "hog = []\nwhile True:\n    hog.append(bytearray(64 * 2**20))"},
        "fork_storm": {"extra": "import os, time\nfor i in range(150):\n    if os.fork() == 0:\n"
                                "        time.sleep(60)\n        os._exit(0)\ntime.sleep(60)"},
        "forged_record": {"work": WORK + "\nrecord(\"total\", 999)"},
        "fake_csv": {"work": WORK.replace("(x, x * x)", "(x, 2 * x)")},
        "forged_results_json": {"work": WORK + "\nimport json\njson.dump({'total': 999, 'exercise_1': 1000}, "
                                              "open(f'{output_dir}/results.json', 'w'))"},
        "no_parameters": {"tag_parameters": False},
        "no_results": {"work": "total = 0", "exercise": "pass"},
        "read_outside": {"extra": f"leak = []\nif True:\n{reads}\nrecord('leak', leak)"},
        "write_outside": {"extra": f"try:\n    open({outside_target!r}, 'w').write('pwned')\nexcept Exception as e:\n"
                                   "    print('write refused:', e)"},
        "invalid_json": {"raw": '{"cells": [ this is not json'},
        "symlink_artifact": {"work": "import os\nos.symlink(" + repr(secret_paths[0] if secret_paths else "/etc/hostname")
                                     + ", f'{output_dir}/squares.csv')\ntotal = 30\nrecord('total', total)"},
        "raising": {"extra": "raise RuntimeError('student bug')"},
    }


def write_submissions(folder: Path, secret_paths: list[str], outside_target: str,
                      names: list[str] | None = None) -> list[str]:
    """Write the chosen hostile submissions (all by default) as <name>.ipynb into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    specs = hostile_cells(secret_paths, outside_target)
    for name in names or list(specs):
        spec = specs[name]
        path = folder / f"{name}.ipynb"
        if "raw" in spec:
            path.write_text(spec["raw"])
        else:
            nbformat.write(toy_notebook(**spec), path)
    return names or list(specs)
