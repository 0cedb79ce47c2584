"""labkit.plots: figures carry what they claim to show."""
from __future__ import annotations

import pytest

from labkit import plots


def test_detox_tradeoff_shows_the_three_measures_before_and_after():
    before = {"toxicity": 0.28, "mean_words": 18.5, "rouge1": 0.42}
    after = {"toxicity": 0.05, "mean_words": 16.0, "rouge1": 0.40}
    fig = plots.detox_tradeoff(before, after)
    axes = fig.get_axes()
    assert [ax.get_ylabel() for ax in axes] == ["mean P(hate)", "words per summary", "ROUGE-1 vs reference"]
    for ax, key in zip(axes, ("toxicity", "mean_words", "rouge1")):
        heights = [p.get_height() for p in ax.patches]
        assert heights == pytest.approx([before[key], after[key]])
        assert [t.get_text() for t in ax.get_xticklabels()] == ["before PPO", "after PPO"]
