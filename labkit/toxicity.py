"""Toxicity scoring with a hate-speech classifier: the reward and the measure of Lab 3.

The label index is always looked up **by name** in the classifier's
``config.id2label``. The course took "index 0" of a score list whose order a
pipeline changes when it sorts by score, which silently flipped the reward's
sign; a name never moves.

Scores are computed in batches under ``torch.inference_mode``; the functions
return NumPy arrays so notebooks and statistics code need no torch.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from labkit.config import LabkitError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

NOT_HATE = "nothate"
HATE = "hate"


def label_index(classifier: "PreTrainedModel | Any", name: str) -> int:
    """The output index of the label called ``name`` (case-insensitive) in
    ``classifier.config.id2label``. Raises LabkitError listing the labels the
    classifier has when ``name`` is not among them."""
    config = getattr(classifier, "config", classifier)
    id2label = getattr(config, "id2label", None) or {}
    wanted = name.strip().lower()
    for index, label in id2label.items():
        if str(label).strip().lower() == wanted:
            return int(index)
    known = ", ".join(repr(v) for v in id2label.values()) or "none"
    raise LabkitError(
        f"The classifier has no label named {name!r} (its labels: {known}). "
        f"Expected a hate-speech classifier with labels {NOT_HATE!r} and {HATE!r}, "
        "like facebook/roberta-hate-speech-dynabench-r4-target or the offline fixture."
    )


def classifier_logits(
    texts: Sequence[str],
    classifier: "PreTrainedModel",
    tokenizer: "PreTrainedTokenizerBase",
    *,
    batch_size: int = 32,
    max_length: int = 512,
) -> np.ndarray:
    """Raw logits of the classifier, shape (len(texts), num_labels), in input order."""
    import torch

    from labkit import precision

    if batch_size < 1:
        raise LabkitError(f"batch_size must be at least 1, got {batch_size}.")
    texts = [str(t) for t in texts]
    num_labels = int(classifier.config.num_labels)
    if not texts:
        return np.zeros((0, num_labels), dtype=np.float32)
    device = next(classifier.parameters()).device
    # Sorting by length keeps padding (wasted compute) small inside each batch.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), num_labels), dtype=np.float32)
    was_training = classifier.training
    classifier.eval()
    try:
        with torch.inference_mode(), precision.autocast(device):
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                max_length=max_length, return_tensors="pt").to(device)
                out[idx] = classifier(**enc).logits.float().cpu().numpy()
    finally:
        classifier.train(was_training)
    return out


def nothate_logits(
    texts: Sequence[str], classifier: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", *, batch_size: int = 32
) -> np.ndarray:
    """The ``nothate`` logit of each text: Lab 3's reward (higher = friendlier)."""
    logits = classifier_logits(texts, classifier, tokenizer, batch_size=batch_size)
    return logits[:, label_index(classifier, NOT_HATE)]


def hate_probabilities(
    texts: Sequence[str], classifier: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", *, batch_size: int = 32
) -> np.ndarray:
    """P(hate) of each text (softmax over the classifier's labels): the toxicity
    the course's ``evaluate`` measure reported."""
    logits = classifier_logits(texts, classifier, tokenizer, batch_size=batch_size)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    return probs[:, label_index(classifier, HATE)]


def nothate_log_odds(
    texts: Sequence[str], classifier: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", *, batch_size: int = 32
) -> np.ndarray:
    """``log P(nothate) - log P(not nothate)`` of each text: with two labels, the ``nothate`` logit minus the
    ``hate`` logit. A monotone function of P(hate), the measure the lab reports."""
    from scipy.special import logsumexp

    logits = classifier_logits(texts, classifier, tokenizer, batch_size=batch_size).astype(np.float64)
    keep = label_index(classifier, NOT_HATE)
    return (logits[:, keep] - logsumexp(np.delete(logits, keep, axis=1), axis=1)).astype(np.float32)


# Lab 3's rewards by name (DetoxSettings.reward): the course's first.
_REWARDS = {"nothate_logit": nothate_logits, "log_odds": nothate_log_odds}
REWARDS = tuple(_REWARDS)


def reward_function(
    classifier: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", *, kind: str = "nothate_logit",
    batch_size: int = 32,
) -> Callable[[Sequence[str]], np.ndarray]:
    """A ``texts -> rewards`` callable for ``labkit.ppo.train`` (and DPO's ranking of its samples).

    ``kind="nothate_logit"`` is the course's reward, the ``nothate`` logit. ``"log_odds"`` is the
    ``nothate`` log-odds (:func:`nothate_log_odds`): the nothate logit can also rise with the hate logit,
    without P(hate) falling; the log-odds rises only when P(hate) falls."""
    if kind not in REWARDS:
        raise LabkitError(f"Unknown reward {kind!r}: expected one of {', '.join(map(repr, REWARDS))} "
                          "('nothate_logit' is the course's).")
    score = _REWARDS[kind]

    def reward(texts: Sequence[str]) -> np.ndarray:
        return score(texts, classifier, tokenizer, batch_size=batch_size)

    return reward


def score_table(
    texts: Sequence[str], classifier: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase"
) -> "pd.DataFrame":
    """One row per text: the logit and probability of every label, named by id2label."""
    import pandas as pd

    logits = classifier_logits(texts, classifier, tokenizer)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    id2label = classifier.config.id2label
    table = pd.DataFrame({"text": list(texts)})
    for index in sorted(id2label):
        table[f"logit_{id2label[index]}"] = logits[:, int(index)]
    for index in sorted(id2label):
        table[f"p_{id2label[index]}"] = probs[:, int(index)]
    return table


def summarize(hate_probs: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean, std (population, like numpy's default), share above 0.5 and n of
    hate probabilities: the shape of the ``toxicity_before``/``toxicity_after`` records."""
    values = np.asarray(hate_probs, dtype=np.float64)
    if values.size == 0:
        raise LabkitError("Cannot summarize toxicity of zero texts; pass at least one score (check n_eval).")
    return {"mean": float(values.mean()), "std": float(values.std()),
            "share_above_0_5": float((values > 0.5).mean()), "n": int(values.size)}


def paired_bootstrap(
    before: Sequence[float] | np.ndarray,
    after: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Is the change ``after - before`` beyond noise? A paired bootstrap
    (scipy.stats.bootstrap, BCa) of the mean per-prompt difference.

    Returns ``mean_difference``, ``ci`` [low, high], ``confidence``, ``n`` and
    ``beyond_noise`` (True when the interval excludes 0)."""
    from scipy.stats import bootstrap

    b = np.asarray(before, dtype=np.float64)
    a = np.asarray(after, dtype=np.float64)
    if b.shape != a.shape or b.ndim != 1 or b.size < 2:
        raise LabkitError(
            f"paired_bootstrap needs two equally long 1-D score lists of at least 2 prompts, got shapes "
            f"{b.shape} and {a.shape}. Score the same prompts before and after training."
        )
    diff = a - b
    if np.allclose(diff, diff[0]):
        # The bootstrap distribution is degenerate: every resample has the same mean.
        low = high = float(diff[0])
    else:
        res = bootstrap((diff,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                        method="BCa", rng=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return {"mean_difference": float(diff.mean()), "ci": [low, high], "confidence": confidence,
            "n": int(diff.size), "beyond_noise": bool(high < 0 or low > 0)}
