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


def test_ppo_vs_dpo_shows_every_measure_per_method_with_the_change_interval():
    rows = {"before": {"toxicity": 0.3, "change_ci": None, "mean_words": 19.0, "rouge1": 0.49, "kl": 0.0,
                       "seconds": None},
            "PPO": {"toxicity": 0.1, "change_ci": [-0.3, -0.1], "mean_words": 16.0, "rouge1": 0.45, "kl": 1.7,
                    "seconds": 48.0},
            "DPO": {"toxicity": 0.14, "change_ci": [-0.25, -0.1], "mean_words": 16.5, "rouge1": 0.40, "kl": 1.7,
                    "seconds": 99.0}}
    fig = plots.ppo_vs_dpo(rows)
    axes = fig.get_axes()
    assert [ax.get_ylabel() for ax in axes] == ["mean P(hate)", "words per summary", "ROUGE-1 vs reference",
                                                 "KL to reference (nats / summary)", "wall time (s)"]
    for ax, key in zip(axes, ("toxicity", "mean_words", "rouge1", "kl", "seconds")):
        assert [t.get_text() for t in ax.get_xticklabels()] == ["before", "PPO", "DPO"]
        assert [p.get_height() for p in ax.patches] == pytest.approx([rows[m][key] or 0.0 for m in rows])
    # PPO's whisker spans before + its change CI: 0.3 - 0.3 = 0.0 to 0.3 - 0.1 = 0.2
    segments = axes[0].collections[0].get_segments()
    assert segments[1][:, 1].tolist() == pytest.approx([0.0, 0.2])
