"""ROUGE with ``rouge_score`` (the library ``evaluate``'s rouge wraps), and
bootstrap confidence intervals with ``scipy.stats.bootstrap``.

Numbers match ``evaluate.load("rouge").compute(predictions, references,
use_stemmer=True, use_aggregator=False)`` averaged: per example
``RougeScorer([...], use_stemmer=True).score(reference, prediction)`` (or
``score_multi`` over several references: the best reference per metric),
F-measure, then the mean. ROUGE-Lsum splits sentences on newlines, as
rouge_score does when ``split_summaries`` is off (evaluate's default). With
``use_aggregator=True`` evaluate reports the median of 1000 bootstrap means
instead, which differs from the mean only by resampling noise.

``text_quality`` says whether generated text is text at all (repetition,
words outside the data's vocabulary, length), so a metric is read beside it.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from labkit.config import LabkitError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def bootstrap_ci(
    values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap confidence interval of the mean of ``values`` (BCa, falling
    back to percentile when BCa is undefined, e.g. for constant data)."""
    import numpy as np
    from scipy import stats

    data = np.asarray(list(values), dtype=float)
    if data.ndim != 1 or data.size == 0:
        raise LabkitError("bootstrap_ci needs a non-empty list of numbers.")
    if not 0 < confidence < 1:
        raise LabkitError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}.")
    if data.size == 1 or np.all(data == data[0]):
        return float(data[0]), float(data[0])
    import warnings

    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa warns on degenerate jackknife data; we fall back instead
            res = stats.bootstrap(
                (data,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method=method,
                rng=np.random.default_rng(seed), vectorized=True,
            )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.isfinite(low) and np.isfinite(high):
            return low, high
    return float(data.mean()), float(data.mean())


@dataclass
class RougeResult:
    """ROUGE of a set of predictions: per-example F-measures, their means and CIs."""

    per_example: "pd.DataFrame"
    scores: dict[str, float]
    ci: dict[str, tuple[float, float]]
    confidence: float = 0.95
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """``{"rouge1": {"mean": x, "ci": [lo, hi]}, ...}`` (the recorded form)."""
        return {m: {"mean": self.scores[m], "ci": list(self.ci[m])} for m in self.scores}

    def __repr__(self) -> str:
        parts = [f"{m}={self.scores[m]:.4f} [{self.ci[m][0]:.4f}, {self.ci[m][1]:.4f}]" for m in self.scores]
        return f"RougeResult(n={len(self.per_example)}, {', '.join(parts)})"


def _check_inputs(predictions: Sequence[str], references: Sequence[Any]) -> tuple[list[str], list[list[str]]]:
    if isinstance(predictions, str) or isinstance(references, str):
        raise LabkitError("predictions and references must be lists of strings, not single strings.")
    preds, refs = list(predictions), list(references)
    if len(preds) != len(refs):
        raise LabkitError(
            f"Got {len(preds)} predictions but {len(refs)} references; ROUGE needs one reference "
            "(or one list of references) per prediction."
        )
    if not preds:
        raise LabkitError("ROUGE needs at least one prediction.")
    multi: list[list[str]] = []
    for i, (p, r) in enumerate(zip(preds, refs)):
        if not isinstance(p, str):
            raise LabkitError(f"prediction {i} is a {type(p).__name__}, expected a string.")
        group = [r] if isinstance(r, str) else list(r)
        if not group or not all(isinstance(x, str) for x in group):
            raise LabkitError(f"reference {i} must be a string or a non-empty list of strings.")
        multi.append(group)
    return preds, multi


def rouge_scores(
    predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]], *, use_stemmer: bool = True
) -> "pd.DataFrame":
    """Per-example ROUGE F-measures, one row per prediction (columns ``ROUGE_TYPES``)."""
    import pandas as pd
    from rouge_score import rouge_scorer

    preds, refs = _check_inputs(predictions, references)
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
    rows = []
    for pred, group in zip(preds, refs):
        # rouge_score takes (target, prediction); score_multi keeps the best reference per metric.
        score = scorer.score(group[0], pred) if len(group) == 1 else scorer.score_multi(group, pred)
        rows.append({m: score[m].fmeasure for m in ROUGE_TYPES})
    return pd.DataFrame(rows, columns=list(ROUGE_TYPES))


def rouge(
    predictions: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    use_stemmer: bool = True,
) -> RougeResult:
    """ROUGE-1/2/L/Lsum: mean F-measure over examples with bootstrap CIs.

    ``references`` holds one string per prediction, or a list of strings per
    prediction (multi-reference: the best-matching reference counts).
    """
    per_example = rouge_scores(predictions, references, use_stemmer=use_stemmer)
    scores = {m: float(per_example[m].mean()) for m in ROUGE_TYPES}
    ci = {
        m: bootstrap_ci(per_example[m].to_numpy(), confidence=confidence, n_resamples=n_resamples, seed=seed)
        for m in ROUGE_TYPES
    }
    return RougeResult(per_example=per_example, scores=scores, ci=ci, confidence=confidence)


# ---------------------------------------------------------------- text quality
# A ROUGE gain over word salad, or a toxicity drop that is really the model writing
# less, teaches the wrong thing: these three numbers say whether generated text is text.

_WORD_STRIP = re.compile(r"[^\w#']")


def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` with punctuation stripped (``#Person1#`` and
    apostrophes kept), the unit of the text-quality measures."""
    return [w for w in (_WORD_STRIP.sub("", token).lower() for token in str(text).split()) if w]


def vocabulary(texts: Iterable[str]) -> set[str]:
    """The set of ``words`` in ``texts`` (e.g. every dialogue and summary of a dataset)."""
    out: set[str] = set()
    for text in texts:
        out.update(words(text))
    return out


def is_degenerate(text: str) -> bool:
    """True when ``text`` repeats itself: one word three times in a row, or one
    word 3-gram three times anywhere (split on whitespace, as written)."""
    tokens = str(text).split()
    if any(tokens[i] == tokens[i + 1] == tokens[i + 2] for i in range(len(tokens) - 2)):
        return True
    grams = Counter(tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2))
    return any(count >= 3 for count in grams.values())


@dataclass
class TextQuality:
    """How much of a set of generated texts reads as text."""

    n: int
    degenerate_share: float  # share of texts that repeat themselves (is_degenerate)
    in_vocabulary_share: float  # share of all output words found in the reference vocabulary
    mean_words: float  # mean whitespace-separated words per text

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "degenerate_share": self.degenerate_share,
                "in_vocabulary_share": self.in_vocabulary_share, "mean_words": self.mean_words}


def text_quality(texts: Sequence[str], vocab: set[str] | Iterable[str]) -> TextQuality:
    """Degenerate share, in-vocabulary word share and mean length of ``texts``.

    ``vocab`` is the data's vocabulary (``vocabulary(dialogues + summaries)``):
    words a model writes that never occur in its data are usually broken
    sub-word salad. Empty texts count as 0 words and are not degenerate; with no
    words at all the in-vocabulary share is 0.
    """
    texts = [str(t) for t in texts]
    if not texts:
        raise LabkitError("text_quality needs at least one text; got an empty list.")
    vocab = vocab if isinstance(vocab, set) else set(vocab)
    all_words = [w for t in texts for w in words(t)]
    return TextQuality(
        n=len(texts),
        degenerate_share=sum(map(is_degenerate, texts)) / len(texts),
        in_vocabulary_share=sum(w in vocab for w in all_words) / len(all_words) if all_words else 0.0,
        mean_words=sum(len(t.split()) for t in texts) / len(texts),
    )


def dataset_vocabulary(splits: Any) -> set[str]:
    """The vocabulary of a DialogSum-format dataset: every word of every split's
    dialogues and summaries (``splits`` is a DatasetDict or a mapping of split
    name to rows or to a ``datasets.Dataset``)."""
    texts: list[str] = []
    for split in splits.values():
        if hasattr(split, "column_names"):
            texts += list(split["dialogue"]) + list(split["summary"])
        else:
            texts += [row["dialogue"] for row in split] + [row["summary"] for row in split]
    return vocabulary(texts)
