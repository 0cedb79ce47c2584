"""The Lab 1 prompt explorer: pick a dialogue, a strategy, the number of shots
and a temperature; see the exact prompt, its token count against the encoder
limit, the model's summary and the human reference.

Built from plain ipywidgets with observers, so it also builds (and updates
when a control changes) without a browser or kernel: headless papermill runs
and tests drive it by setting control values.
"""
from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from labkit.config import MAX_SOURCE_TOKENS, LabkitError
from labkit.generate import generate, sampling_config
from labkit.prompts import STRATEGIES, BudgetedPrompt, build_prompt

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


def _label(i: int, row: Mapping[str, Any]) -> str:
    first = str(row["dialogue"]).split("\n", 1)[0]
    return f"{i}: {first[:60]}{'…' if len(first) > 60 else ''}"


class PromptExplorer:
    """Interactive prompt explorer. ``explorer.widget`` is the ipywidgets box;
    the explorer displays itself in a notebook. Every control change rebuilds
    the prompt and regenerates; ``explorer.last`` holds the latest result."""

    def __init__(
        self,
        model: "PreTrainedModel",
        tokenizer: "PreTrainedTokenizerBase",
        dialogues: Sequence[Mapping[str, Any]],
        shots: Sequence[Mapping[str, Any]],
        *,
        max_source_tokens: int = MAX_SOURCE_TOKENS,
        max_new_tokens: int = 50,
        seed: int = 0,
        start_index: int = 0,
    ) -> None:
        import ipywidgets as w

        rows = list(dialogues)
        if not rows:
            raise LabkitError("The prompt explorer needs at least one dialogue to pick from.")
        self.model, self.tokenizer = model, tokenizer
        self.rows, self.shots = rows, list(shots)
        self.max_source_tokens, self.max_new_tokens, self.seed = max_source_tokens, max_new_tokens, seed
        self.last: dict[str, Any] = {}

        self.dialogue = w.Dropdown(
            options=[(_label(i, r), i) for i, r in enumerate(rows)], value=min(max(start_index, 0), len(rows) - 1),
            description="dialogue", layout=w.Layout(width="98%"),
        )
        self.strategy = w.Dropdown(options=list(STRATEGIES), value="zero_shot", description="strategy")
        self.n_shots = w.IntSlider(value=len(self.shots), min=0, max=len(self.shots), description="shots",
                                   disabled=True)
        self.temperature = w.FloatSlider(value=0.0, min=0.0, max=2.0, step=0.1, description="temperature",
                                         readout_format=".1f")
        self.budget = w.HTML()
        self.prompt = w.Textarea(layout=w.Layout(width="98%", height="220px"), disabled=True, description="prompt")
        self.summary = w.HTML()
        self.reference = w.HTML()
        self.widget = w.VBox([
            w.HTML("<b>Prompt explorer</b> — temperature 0 means greedy decoding"),
            self.dialogue, w.HBox([self.strategy, self.n_shots, self.temperature]),
            self.budget, self.prompt, self.summary, self.reference,
        ])
        for control in (self.dialogue, self.strategy, self.n_shots, self.temperature):
            control.observe(self._on_change, names="value")
        self.refresh()

    def _on_change(self, _change: Any) -> None:
        try:
            self.refresh()
        except LabkitError as err:  # show a learner-fixable problem in the widget, not a traceback
            self.summary.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"

    def refresh(self) -> dict[str, Any]:
        """Rebuild the prompt from the controls, generate, and update the outputs."""
        self.n_shots.disabled = self.strategy.value != "few_shot"
        row = self.rows[self.dialogue.value]
        built: BudgetedPrompt = build_prompt(
            self.strategy.value, row["dialogue"], tokenizer=self.tokenizer, shots=self.shots,
            n_shots=self.n_shots.value, max_source_tokens=self.max_source_tokens,
        )
        config = sampling_config(self.temperature.value, max_new_tokens=self.max_new_tokens)
        output = generate(self.model, self.tokenizer, [built.prompt], config, progress=False,
                          max_source_tokens=self.max_source_tokens, seed=self.seed)[0]
        colour = "#080" if built.tokens_before <= built.limit else "#b60"
        self.budget.value = (
            f"<span style='color:{colour}'>{built.tokens} / {built.limit} tokens · "
            f"{built.shots_kept} of {built.shots_requested} shots kept</span><br><small>{html.escape(built.note)}</small>"
        )
        self.prompt.value = built.prompt
        self.summary.value = f"<b>model summary:</b> {html.escape(output)}"
        self.reference.value = f"<b>human reference:</b> {html.escape(str(row['summary']))}"
        self.last = {"prompt": built, "output": output, "reference": row["summary"]}
        return self.last

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def prompt_explorer(
    model: "PreTrainedModel",
    tokenizer: "PreTrainedTokenizerBase",
    dialogues: Sequence[Mapping[str, Any]],
    shots: Sequence[Mapping[str, Any]],
    **kwargs: Any,
) -> PromptExplorer:
    """Build a ``PromptExplorer`` (see its docstring); display it by leaving it
    as the last expression of a cell."""
    return PromptExplorer(model, tokenizer, dialogues, shots, **kwargs)
