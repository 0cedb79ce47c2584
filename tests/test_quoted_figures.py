"""The measured figures the labs' texts quote come from one place: BENCHMARKS.md's quoted-figures table, which
bench/course_shaped.py reads and prints new rows for. A lab whose text drifts from the recorded figure (more than
15%), or no longer says it in the recorded words, fails here: lab 3's hardware text once said 3.7 GB long after
DPO had raised the measured peak to 6.0 GB."""
from __future__ import annotations

import importlib.util
import sys

import nbformat
import pytest

from labkit import labs
from labkit.config import repo_root

TOLERANCE = 0.15  # a quoted figure may round, not drift


def _course_shaped():
    """bench/course_shaped.py, imported by path (bench/ is not a package)."""
    path = repo_root() / "bench" / "course_shaped.py"
    spec = importlib.util.spec_from_file_location("bench_course_shaped", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


BENCH = _course_shaped()
FIGURES = BENCH.read_figures()


def _markdown(lab: str) -> str:
    nb = nbformat.read(labs.get(lab).notebook, as_version=4)
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")


def test_the_table_records_every_figure_the_course_shaped_bench_measures():
    assert set(BENCH.MEASURES) <= set(FIGURES), set(BENCH.MEASURES) - set(FIGURES)
    assert {f.lab for f in FIGURES.values()} == {"lab1", "lab2", "lab3"} and all(f.lab in labs.ids() for f in FIGURES.values())
    assert all(f.value > 0 and "{}" in f.words and f.measured for f in FIGURES.values())


@pytest.mark.parametrize("key", sorted(FIGURES))
def test_each_lab_quotes_the_recorded_figure(key):
    figure = FIGURES[key]
    stated = figure.quoted_in(_markdown(figure.lab))
    assert stated is not None, (f"{figure.lab}'s text no longer says {figure.words!r}: say the figure in those words, "
                                f"or change its row in BENCHMARKS.md")
    assert abs(stated - figure.value) <= TOLERANCE * figure.value, (
        f"{figure.lab} says {stated} {figure.unit} where BENCHMARKS.md records {figure.value} {figure.unit} "
        f"({figure.measured}): correct the lab's text")


def test_a_drifted_or_reworded_text_is_caught():
    figure = FIGURES["lab3.peak_gb"]
    assert figure.quoted_in("... the whole lab\npeaked at 3.7 GB. Use ...") == 3.7  # found across a line break
    assert abs(3.7 - figure.value) > TOLERANCE * figure.value  # the text before this test: caught
    assert figure.quoted_in("the lab peaked at 6.0 GB") is None  # other words: caught as missing
    assert BENCH.Figure("k", "lab2", 15.4, "GB", "m", "{} GB for the whole lab").quoted_in(
        "15.4 GB for the whole lab") == 15.4


def test_the_bench_reports_bf16_beside_fp32_and_quotes_only_fp32(capsys):
    row = {"seconds": 100.0, "peak_gb": 6.0, "per_step": "-", "results": {}, "timed_cell_seconds": None}
    BENCH.report({("lab3", "fp32"): row, ("lab3", "bf16"): {**row, "seconds": 40.0, "peak_gb": 4.0}})
    out = capsys.readouterr().out
    assert "| lab3 | fp32 |" in out and "| lab3 | bf16 |" in out and "(2.50x fp32's speed)" in out
    quoted = [line for line in out.splitlines() if line.startswith("| lab3.peak_gb |")]
    assert len(quoted) == 1 and "| 6.0 |" in quoted[0]  # the labs' texts quote the fp32 run's peak, not bf16's 4.0
    assert BENCH.chosen_dtypes(["bf16", "fp32", "bf16"]) == ["bf16", "fp32"]
    with pytest.raises(SystemExit, match="fp32 and/or bf16; got fp16"):
        BENCH.chosen_dtypes(["fp16"])
