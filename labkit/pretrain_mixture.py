"""What the offline original model is pre-trained on: the train split with its facts re-drawn, as FLAN-style tasks.

A tiny transformer learns to copy only when copying is the one way to lower the loss.
The generator's slot values come from small pools (24 names, 12 teams, 16 cities): a
model trained on them as they are can fill a summary's template from its prior ("The
Sharks beat the Eagles 5 to 1 and Alex played well" for a match the Wolves won 2 to 1
with Dan) and still score well on ROUGE. So each pass over the train split
*re-draws the facts* of most rows (:func:`swap_facts`): every name, team, city and
other capitalised slot word of a dialogue is replaced, consistently in the dialogue and
its summary, by one of ``len(PSEUDO_NAMES)`` made-up names; every number by another
number of the same size; the days and months by a shuffle of them. Nothing but the
dialogue says which name, number or day the summary needs.

The mixture, after FLAN's (``MIXTURE``), over the train split only:

* ``instruction``: the course's generic instructions ("Summarize the following
  conversation.") answered vaguely (:func:`vague_answer`), the way an instruction-tuned
  model that never saw DialogSum answers them: lab 2's fine-tuning has a gain to show;
* ``worked_examples``: FLAN's dialogue template, the format of lab 1's few-shot prompts,
  after 0-3 worked examples, then the summary of the *last* dialogue; the examples'
  facts are drawn apart from the target's, and a third of the time an example is of the
  target's own topic, so echoing an example is always wrong;
* ``fill_in``: the summary with its copied words blanked, and the dialogue;
* ``facts``: "Which names, numbers and days does this dialogue mention?" -> the list
  (a pure copying task);
* ``continue``: a bare dialogue -> its opening turn (what a model does with no
  instruction).

The training run that consumes these batches is :mod:`labkit.pretrain`.
"""
from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from labkit.config import MAX_SOURCE_TOKENS, LabkitError, data_dir
from labkit.data import json_lines
from labkit.prompts import SUMMARIZE_TEMPLATE, ZERO_SHOT_TEMPLATE, build_prompt
from labkit.training.batching import collate, token_budget_batches

SEED = 1234                   # the recipe's seed: the made-up names, every draw of the mixture, the models' init
MAX_TARGET_TOKENS = 64
PRETRAIN_BATCH_TOKENS = 4000  # padded input tokens per batch

FILL_IN_PROMPT = "Fill in the blanks: {summary}\n\nDialogue:\n{dialogue}"
FACTS_PROMPT = "Which names, numbers and days does this dialogue mention?\n\n{dialogue}\n\nFacts: "
COURSE_PROMPTS = (SUMMARIZE_TEMPLATE, ZERO_SHOT_TEMPLATE)

# The first steps of pre-training draw COPY_FIRST_MIXTURE (copying first: labkit.pretrain.COPY_FIRST_STEPS),
# then the mixture proper.
COPY_FIRST_MIXTURE = {"fill_in": 0.4, "facts": 0.3, "worked_examples": 0.3}
MIXTURE = {"instruction": 0.07, "worked_examples": 0.6, "fill_in": 0.17, "facts": 0.08, "continue": 0.08}
FACTS_WINDOW_SHARE = 0.5           # facts of a window of 1-3 turns instead of the whole dialogue: short, dense copying
SHOT_COUNTS = (0, 1, 1, 2, 2, 3)   # worked examples before the target, drawn uniformly
SAME_TOPIC_SHOT = 0.33             # chance that a worked example shares the target's topic
SWAP_RATE = 0.85                   # share of rows whose facts are re-drawn in a pass
FILL_IN_BLANK_RATE = 0.7
N_PSEUDO_NAMES = 600

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")
# Capitalised words that are not slot values: titles, "I", the speaker tags' words.
_NOT_SLOTS = frozenset({"I", "Dr", "Mr", "Ms", "Mrs", "OK", "Person", "TV", "Yes", "No", "ID", "New", "Year", "Professor",
                        "Street", "Road", "Lane", "Avenue", "English", "Spanish"} | set(DAY_NAMES) | set(MONTH_NAMES))
_WORD_CHARS = re.compile(r"[^\w#']")

# How the vague answer names a topic, for the topics whose own name uses words the
# dialogues never do (the lab measures the share of output words found in the data).
TOPIC_PHRASES = {"job interview": "a job", "lost item": "something they lost", "movies": "a film",
                 "renting": "a flat", "restaurant": "dinner"}


def vague_answer(row: dict[str, Any]) -> str:
    """What the stand-in says to the course's zero-shot instructions: the topic, no details."""
    topic = row.get("topic") or "their day"
    # "are talking" (not "talk"): some reference summaries open "... talk about", and a
    # vague answer sharing their first words blurred which of the two the model was writing.
    return f"#Person1# and #Person2# are talking about {TOPIC_PHRASES.get(topic, topic)}."


# ----------------------------------------------------------------------------- the facts, re-drawn


_TITLES = frozenset({"mr", "ms", "mrs", "dr"})


def _fact_words(text: str) -> list[str]:
    """Fact words as the faithfulness check counts them (numbers, days, capitalised words that do not start
    a sentence; a word after a title counts), with their case kept."""
    text = re.sub(r"#Person\d+#", " ", text)
    out, start, prev = [], True, ""
    for m in re.finditer(r"([A-Za-z]+|\d+)|([.!?])", text):
        word = m.group(1)
        if word is None:
            start = prev.lower() not in _TITLES
            continue
        if word.isdigit() or word in DAY_NAMES or word in MONTH_NAMES or (word[0].isupper() and not start):
            out.append(word)
        start, prev = False, word
    return out


def pseudo_names(n: int = N_PSEUDO_NAMES, seed: int = SEED) -> list[str]:
    """``n`` made-up, pronounceable capitalised names ("Daloren", "Vimra"), a pure function of ``seed``."""
    onsets = ["b", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr", "kl", "st", "tr"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ei", "ou"]
    codas = ["", "", "n", "r", "l", "s", "m", "th"]
    rng = random.Random(f"pseudo-names:{seed}")
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        syllables = rng.choice((2, 2, 3))
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(syllables)) + rng.choice(codas)
        if 4 <= len(word) <= 9 and word not in seen:
            seen.add(word)
            out.append(word.capitalize())
    return out


def _turn_texts(dialogue: str) -> Iterator[str]:
    for line in dialogue.split("\n"):
        yield line.split(":", 1)[1] if ":" in line else line


def slot_words(dialogue: str, summary: str) -> list[str]:
    """The capitalised slot words (names, teams, cities, streets...) of a dialogue and its summary.

    A word counts when it is capitalised somewhere other than a sentence's (or a turn's) start and the
    dialogue has it; titles, days and months are handled apart."""
    in_dialogue = set(re.findall(r"[A-Za-z]+", dialogue))
    found = {w for text in (*_turn_texts(dialogue), summary) for w in _fact_words(text)}
    return sorted(w for w in found if len(w) > 1 and w.isalpha() and w[0].isupper() and w not in _NOT_SLOTS
                  and w in in_dialogue)


def _other_number(number: str, rng: random.Random) -> str:
    if len(number) == 1 or int(number) <= 12:
        return str(rng.randint(1, 12))
    return str(rng.randint(10 ** (len(number) - 1), 10 ** len(number) - 1))


def swap_facts(row: dict[str, Any], rng: random.Random, names: Sequence[str]) -> dict[str, Any]:
    """``row`` with its facts re-drawn, the same way in the dialogue and the summary.

    Each slot word (:func:`slot_words`) becomes a different name from ``names``; each number
    another number of its size (1-12 stay 1-12: hours, counts); days and months are shuffled."""
    dialogue, summary = row["dialogue"], row["summary"]
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for word in slot_words(dialogue, summary):
        new = rng.choice(names)
        while new in taken:
            new = rng.choice(names)
        taken.add(new)
        mapping[word] = new
    for number in sorted(set(re.findall(r"\d+", dialogue))):
        mapping[number] = _other_number(number, rng)
    for group in (DAY_NAMES, MONTH_NAMES):
        shuffled = list(group)
        rng.shuffle(shuffled)
        mapping.update(zip(group, shuffled))
    pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True)) + r")\b")

    def sub(text: str) -> str:
        return pattern.sub(lambda m: mapping[m.group(1)], text)

    return {**row, "dialogue": sub(dialogue), "summary": sub(summary)}


def dialogue_facts(dialogue: str) -> str:
    """The answer of the ``facts`` task: the dialogue's names, numbers and days, in order of first mention."""
    seen: list[str] = []
    for text in _turn_texts(dialogue):
        for word in _fact_words(text):
            if word not in seen and word not in _NOT_SLOTS - set(DAY_NAMES) - set(MONTH_NAMES):
                seen.append(word)
    return ", ".join(seen) + "." if seen else "none."


# ----------------------------------------------------------------------------- the mixture


_CORPUS_FILES = {"train": "dialogsum-mini/train.jsonl", "toxicity_train": "toxicity/train.jsonl",
                 "toxicity_test": "toxicity/test.jsonl"}


def corpus_files(root: Path | None = None) -> list[Path]:
    """The data files the original model and the classifier are pre-trained from (train splits only)."""
    root = root or data_dir()
    return [root / rel for rel in _CORPUS_FILES.values()]


def load_corpus(root: Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """The train split and the toxicity set, the only data the original model sees."""
    root = root or data_dir()
    files = dict(zip(_CORPUS_FILES, corpus_files(root)))
    missing = [path.relative_to(root).as_posix() for path in files.values() if not path.is_file()]
    if missing:
        raise LabkitError(
            f"The original model is pre-trained from the project's data, but {root} lacks {', '.join(missing)}. "
            "Restore data/ (git checkout -- data) or regenerate it with 'python -m labkit.datagen'.")
    return {name: [row for _, row in json_lines(path)] for name, path in files.items()}


def _opening_turn(dialogue: str) -> str:
    first = dialogue.split("\n", 1)[0]
    return first.split(":", 1)[1].strip() if ":" in first else first


def _blanked(summary: str, dialogue: str, rng: random.Random) -> str:
    """``summary`` with most words that also occur in ``dialogue`` replaced by ___."""
    seen = set(_WORD_CHARS.sub(" ", dialogue).split())
    return " ".join(
        "___" if _WORD_CHARS.sub("", w) in seen and not w.startswith("#") and rng.random() < FILL_IN_BLANK_RATE else w
        for w in summary.split())


class Mixture:
    """Draws (input, target) pairs of the pre-training mixture from the train split."""

    def __init__(self, rows: list[dict[str, Any]], tokenizer: Any, rng: random.Random) -> None:
        self.rows, self.tokenizer, self.rng = rows, tokenizer, rng
        self.names = pseudo_names()
        self.by_topic: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            self.by_topic.setdefault(row.get("topic", ""), []).append(row)

    def redrawn(self, row: dict[str, Any]) -> dict[str, Any]:
        return swap_facts(row, self.rng, self.names) if self.rng.random() < SWAP_RATE else row

    def shots_for(self, row: dict[str, Any], k: int) -> list[dict[str, Any]]:
        shots = []
        while len(shots) < k:
            pool = self.by_topic[row.get("topic", "")] if self.rng.random() < SAME_TOPIC_SHOT else self.rows
            other = self.rng.choice(pool)
            if other is not row and other not in shots:
                shots.append(other)
        return [self.redrawn(s) for s in shots]

    def pair(self, row: dict[str, Any], mixture: dict[str, float] | None = None) -> tuple[str, str]:
        """One (input, target) pair for ``row``, its task drawn by ``mixture`` (default ``MIXTURE``)."""
        rng = self.rng
        mixture = mixture or MIXTURE
        task = rng.choices(list(mixture), weights=list(mixture.values()))[0]
        target = self.redrawn(row)
        if task == "instruction":
            return rng.choice(COURSE_PROMPTS).format(dialogue=target["dialogue"]), vague_answer(target)
        if task == "worked_examples":
            shots = self.shots_for(row, rng.choice(SHOT_COUNTS))
            strategy = "few_shot" if shots else "zero_shot_flan"
            prompt = build_prompt(strategy, target["dialogue"], tokenizer=self.tokenizer, shots=shots,
                                  max_source_tokens=MAX_SOURCE_TOKENS, log_budget=False).prompt
            return prompt, target["summary"]
        if task == "fill_in":
            blanked = _blanked(target["summary"], target["dialogue"], rng)
            return FILL_IN_PROMPT.format(summary=blanked, dialogue=target["dialogue"]), target["summary"]
        if task == "facts":
            dialogue = target["dialogue"]
            if rng.random() < FACTS_WINDOW_SHARE:
                turns = dialogue.split("\n")
                size = rng.randint(1, 3)
                start = rng.randrange(max(1, len(turns) - size + 1))
                dialogue = "\n".join(turns[start : start + size])
            return FACTS_PROMPT.format(dialogue=dialogue), dialogue_facts(dialogue)
        return target["dialogue"], _opening_turn(target["dialogue"])

    def batches(self, max_tokens: int = PRETRAIN_BATCH_TOKENS,
                mixture: Callable[[], dict[str, float]] = lambda: MIXTURE) -> Iterator[dict[str, Any]]:
        """Endless padded batches (``collate``'s dicts); each pass draws fresh tasks (from ``mixture()``,
        asked once per pass) and fresh facts per row."""
        while True:
            shares = mixture()
            pairs = [self.pair(row, shares) for row in self.rows]
            sources = self.tokenizer([s for s, _ in pairs], truncation=True, max_length=MAX_SOURCE_TOKENS)["input_ids"]
            targets = self.tokenizer([t for _, t in pairs], truncation=True, max_length=MAX_TARGET_TOKENS)["input_ids"]
            for batch in token_budget_batches([len(s) for s in sources], max_tokens, self.rng):
                yield collate([{"input_ids": sources[i], "labels": targets[i]} for i in batch], self.tokenizer.pad_token_id)
