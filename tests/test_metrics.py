"""labkit.metrics: ROUGE parity with evaluate's rouge on hand-checked pairs, bootstrap CIs."""
from __future__ import annotations

import numpy as np
import pytest
from rouge_score import rouge_scorer, scoring

from labkit.config import LabkitError
from labkit.metrics import ROUGE_TYPES, bootstrap_ci, rouge, rouge_scores


def test_hand_checked_pair():
    # pred/ref unigrams: the x2, cat, on, mat shared -> 5/6; bigrams the-cat, on-the, the-mat -> 3/5;
    # LCS "the cat on the mat" -> 5/6.
    r = rouge(["the cat sat on the mat"], ["the cat is on the mat"])
    assert r.scores["rouge1"] == pytest.approx(5 / 6)
    assert r.scores["rouge2"] == pytest.approx(3 / 5)
    assert r.scores["rougeL"] == pytest.approx(5 / 6)
    assert r.scores["rougeLsum"] == pytest.approx(5 / 6)


def test_stemmer_is_on_and_case_is_ignored():
    # Porter stems running->run, dogs->dog: a perfect match only with the stemmer.
    assert rouge(["Running DOGS"], ["run dog"]).scores["rouge1"] == pytest.approx(1.0)
    assert rouge(["running dogs"], ["run dog"], use_stemmer=False).scores["rouge1"] == pytest.approx(0.0)


def test_rouge_lsum_splits_sentences_on_newlines():
    # Token LCS of "a b c d" vs "c d a b" is 2 (rougeL 0.5); per-sentence union LCS is 4 (rougeLsum 1.0).
    r = rouge(["a b\nc d"], ["c d\na b"])
    assert r.scores["rougeL"] == pytest.approx(0.5)
    assert r.scores["rougeLsum"] == pytest.approx(1.0)
    assert r.scores["rouge2"] == pytest.approx(2 / 3)


PAIRS = [
    ("#Person1# is in a hurry to catch a train.", "#Person1# is in a hurry to catch a train. Tom tells #Person1# there is plenty of time."),
    ("Person2 wants to upgrade the system.", "#Person1# teaches #Person2# how to upgrade software and hardware in #Person2#'s system."),
    ("Mom asks May to help prepare the picnic.", "Mom asks May to help to prepare for the picnic and May agrees."),
    ("The pendant is broken.", "#Person1# wants to change the broken pendant in #Person2#'s shop."),
    ("nothing in common", "completely different words here"),
]


def _evaluate_style(preds, refs, use_aggregator):
    """evaluate's rouge.py _compute, re-stated: score(ref, pred) per pair, then
    BootstrapAggregator mid F or the list of F-measures."""
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    agg, scores = scoring.BootstrapAggregator(), []
    for ref, pred in zip(refs, preds):
        s = scorer.score_multi(ref, pred) if isinstance(ref, list) else scorer.score(ref, pred)
        agg.add_scores(s)
        scores.append(s)
    if use_aggregator:
        return {k: v.mid.fmeasure for k, v in agg.aggregate().items()}
    return {k: [s[k].fmeasure for s in scores] for k in ROUGE_TYPES}


def test_parity_with_evaluates_rouge():
    preds, refs = [p for p, _ in PAIRS], [r for _, r in PAIRS]
    ours = rouge(preds, refs)
    listed = _evaluate_style(preds, refs, use_aggregator=False)
    for m in ROUGE_TYPES:
        assert ours.per_example[m].tolist() == pytest.approx(listed[m], abs=1e-12)
        assert ours.scores[m] == pytest.approx(float(np.mean(listed[m])), abs=1e-12)
    # The default aggregator reports a bootstrap median of means: close to the mean, not equal.
    mid = _evaluate_style(preds * 20, refs * 20, use_aggregator=True)
    for m in ROUGE_TYPES:
        assert mid[m] == pytest.approx(ours.scores[m], abs=0.03)


def test_multi_reference_takes_best_reference_per_metric():
    pred = "the cat sat on the mat"
    refs = ["a dog barked", "the cat is on the mat"]
    multi = rouge_scores([pred], [refs])
    best = rouge_scores([pred, pred], refs).max()
    for m in ROUGE_TYPES:
        assert multi[m].iloc[0] == pytest.approx(best[m])
    listed = _evaluate_style([pred], [refs], use_aggregator=False)
    assert multi["rouge1"].iloc[0] == pytest.approx(listed["rouge1"][0])


def test_result_shape_and_as_dict():
    preds, refs = [p for p, _ in PAIRS], [r for _, r in PAIRS]
    r = rouge(preds, refs)
    assert list(r.per_example.columns) == list(ROUGE_TYPES) and len(r.per_example) == len(PAIRS)
    d = r.as_dict()
    assert set(d) == set(ROUGE_TYPES)
    for m, v in d.items():
        lo, hi = v["ci"]
        assert lo <= v["mean"] <= hi
        assert v["mean"] == pytest.approx(r.scores[m])


def test_bootstrap_ci_is_seeded_and_shrinks_with_more_data():
    rng = np.random.default_rng(1)
    small, large = rng.uniform(size=20), rng.uniform(size=2000)
    a = bootstrap_ci(small, seed=3)
    assert a == bootstrap_ci(small, seed=3)
    assert a[0] < small.mean() < a[1]
    b = bootstrap_ci(large, seed=3)
    assert (b[1] - b[0]) < (a[1] - a[0]) / 4
    # 95% interval of a uniform mean: about mean +- 1.96 * 0.2887 / sqrt(n).
    half = 1.96 * (1 / np.sqrt(12)) / np.sqrt(len(large))
    assert (b[1] - b[0]) / 2 == pytest.approx(half, rel=0.15)
    assert bootstrap_ci([0.4, 0.4, 0.4]) == (0.4, 0.4)
    assert bootstrap_ci(small, confidence=0.5)[1] - bootstrap_ci(small, confidence=0.5)[0] < a[1] - a[0]


def test_input_errors():
    with pytest.raises(LabkitError, match="2 predictions but 1"):
        rouge(["a", "b"], ["a"])
    with pytest.raises(LabkitError, match="lists of strings"):
        rouge("a", "a")
    with pytest.raises(LabkitError, match="at least one"):
        rouge([], [])
    with pytest.raises(LabkitError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=95)


# ---------------------------------------------------------------- text quality

from labkit.metrics import is_degenerate, text_quality, vocabulary, words


def test_words_normalise_case_and_punctuation_but_keep_speaker_tags():
    assert words("#Person1# asks: Isn't it RED?") == ["#person1#", "asks", "isn't", "it", "red"]


def test_degenerate_word_repeated_three_times_in_a_row():
    assert is_degenerate("talk about lost lost lost")
    assert not is_degenerate("lost and lost again, lost")


def test_degenerate_trigram_three_times():
    assert is_degenerate("#Person2# aisle is #Person2# aisle is and #Person2# aisle is")
    assert not is_degenerate("#Person2# aisle is #Person2# aisle is done")


def test_text_quality_shares_and_length():
    vocab = vocabulary(["#Person1# buys a red bike.", "The bike is red."])
    q = text_quality(["#Person1# buys a red bike.", "zzq bike bike bike"], vocab)
    assert q.n == 2
    assert q.degenerate_share == pytest.approx(0.5)
    # words: #person1# buys a red bike | zzq bike bike bike -> 8 of 9 known
    assert q.in_vocabulary_share == pytest.approx(8 / 9)
    assert q.mean_words == pytest.approx(4.5)
    assert q.as_dict()["mean_words"] == pytest.approx(4.5)


def test_text_quality_needs_texts():
    with pytest.raises(LabkitError, match="at least one text"):
        text_quality([], set())


def test_dataset_vocabulary_reads_every_split_of_rows_or_datasets():
    from datasets import Dataset

    from labkit.metrics import dataset_vocabulary

    rows = {"train": [{"dialogue": "#Person1#: Hi Ann.", "summary": "Ann waves."}],
            "test": Dataset.from_list([{"dialogue": "#Person2#: Bye.", "summary": "Bob leaves."}])}
    assert dataset_vocabulary(rows) == {"#person1#", "hi", "ann", "waves", "#person2#", "bye", "bob", "leaves"}
