"""labkit.toxicity: label lookup by name (a swapped id2label must not flip the
reward), batching, the summary record and the paired bootstrap."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from labkit import toxicity
from labkit.config import LabkitError


class WordTokenizer:
    """Stand-in tokenizer: one id per word (hash mod 90, +3), pad 1 like RoBERTa."""

    def __call__(self, texts, padding=True, truncation=True, max_length=512, return_tensors="pt"):
        from transformers import BatchEncoding

        ids = [[0] + [3 + sum(map(ord, w)) % 90 for w in t.split()][: max_length - 2] + [2] for t in texts]
        width = max(map(len, ids))
        return BatchEncoding({
            "input_ids": torch.tensor([i + [1] * (width - len(i)) for i in ids]),
            "attention_mask": torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids]),
        })


def tiny_classifier(id2label=None):
    from transformers import RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(0)
    id2label = id2label or {0: "nothate", 1: "hate"}
    config = RobertaConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=64, num_labels=2, id2label=id2label,
                           label2id={v: k for k, v in id2label.items()}, pad_token_id=1)
    return RobertaForSequenceClassification(config).eval()


def swapped_copy(model):
    """The same classifier with its two outputs in the other order and id2label to match."""
    other = copy.deepcopy(model)
    head = other.classifier.out_proj
    with torch.no_grad():
        head.weight.copy_(head.weight.flip(0))
        head.bias.copy_(head.bias.flip(0))
    other.config.id2label = {i: model.config.id2label[1 - i] for i in (0, 1)}
    other.config.label2id = {v: k for k, v in other.config.id2label.items()}
    return other


TEXTS = ["you are a lovely friend", "what an idiot you are", "the train leaves at nine", "ok"]


def test_label_lookup_by_name_survives_a_swapped_label_order():
    model = tiny_classifier()
    swapped = swapped_copy(model)
    assert toxicity.label_index(model, "nothate") == 0 and toxicity.label_index(swapped, "nothate") == 1
    tok = WordTokenizer()
    # The raw logits really are in the other order ...
    assert np.allclose(toxicity.classifier_logits(TEXTS, swapped, tok), toxicity.classifier_logits(TEXTS, model, tok)[:, ::-1])
    # ... but the reward and the toxicity do not move.
    assert np.allclose(toxicity.nothate_logits(TEXTS, swapped, tok), toxicity.nothate_logits(TEXTS, model, tok), atol=1e-6)
    assert np.allclose(toxicity.hate_probabilities(TEXTS, swapped, tok),
                       toxicity.hate_probabilities(TEXTS, model, tok), atol=1e-6)


def test_label_lookup_is_case_insensitive_and_errors_clearly():
    model = tiny_classifier({0: "NOTHATE", 1: "Hate"})
    assert toxicity.label_index(model, "nothate") == 0 and toxicity.label_index(model, "hate") == 1
    with pytest.raises(LabkitError, match="no label named 'nothate'.*'LABEL_0'"):
        toxicity.label_index(tiny_classifier({0: "LABEL_0", 1: "LABEL_1"}), "nothate")


def test_batching_and_order_do_not_change_scores():
    model, tok = tiny_classifier(), WordTokenizer()
    texts = TEXTS * 3
    one = toxicity.classifier_logits(texts, model, tok, batch_size=1)
    many = toxicity.classifier_logits(texts, model, tok, batch_size=5)
    assert one.shape == (12, 2) and np.allclose(one, many, atol=1e-5)
    probs = toxicity.hate_probabilities(texts, model, tok)
    assert np.all((probs > 0) & (probs < 1))
    assert toxicity.classifier_logits([], model, tok).shape == (0, 2)


def test_score_table_names_columns_by_label():
    table = toxicity.score_table(TEXTS[:2], tiny_classifier(), WordTokenizer())
    assert list(table.columns) == ["text", "logit_nothate", "logit_hate", "p_nothate", "p_hate"]
    assert np.allclose(table["p_nothate"] + table["p_hate"], 1.0)


def test_summarize_matches_numpy():
    probs = [0.1, 0.6, 0.9, 0.2]
    s = toxicity.summarize(probs)
    assert s == {"mean": pytest.approx(0.45), "std": pytest.approx(float(np.std(probs))),
                 "share_above_0_5": 0.5, "n": 4}
    with pytest.raises(LabkitError):
        toxicity.summarize([])


def test_paired_bootstrap_detects_a_real_shift_and_not_noise():
    rng = np.random.default_rng(0)
    before = rng.uniform(0, 1, 200)
    shifted = toxicity.paired_bootstrap(before, before - 0.1 + rng.normal(0, 0.05, 200))
    assert shifted["beyond_noise"] and shifted["ci"][1] < 0
    assert shifted["mean_difference"] == pytest.approx(-0.1, abs=0.02)
    noise = toxicity.paired_bootstrap(before, before + rng.normal(0, 0.05, 200))
    assert not noise["beyond_noise"] and noise["ci"][0] < 0 < noise["ci"][1]
    with pytest.raises(LabkitError, match="equally long"):
        toxicity.paired_bootstrap([0.1, 0.2], [0.1])


def test_offline_classifier_prefers_friendly_text(fixtures_manifest):
    from labkit.models import load_toxicity_classifier

    model, tok = load_toxicity_classifier("offline", device="cpu")
    friendly, hostile = "Thank you, you were very kind and helpful today.", "You are a stupid idiot and a loser."
    p = toxicity.hate_probabilities([friendly, hostile], model, tok)
    assert p[0] < 0.5 < p[1]
    reward = toxicity.reward_function(model, tok)([friendly, hostile])
    assert reward[0] > reward[1]


def test_log_odds_reward_is_log_p_nothate_over_p_hate_and_follows_the_label_names():
    model, tok = tiny_classifier(), WordTokenizer()
    texts = ["you are kind", "you are a fool", "thanks a lot"]
    p_hate = toxicity.hate_probabilities(texts, model, tok)
    expected = np.log((1 - p_hate) / p_hate)
    assert np.allclose(toxicity.reward_function(model, tok, kind="log_odds")(texts), expected, atol=1e-5)
    # the same texts under a swapped id2label (and swapped output rows) score the same
    assert np.allclose(toxicity.reward_function(swapped_copy(model), tok, kind="log_odds")(texts), expected, atol=1e-5)
    # the course's reward is the nothate logit alone, a different quantity
    assert not np.allclose(toxicity.reward_function(model, tok)(texts), expected, atol=1e-3)
    with pytest.raises(LabkitError, match="Unknown reward 'toxicity'.*'nothate_logit', 'log_odds'"):
        toxicity.reward_function(model, tok, kind="toxicity")
