"""Matplotlib figures the labs show. Every figure has a title, axis labels
with units, and is returned (not only shown) so tests can inspect it."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def _new_figure(width: float = 7.0, height: float = 4.0) -> "Figure":
    # The object-oriented API (no pyplot state) keeps headless runs and tests clean.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


# ---- lab 1: prompt engineering ------------------------------------------------

def rouge_by_strategy(scores: dict, *, metrics: tuple[str, ...] = ("rouge1", "rouge2", "rougeL", "rougeLsum"),
                      title: str = "ROUGE per prompting strategy") -> "Figure":
    """Grouped bars: one group per metric, one bar per strategy, with CI whiskers.

    ``scores`` is ``{strategy: {metric: {"mean": x, "ci": [lo, hi]}}}`` (the
    recorded ``rouge_by_strategy``) or ``{strategy: RougeResult}``.
    """
    import numpy as np

    table = {s: (v.as_dict() if hasattr(v, "as_dict") else v) for s, v in scores.items()}
    strategies = list(table)
    fig = _new_figure(8.0, 4.2)
    ax = fig.add_subplot()
    width = 0.8 / max(len(strategies), 1)
    x = np.arange(len(metrics))
    for k, strategy in enumerate(strategies):
        means = np.array([table[strategy][m]["mean"] for m in metrics])
        lows = np.array([table[strategy][m]["ci"][0] for m in metrics])
        highs = np.array([table[strategy][m]["ci"][1] for m in metrics])
        yerr = np.vstack([np.clip(means - lows, 0, None), np.clip(highs - means, 0, None)])
        ax.bar(x + (k - (len(strategies) - 1) / 2) * width, means, width, yerr=yerr, capsize=3, label=strategy)
    ax.set_xticks(x, list(metrics))
    ax.set_xlabel("metric")
    ax.set_ylabel("mean F-measure (0–1), 95% bootstrap CI")
    ax.set_title(title)
    ax.set_ylim(0, max(0.05, min(1.0, ax.get_ylim()[1] * 1.1)))
    ax.legend(title="strategy", fontsize="small", ncols=min(len(strategies), 3))
    return fig



# ---- lab 2: fine-tuning ---------------------------------------------------------


def rouge_comparison(rouge: dict[str, dict[str, dict[str, object]]], metrics: tuple[str, ...] = ("rouge1", "rouge2", "rougeL", "rougeLsum")) -> "Figure":
    """Grouped bars of ROUGE per model with 95% CI error bars.

    ``rouge`` maps model name → ``RougeResult.as_dict()`` ({metric: {"mean", "ci"}}).
    """
    import numpy as np

    fig = _new_figure(8.0, 4.0)
    ax = fig.add_subplot()
    names = list(rouge)
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(metrics))
    for i, name in enumerate(names):
        means = np.array([float(rouge[name][m]["mean"]) for m in metrics])
        cis = np.array([rouge[name][m]["ci"] for m in metrics], dtype=float)
        err = np.vstack([means - cis[:, 0], cis[:, 1] - means])
        ax.bar(x + (i - (len(names) - 1) / 2) * width, means, width, yerr=err, capsize=3, label=name)
    ax.set_xticks(x, metrics)
    ax.set_ylabel("score (0-1), mean with 95% CI")
    ax.set_title("ROUGE on the test dialogues: original vs fine-tuned")
    ax.legend()
    return fig


def training_loss(losses: dict[str, list[float]]) -> "Figure":
    """Training loss per step for each run (``{run name: [loss per step]}``)."""
    fig = _new_figure(7.0, 3.5)
    ax = fig.add_subplot()
    for name, values in losses.items():
        ax.plot(range(1, len(values) + 1), values, label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy loss (nats/token)")
    ax.set_title("Training loss")
    ax.legend()
    return fig


def finetune_costs(costs: dict[str, dict[str, float]]) -> "Figure":
    """Side-by-side cost panels per method: trainable share (%), peak memory
    measured vs the course's rule of thumb (MiB), seconds per step and checkpoint
    size on disk (MiB). ``costs`` maps method → {"percent", "peak_memory_mb",
    "estimate_mb", "seconds_per_step", "checkpoint_mb"}."""
    import numpy as np

    fig = _new_figure(11.0, 3.4)
    axes = fig.subplots(1, 4)
    methods = list(costs)
    x = np.arange(len(methods))
    panels = [("percent", "trainable parameters (%)"), ("peak_memory_mb", "peak training memory (MiB)"),
              ("seconds_per_step", "time per step (s)"), ("checkpoint_mb", "checkpoint on disk (MiB)")]
    for ax, (key, label) in zip(axes, panels):
        values = [float(costs[m].get(key) or 0.0) for m in methods]
        if key == "peak_memory_mb":
            ax.bar(x - 0.2, values, 0.4, label="measured")
            ax.bar(x + 0.2, [float(costs[m].get("estimate_mb") or 0.0) for m in methods], 0.4, label="rule of thumb")
            ax.legend(fontsize="small")
        else:
            ax.bar(x, values, 0.6, color=["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"][: len(methods)])
        if key == "checkpoint_mb":
            ax.set_yscale("log")
        ax.set_xticks(x, methods)
        ax.set_ylabel(label)
        ax.set_title(label.split(" (")[0])
    fig.suptitle("What each method costs")
    return fig


# ---- lab 3: PPO -----------------------------------------------------------------

PPO_CURVES = (("reward_mean", "mean reward (nothate logit)"), ("kl", "KL to reference, exact (nats / summary)"),
              ("beta", "KL coefficient beta"), ("policy_loss", "policy loss"),
              ("value_loss", "value loss"), ("entropy", "entropy (nats / token)"))


def ppo_curves(log: list[dict], *, title: str = "PPO training, per step") -> "Figure":
    """One small panel per logged quantity (reward, KL, beta, losses, entropy)
    against the PPO step; ``log`` is the recorded ``ppo_log``. The KL panel shows the
    exact KL (``kl``, never negative) and, dashed, the sampled estimate the adaptive
    controller reads (``kl_sampled``), where the log has it."""
    fig = _new_figure(10.0, 5.5)
    axes = fig.subplots(2, 3, sharex=True).ravel()
    steps = [entry["step"] for entry in log]
    marker = "." if len(steps) < 60 else None
    for ax, (key, label) in zip(axes, PPO_CURVES):
        ax.plot(steps, [entry[key] for entry in log], marker=marker, label="exact" if key == "kl" else None)
        if key == "kl" and all("kl_sampled" in entry for entry in log):
            ax.plot(steps, [entry["kl_sampled"] for entry in log], linestyle="--", marker=marker,
                    label="sampled (the controller's)")
            ax.legend(fontsize="small")
        ax.set_title(label, fontsize="medium")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    for ax in axes[3:]:
        ax.set_xlabel("PPO step")
    fig.suptitle(title)
    return fig


def toxicity_histogram(before, after=None, *, bins: int = 20, title: str | None = None) -> "Figure":
    """Histogram of hate probabilities on the held-out prompts; with ``after``,
    the two distributions overlaid (same bins), means marked."""
    import numpy as np

    fig = _new_figure(7.0, 4.0)
    ax = fig.add_subplot()
    edges = np.linspace(0.0, 1.0, bins + 1)
    series = [("before PPO", before, "tab:red")] + ([("after PPO", after, "tab:blue")] if after is not None else [])
    for label, values, color in series:
        values = np.asarray(values, dtype=float)
        ax.hist(values, bins=edges, alpha=0.5, color=color, label=f"{label} (mean {values.mean():.3f})")
        ax.axvline(values.mean(), color=color, linestyle="--")
    ax.axvline(0.5, color="grey", linewidth=0.8)
    ax.set_xlabel("P(hate) of the summary (0–1)")
    ax.set_ylabel("number of held-out prompts")
    ax.set_title(title or ("Toxicity before and after PPO" if after is not None else "Toxicity before PPO"))
    ax.legend()
    return fig


def detox_tradeoff(before: dict[str, float], after: dict[str, float], *,
                   title: str = "What PPO changed: toxicity, and whether the summaries stayed summaries") -> "Figure":
    """Before/after bars, one panel per measure: mean P(hate), mean length in words,
    ROUGE-1 against the reference summaries. A toxicity drop that comes with a
    length or ROUGE collapse is reward hacking, not detoxification.

    ``before`` and ``after`` map ``toxicity``, ``mean_words`` and ``rouge1`` to numbers
    (the recorded ``detox_quality`` entries).
    """
    panels = [("toxicity", "mean P(hate)"), ("mean_words", "words per summary"), ("rouge1", "ROUGE-1 vs reference")]
    fig = _new_figure(9.0, 3.4)
    for k, (key, label) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        values = [float(before[key]), float(after[key])]
        bars = ax.bar(["before PPO", "after PPO"], values, color=["#888888", "#2a7ab0"])
        ax.bar_label(bars, fmt="%.3g")
        ax.set_ylabel(label)
        ax.set_ylim(0, max(values) * 1.25 or 1.0)
    fig.suptitle(title)
    return fig


def ppo_vs_dpo(rows: dict[str, dict[str, float]], *,
               title: str = "PPO vs DPO on the same held-out prompts") -> "Figure":
    """One panel per measure, one bar per method (the summaries before training first): mean P(hate) with
    the 95% paired-bootstrap interval of the change from before as whiskers, words per summary, ROUGE-1
    against the references, the exact KL to the reference (nats per summary) and wall time (seconds; none before).

    ``rows`` maps a method to ``labkit.dpo.method_summary``'s dict (keys ``toxicity``, ``change_ci``,
    ``mean_words``, ``rouge1``, ``kl``, ``seconds``): the recorded ``ppo_vs_dpo``."""
    import numpy as np

    panels = [("toxicity", "mean P(hate)"), ("mean_words", "words per summary"), ("rouge1", "ROUGE-1 vs reference"),
              ("kl", "KL to reference (nats / summary)"), ("seconds", "wall time (s)")]
    names = list(rows)
    colors = ["#888888", "#2a7ab0", "#e08a1e", "#5a9e4b"][: len(names)] or None
    fig = _new_figure(12.0, 3.4)
    first = rows[names[0]]
    for k, (key, label) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        values = [float(rows[n][key]) if rows[n].get(key) is not None else 0.0 for n in names]
        yerr = None
        if key == "toxicity":
            lows, highs = [], []
            for n, v in zip(names, values):
                ci = rows[n].get("change_ci")
                lows.append(max(v - (float(first[key]) + ci[0]), 0.0) if ci else 0.0)
                highs.append(max(float(first[key]) + ci[1] - v, 0.0) if ci else 0.0)
            yerr = np.vstack([lows, highs])
        bars = ax.bar(names, values, yerr=yerr, capsize=3, color=colors)
        ax.bar_label(bars, fmt="%.3g")
        ax.set_ylabel(label)
        ax.set_ylim(0, max(values) * 1.3 or 1.0)
    fig.suptitle(title)
    return fig
