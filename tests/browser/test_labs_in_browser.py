"""The labs as a learner meets them: JupyterLab in a real Chromium, Run → Run All Cells.

For each lab a copy is opened (labs/ is never modified; the lab writes its outputs
under the temp notebook folder), run to the end from the menu, saved, and the saved
.ipynb is checked for error outputs and unexecuted cells. Progress bars must render
as ipywidgets, Lab 1's prompt explorer must answer a control change, and a
screenshot per lab goes to outputs/browser/ (``LABKIT_BROWSER_OUT`` overrides).

Run with ``make test-browser`` (installs Chromium and playwright) or
``pytest -m browser tests/browser``. ``LABKIT_BROWSER_LAB_TIMEOUT`` (seconds,
default 900) bounds each lab's run.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jlab_harness import REPO, LabServer, screenshot_dir

pytestmark = pytest.mark.browser

LABS = sorted((REPO / "labs").glob("lab*.ipynb"))
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
LAB_TIMEOUT_S = float(os.environ.get("LABKIT_BROWSER_LAB_TIMEOUT", "900"))
KERNEL_START_TIMEOUT_MS = 180_000
WIDGET_TIMEOUT_S = 120

# Prompt texts of every code cell and the kernel indicator of the visible notebook.
# (JupyterLab 4.6 renders all cells with content-visibility, so off-screen prompts are in the DOM.)
_STATE_JS = """(panel) => {
  const p = document.querySelector(panel);
  if (!p) return null;
  const prompts = Array.from(p.querySelectorAll('.jp-CodeCell .jp-InputPrompt')).map(e => e.textContent.trim());
  const ind = p.querySelector('.jp-Notebook-ExecutionIndicator');
  return {prompts, status: ind ? ind.dataset.status : null};
}"""
# tqdm's widget bars use leave=False in labkit and vanish when done: remember any that appeared.
_WATCH_PROGRESS_JS = """() => {
  window.__sawProgressWidget = !!document.querySelector('.widget-hprogress');
  new MutationObserver(() => {
    if (document.querySelector('.widget-hprogress')) window.__sawProgressWidget = true;
  }).observe(document.body, {childList: true, subtree: true});
}"""


# ----------------------------------------------------------------------------- helpers


def _menu(page: Any, menu: str, item: str | re.Pattern[str]) -> None:
    """Click a main-menu entry the way a learner does (e.g. Run → Run All Cells)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{menu}$")).click()
    label = item if isinstance(item, re.Pattern) else re.compile(rf"^{re.escape(item)}$")
    page.locator(".lm-Menu-item:visible .lm-Menu-itemLabel", has_text=label).first.click()


def open_notebook(page: Any, server: LabServer, name: str) -> None:
    """Open a notebook (alone: ``reset`` drops the tabs an earlier test left in the
    saved workspace, which would start their kernels too) and wait until its kernel is idle."""
    page.goto(server.url(f"/lab/tree/{name}?reset"))
    page.wait_for_selector(f"{PANEL} .jp-Notebook .jp-Cell", timeout=KERNEL_START_TIMEOUT_MS)
    page.wait_for_selector(f'{PANEL} .jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=KERNEL_START_TIMEOUT_MS)
    # The indicator reads "idle" a moment before the kernel's websocket is up; the server knows when it is.
    deadline = time.monotonic() + KERNEL_START_TIMEOUT_MS / 1000
    while not server.notebook_kernel_ready(name):
        assert time.monotonic() < deadline, f"the notebook's kernel did not connect:\n{server.log_tail()}"
        time.sleep(0.5)
    page.wait_for_timeout(1000)
    dialogs = page.locator(".jp-Dialog")
    assert dialogs.count() == 0, f"a dialog blocks the notebook: {dialogs.first.inner_text()}"


def run_all_cells(page: Any, timeout_s: float) -> dict[str, Any]:
    """Run → Run All Cells, then wait until no cell is queued or running and the kernel is idle."""
    page.evaluate(_WATCH_PROGRESS_JS)
    _menu(page, "Run", "Run All Cells")
    t0 = time.monotonic()
    deadline, stable, state, clicks = t0 + timeout_s, 0, None, 1
    while time.monotonic() < deadline:
        time.sleep(2)
        state = page.evaluate(_STATE_JS, PANEL)
        busy = state is None or any("*" in p for p in state["prompts"]) or state["status"] != "idle"
        started = state is not None and any(re.search(r"\d", p) for p in state["prompts"])
        if not started and not busy and clicks < 3 and time.monotonic() - t0 > 20 * clicks:
            # Nothing queued, nothing ran: the click came before the kernel took requests. Safe to repeat.
            _menu(page, "Run", "Run All Cells")
            clicks += 1
        stable = stable + 1 if (started and not busy) else 0
        if stable >= 3:  # idle for three polls in a row, not just between two cells
            return state
    done = sum(bool(re.search(r"\d", p)) for p in (state or {}).get("prompts", []))
    pytest.fail(f"the notebook did not finish within {timeout_s:.0f} s ({done} of "
                f"{len((state or {}).get('prompts', []))} code cells executed, kernel {(state or {}).get('status')})")


def save_and_read(page: Any, path: Path, timeout_s: float = 60) -> nbformat.NotebookNode:
    """File → Save Notebook, wait until the file on disk is rewritten, and read it."""
    before = path.stat().st_mtime_ns
    _menu(page, "File", re.compile(r"^Save( Notebook)?$"))
    deadline = time.monotonic() + timeout_s
    while path.stat().st_mtime_ns == before:
        assert time.monotonic() < deadline, f"JupyterLab did not save {path.name} within {timeout_s:.0f} s"
        time.sleep(0.25)
    page.wait_for_selector("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)", timeout=30_000)
    return nbformat.read(path, as_version=4)


def notebook_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Error outputs, tracebacks on stderr, text-only progress bars, cells that never ran."""
    problems = []
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        where = cell.get("id", "?")
        if cell.get("execution_count") is None:
            problems.append(f"{where}: did not run")
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"{where}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr":
                if "Traceback" in out.text:
                    problems.append(f"{where}: traceback on stderr: {out.text[-300:]}")
                if "IProgress not found" in out.text:
                    problems.append(f"{where}: tqdm fell back to text (ipywidgets missing in the kernel)")
    return problems


def stdout_of(nb: nbformat.NotebookNode, cell_id: str) -> str:
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


def assert_no_news_toast(page: Any) -> None:
    # JupyterLab 4.6 asks "get notified about official Jupyter news?" on a first start unless turned off.
    assert page.get_by_text(re.compile("official Jupyter news", re.I)).count() == 0, "the Jupyter news toast is showing"


def screenshot(page: Any, name: str, scroll_to: str | None = None) -> Path:
    if scroll_to and page.locator(scroll_to).count():
        page.locator(scroll_to).first.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
    path = screenshot_dir() / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def wait_for_value_change(read: Any, before: str, timeout_s: float = WIDGET_TIMEOUT_S) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = read()
        if value != before:
            return value
        time.sleep(0.25)
    pytest.fail(f"the widget output did not change within {timeout_s:.0f} s (still {before[:120]!r})")


def dropdown(page: Any, description: str) -> Any:
    """The <select> of the ipywidgets Dropdown with this description label."""
    label = page.locator("label", has_text=re.compile(rf"^{re.escape(description)}$"))
    return page.locator(f"{PANEL} .widget-dropdown", has=label).locator("select").first


# ----------------------------------------------------------------------------- a toy notebook: the harness itself


def _toy_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)", id="toy-prefix"),
        nbformat.v4.new_code_cell("import time\nfrom tqdm.auto import tqdm\n"
                                  "for _ in tqdm(range(8), desc='toy', leave=False):\n    time.sleep(0.25)", id="toy-tqdm"),
        nbformat.v4.new_code_cell(
            "import ipywidgets as w\n"
            "slider = w.IntSlider(value=3, min=0, max=10, description='n')\n"
            "pick = w.Dropdown(options=['alpha', 'beta'], value='alpha', description='word')\n"
            "out = w.HTML()\n"
            "def show(_=None):\n    out.value = f'square={slider.value ** 2} word={pick.value}'\n"
            "for control in (slider, pick):\n    control.observe(show, names='value')\n"
            "show()\nw.VBox([slider, pick, out])", id="toy-widgets"),
    ]
    return nb


def test_toy_notebook_kernel_widgets_and_progress(page: Any, lab_server: LabServer) -> None:
    """The harness on a small notebook: the labs' "python3" kernel is this venv's Python,
    tqdm.auto draws a widget bar, a slider and a dropdown update their observer's output."""
    path = lab_server.notebook_dir / "toy.ipynb"
    nbformat.write(_toy_notebook(), path)
    open_notebook(page, lab_server, path.name)
    run_all_cells(page, timeout_s=120)
    assert page.evaluate("() => window.__sawProgressWidget"), "tqdm.auto did not render a widget progress bar"

    out = page.locator(f"{PANEL} .widget-html-content", has_text="square=")
    assert out.inner_text().strip() == "square=9 word=alpha"
    page.locator(f"{PANEL} .widget-slider .noUi-handle").first.press("ArrowRight")
    wait_for_value_change(lambda: out.inner_text().strip(), "square=9 word=alpha")
    assert out.inner_text().strip() == "square=16 word=alpha"
    dropdown(page, "word").select_option(label="beta")
    assert wait_for_value_change(lambda: out.inner_text().strip(), "square=16 word=alpha") == "square=16 word=beta"

    nb = save_and_read(page, path)
    assert notebook_problems(nb) == []
    assert Path(stdout_of(nb, "toy-prefix").strip()).resolve() == Path(sys.prefix).resolve(), \
        "the notebook's python3 kernel is not this project's virtual environment"
    assert_no_news_toast(page)


# ----------------------------------------------------------------------------- the labs


def check_prompt_explorer(page: Any) -> None:
    """Lab 1's explorer rendered as live widgets and regenerates when the strategy changes."""
    strategy = dropdown(page, "strategy")
    strategy.scroll_into_view_if_needed()
    assert strategy.is_visible(), "the prompt explorer's strategy dropdown did not render"
    prompt = page.locator(f"{PANEL} .widget-textarea textarea").last
    budget = page.locator(f"{PANEL} .widget-html-content", has_text="shots kept").last
    before_prompt, before_budget = prompt.input_value(), budget.inner_text()
    assert before_prompt.strip(), "the explorer shows no prompt"
    strategy.select_option(label="few_shot")
    after_prompt = wait_for_value_change(prompt.input_value, before_prompt)
    kept = re.search(r"(\d+) of (\d+) shots kept", wait_for_value_change(budget.inner_text, before_budget))
    assert kept and int(kept.group(1)) >= 1, f"few-shot kept no worked example: {budget.inner_text()!r}"
    assert len(after_prompt) > len(before_prompt), "the few-shot prompt should be longer than the zero-shot one"
    summary = page.locator(f"{PANEL} .widget-html-content", has_text="model summary:").last
    assert summary.inner_text().split("model summary:", 1)[1].strip(), "the explorer shows no model summary"
    screenshot(page, "lab1_prompt_explorer")


@pytest.mark.parametrize("lab", LABS, ids=[p.stem for p in LABS])
def test_lab_runs_in_jupyterlab(page: Any, lab_server: LabServer, lab: Path) -> None:
    """Run → Run All Cells on a copy of the lab: every cell runs, no error output,
    progress bars are widgets; Lab 1's prompt explorer responds to a change."""
    copy = lab_server.notebook_dir / lab.name
    shutil.copyfile(lab, copy)
    try:
        _run_and_check_lab(page, lab_server, lab, copy)
    except BaseException:
        screenshot(page, f"{lab.stem}.failed")  # where the learner would be looking
        raise


def _run_and_check_lab(page: Any, lab_server: LabServer, lab: Path, copy: Path) -> None:
    open_notebook(page, lab_server, copy.name)
    t0 = time.monotonic()
    run_all_cells(page, timeout_s=LAB_TIMEOUT_S)
    seconds = time.monotonic() - t0
    print(f"{lab.stem}: ran in JupyterLab in {seconds:.0f} s")

    tracebacks = page.locator(f'{PANEL} .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
                              has_text="Traceback")
    assert tracebacks.count() == 0, tracebacks.first.inner_text()[-1500:]
    nb = save_and_read(page, copy)
    assert notebook_problems(nb) == []
    assert page.evaluate("() => window.__sawProgressWidget"), "no tqdm widget progress bar appeared during the run"
    results = copy.parent / "outputs" / lab.stem.split("_")[0] / "results.json"
    assert results.is_file(), f"the lab wrote no {results.relative_to(copy.parent)}"
    assert json.loads(results.read_text())["run_info"]["profile"] == "offline"
    screenshot(page, lab.stem, scroll_to=f"{PANEL} .jp-RenderedImage")
    if lab.stem.startswith("lab1"):
        check_prompt_explorer(page)
    assert_no_news_toast(page)
