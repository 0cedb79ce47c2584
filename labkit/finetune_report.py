"""Lab 2's comparison of the fine-tuning methods: ROUGE gains over the original, each method's share of full
fine-tuning's gain, the costs table (parameters, memory, time, checkpoint size) and the prompt-tuning verdict."""
from __future__ import annotations

from typing import Any

from labkit.config import LabkitError
from labkit.training.loop import TrainResult
from labkit.training.memory import estimate_memory


def rouge_improvements(rouge: dict[str, dict[str, dict[str, Any]]], baseline: str = "original") -> dict[str, dict[str, dict[str, float]]]:
    """Absolute and relative (%) gain of every model over ``baseline`` per metric.

    ``rouge`` maps model → ``RougeResult.as_dict()``. Returns
    ``{model: {metric: {"absolute": x, "relative_percent": y}}}`` (the course
    printed e.g. "PEFT vs original: rouge1 +17.5%").
    """
    if baseline not in rouge:
        raise LabkitError(f"rouge_improvements: no {baseline!r} entry among {sorted(rouge)}.")
    base = rouge[baseline]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, scores in rouge.items():
        if name == baseline:
            continue
        out[name] = {}
        for metric, value in scores.items():
            b, v = float(base[metric]["mean"]), float(value["mean"])
            out[name][metric] = {"absolute": v - b, "relative_percent": 100.0 * (v - b) / b if b else float("nan")}
    return out


def costs_table(runs: dict[str, TrainResult], checkpoint_mb: dict[str, float],
                weights_mb: dict[str, float] | None = None) -> "Any":
    """A pandas DataFrame, one row per method: trainable share, measured peak
    memory next to the rule-of-thumb estimate, seconds per step, checkpoint size.

    ``weights_mb`` gives a method's measured weight memory where the rule's 4 bytes per parameter does not
    hold (QLoRA's 4-bit base: :func:`footprint_mb`); its estimate is then those weights plus the rule's 20
    bytes per trainable parameter."""
    import pandas as pd

    rows = {}
    for name, run in runs.items():
        est = estimate_memory(run.params)
        weights, training = est.weights_mb, est.training_mb
        if weights_mb and name in weights_mb:
            weights = weights_mb[name]
            training = weights + est.training_mb - est.weights_mb
        rows[name] = {
            "trainable": run.params.trainable, "total": run.params.total, "percent": round(run.params.percent, 2),
            "peak_memory_mb": run.peak_memory_mb, "estimate_mb": training,
            "weights_mb": weights, "seconds_per_step": run.seconds_per_step,
            "checkpoint_mb": checkpoint_mb.get(name),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def share_of_gain(rouge: dict[str, dict[str, Any]], method: str, *, reference: str = "full_ft",
                  baseline: str = "original", metric: str = "rouge1") -> float:
    """How much of ``reference``'s gain over ``baseline`` ``method`` got: (method - baseline) / (reference -
    baseline) of the mean ``metric`` (1.0: all of full fine-tuning's gain; 0: none; below 0: worse than the
    baseline). ``rouge`` maps model → ``RougeResult.as_dict()`` (or {metric: mean})."""
    missing = [m for m in (method, reference, baseline) if m not in rouge]
    if missing:
        raise LabkitError(f"share_of_gain: no ROUGE for {missing} among {sorted(rouge)}; evaluate those models first.")

    def mean(model: str) -> float:
        value = rouge[model][metric]
        return float(value["mean"] if isinstance(value, dict) else value)

    gain = mean(reference) - mean(baseline)
    if gain == 0:
        raise LabkitError(f"share_of_gain: {reference} scored exactly what {baseline} did ({metric}), so a share of "
                          "its gain means nothing; train it (more steps, another learning rate) first.")
    return (mean(method) - mean(baseline)) / gain


def prompt_tuning_verdict(share: float, percent_trained: float,
                          vs_hard_prompt: tuple[float, float, float] | None = None) -> str:
    """What a measured share of full fine-tuning's gain (:func:`share_of_gain`) says about scale, in the terms of
    Lester et al. 2021 (soft prompts catch up with full fine-tuning only for very large models, ~10B parameters),
    whichever way the number came out. ``vs_hard_prompt``: the soft prompt's mean ROUGE-1 minus a hand-written
    prompt's on the same dialogues, with the paired 95% CI of that difference (mean, low, high)."""
    head = f"Prompt tuning trained {percent_trained:.2f}% of the parameters and got {share:.0%} of full fine-tuning's gain."
    if share >= 0.8:
        text = head + (" That is most of it, on a tiny model, where Lester et al. needed ~10B parameters. The reason "
                       "is theirs, though: a soft prompt can only select what the frozen model already does, and "
                       "this stand-in was pre-trained on this very task (see 'The offline stand-in'), the way a very "
                       "large model has the skill from pre-training. At flan-t5-base's 250M, Lester et al. measured "
                       "a clear gap.")
    elif share >= 0.4:
        text = head + (" Part of it: far below ~10B parameters, where Lester et al. saw soft prompts catch up, the "
                       "frozen model knows too little for a prompt to steer, and full fine-tuning or LoRA, which "
                       "change the weights, stay ahead.")
    else:
        text = head + (" Little of it: as Lester et al. found for small models, a soft prompt cannot make a small "
                       "frozen model do what it does not already know; only changing the weights (full "
                       "fine-tuning, LoRA) teaches it the task.")
    if vs_hard_prompt is None:
        return text
    diff, low, high = vs_hard_prompt
    ci = f"ROUGE-1 {diff:+.3f}, paired 95% CI [{low:+.3f}, {high:+.3f}]"
    if low > 0:
        return text + f" It also beat the hand-written prompt the model was pre-trained with ({ci}): it found more than a template."
    if high < 0:
        return text + (f" Yet it scored below the hand-written prompt the model was pre-trained with ({ci}): "
                       "gradient descent did not even find what a good template gives.")
    return text + (f" And it did no better than the hand-written prompt the model was pre-trained with ({ci}): what "
                   "the soft prompt found is, in effect, that template's switch; the skill was in the frozen weights.")
