"""The offline original model's tokenizer: a whole-word T5 vocabulary counted from the project's own data."""
from __future__ import annotations

import math
import re
import string
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator

from labkit.config import MAX_SOURCE_TOKENS
from labkit.pretrain_mixture import DAY_NAMES, FACTS_PROMPT, FILL_IN_PROMPT, MONTH_NAMES, pseudo_names
from labkit.prompts import FLAN_TEMPLATE, SUMMARIZE_TEMPLATE, ZERO_SHOT_TEMPLATE


def tokenizer_texts(corpus: dict[str, list[dict[str, Any]]]) -> Iterator[str]:
    """Every text the whole-word vocabulary is counted from: prompts, the train split, the toxicity set,
    and the made-up names (twice each, so each is one piece)."""
    for template in (SUMMARIZE_TEMPLATE, ZERO_SHOT_TEMPLATE, FLAN_TEMPLATE, FILL_IN_PROMPT, FACTS_PROMPT):
        yield template.format(dialogue="", summary="")
    for row in corpus["train"]:
        yield row["dialogue"]
        yield row["summary"]
    for row in corpus["toxicity_train"]:
        yield row["text"]
    names = " ".join([*pseudo_names(), *DAY_NAMES, *MONTH_NAMES, *(str(d) for d in range(10))])
    yield names
    yield names


# A word, a speaker tag, a digit or one other character: the pieces of a whitespace-separated word.
# Numbers are spelled digit by digit (as LLaMA's tokenizer does): a room number or a price the
# model never saw whole is then copied like any other, instead of falling back to rare pieces.
_PIECE = re.compile(r"#Person\d+#|[A-Za-z]+(?:'[a-z]+)?|\d|[^\sA-Za-z\d]")
_MIN_WORD_COUNT = 2
_SCORE_DECIMALS = 8


def tokenizer_vocab(texts: Iterable[str]) -> list[tuple[str, float]]:
    """A unigram vocabulary of whole words, counted from ``texts``.

    Each word (speaker tag, digit) seen at least twice becomes one piece, scored
    by its log frequency; every character seen, plus printable ASCII, stays as a
    low-scored fallback so any text still encodes. SentencePiece's unigram trainer
    on this corpus kept only 1,347 pieces and split common words ("last" ->
    "▁ las t"): 1.74 tokens per word against 1.32 here, so every sequence the tiny
    model reads was a third longer and its copying harder. Counting is also
    deterministic by construction (the trainer's scores drifted between builds).
    """
    word_counts: Counter[str] = Counter()
    char_counts: Counter[str] = Counter()
    for text in texts:
        for word in text.split():
            char_counts.update(word)
            for match in _PIECE.finditer(word):
                word_counts[("\u2581" if match.start() == 0 else "") + match.group()] += 1
    total = sum(word_counts.values())
    scores = {w: math.log(c / total) for w, c in word_counts.items() if c >= _MIN_WORD_COUNT}
    floor = min(scores.values())
    char_total = sum(char_counts.values()) + 1
    for ch in set(char_counts) | set(string.ascii_letters + string.digits + string.punctuation):
        scores.setdefault(ch, floor - 4 + math.log((char_counts.get(ch, 0) + 1) / char_total) / 4)
    scores["\u2581"] = floor - 2
    pieces = sorted(((p, round(v, _SCORE_DECIMALS)) for p, v in scores.items()), key=lambda pv: (-pv[1], pv[0]))
    return [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + pieces


def train_tokenizer(corpus: dict[str, list[dict[str, Any]]], out: Path) -> Any:
    """The whole-word T5 tokenizer (T5's ``<pad>``, ``</s>``, ``<unk>`` at ids 0, 1, 2), saved to ``out``."""
    from transformers import T5Tokenizer

    tokenizer = T5Tokenizer(vocab=tokenizer_vocab(tokenizer_texts(corpus)), extra_ids=0)
    tokenizer.model_max_length = MAX_SOURCE_TOKENS
    if tokenizer.convert_tokens_to_ids(["<pad>", "</s>", "<unk>"]) != [0, 1, 2]:
        raise RuntimeError("tokenizer special tokens are not at ids 0, 1, 2 as T5 expects")
    tokenizer.save_pretrained(out)
    return tokenizer
