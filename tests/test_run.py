"""labkit.run: parameter validation before any kernel starts, failing cells, timeouts, the CLI."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hostile.notebooks import toy_notebook  # noqa: E402

from labkit import run as runmod  # noqa: E402
from labkit import run_params  # noqa: E402
from labkit.config import LabkitError  # noqa: E402

PARAMS = 'output_dir = "outputs/lab1"\nn = 5\nrate = 0.5\nname = "toy"\nflag = True'


@pytest.fixture()
def toy(tmp_path: Path) -> Path:
    path = tmp_path / "lab1_toy.ipynb"
    nbformat.write(toy_notebook(params=PARAMS), path)
    return path


def _no_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a, **k):
        raise AssertionError("a kernel was started for an invalid call")
    monkeypatch.setattr(runmod, "_run_child", boom)


def test_inspect_parameters_types(toy: Path) -> None:
    spec = run_params.inspect_parameters(toy)
    assert {k: v["type"] for k, v in spec.items()} == {"output_dir": str, "n": int, "rate": float, "name": str, "flag": bool}


def test_unknown_parameter_lists_valid_ones_and_suggests(toy: Path, tmp_path: Path, monkeypatch) -> None:
    _no_kernel(monkeypatch)
    with pytest.raises(LabkitError) as err:
        runmod.execute(toy, tmp_path / "out", {"nn": 3})
    msg = str(err.value)
    assert "Unknown parameter 'nn'" in msg and "Did you mean 'n'?" in msg
    assert "flag, n, name, output_dir, rate" in msg


def test_wrong_type_names_expected_type(toy: Path, tmp_path: Path, monkeypatch) -> None:
    _no_kernel(monkeypatch)
    with pytest.raises(LabkitError, match="expects a value of type int"):
        runmod.execute(toy, tmp_path / "out", {"n": 2.5})
    with pytest.raises(LabkitError, match="expects a value of type bool"):
        runmod.execute(toy, tmp_path / "out", {"flag": "sometimes"}, from_cli=True)
    with pytest.raises(LabkitError, match="expects a value of type int"):
        runmod.execute(toy, tmp_path / "out", {"n": True})


def test_int_accepted_for_float_and_cli_strings_coerced(toy: Path) -> None:
    spec = run_params.inspect_parameters(toy)
    assert run_params.validate_parameters(spec, {"rate": 1}) == {"rate": 1.0}
    got = run_params.validate_parameters(spec, {"n": "7", "rate": "0.25", "flag": "false", "name": "x"}, from_cli=True)
    assert got == {"n": 7, "rate": 0.25, "flag": False, "name": "x"}


def test_successful_run_layout_and_results(toy: Path, tmp_path: Path) -> None:
    res = runmod.execute(toy, tmp_path / "out", {"n": 4}, cell_timeout=60, timeout=120)
    assert res.ok, res.message
    assert res.output_notebook == (tmp_path / "out" / "lab1" / "lab1_toy.ipynb").resolve()
    assert res.results["total"] == 0 + 1 + 4 + 9
    assert json.loads((res.output_dir / "results.json").read_text())["exercise_1"] == 15
    assert (res.output_dir / "squares.csv").is_file()


def test_failing_cell_reports_cell_exception_and_keeps_partial_notebook(tmp_path: Path) -> None:
    nb = tmp_path / "lab1_bad.ipynb"
    nbformat.write(toy_notebook(extra="raise ValueError('no good')"), nb)
    res = runmod.execute(nb, tmp_path / "out", {}, cell_timeout=60, timeout=120)
    assert res.status == "error" and not res.ok
    assert res.cell == 4 and res.cell_id == "toy-extra"
    assert "ValueError: no good" in res.message and str(res.output_notebook) in res.message
    executed = nbformat.read(res.output_notebook, as_version=4)
    assert any(o.get("ename") == "ValueError" for c in executed.cells for o in c.get("outputs", []))


def test_lab_timeout_kills_the_kernel(tmp_path: Path) -> None:
    nb = tmp_path / "lab1_slow.ipynb"
    nbformat.write(toy_notebook(extra="import time\nwhile True:\n    time.sleep(0.1)"), nb)
    t0 = time.monotonic()
    res = runmod.execute(nb, tmp_path / "out", {}, cell_timeout=None, timeout=6)
    assert res.status == "timeout" and time.monotonic() - t0 < 30
    assert "cell 4" in res.message and res.output_notebook.is_file()


def test_cell_timeout(tmp_path: Path) -> None:
    nb = tmp_path / "lab1_slowcell.ipynb"
    nbformat.write(toy_notebook(extra="import time\ntime.sleep(30)"), nb)
    res = runmod.execute(nb, tmp_path / "out", {}, cell_timeout=2, timeout=60)
    assert res.status == "cell_timeout" and res.cell == 4


def test_cli_run_validation_error_exit_code(toy: Path, tmp_path: Path, capsys) -> None:
    from labkit.cli import main
    assert main(["run", str(toy), "--out", str(tmp_path / "o"), "-p", "nn=3"]) == 2
    assert "Did you mean 'n'?" in capsys.readouterr().err


def test_cli_run_summary_and_missing_labs(toy: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    from labkit.cli import main
    registry = {lab_id: runmod.labs.Lab(lab_id, tmp_path / "labs" / name, "toy", tmp_path / f"{lab_id}.yaml")
                for lab_id, name in (("lab1", toy.name), ("lab9", "lab9_absent.ipynb"))}
    monkeypatch.setattr(runmod.labs, "_REGISTRY", registry)  # the registry holds just these two labs
    (tmp_path / "labs").mkdir()
    toy.rename(tmp_path / "labs" / toy.name)
    code = main(["run", "all", "--out", str(tmp_path / "o"), "-p", "n=3"])
    out = capsys.readouterr().out
    assert code == 1  # lab9 is missing, and that is said, not hidden
    assert "lab9: missing" in out and "lab1: ok" in out
    assert "total" in out  # the headline results table
