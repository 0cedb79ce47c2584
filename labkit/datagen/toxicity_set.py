"""The ``toxicity`` dataset: balanced ``hate`` / ``nothate`` sentences for training the tiny reward classifier."""

from __future__ import annotations

from labkit.datagen.context import Ctx, a_or_an, seeded_rng
from labkit.datagen.fillers import SMALL_TALK
from labkit.datagen.rudeness import RUDE_REACTIONS, insult_phrase, rude_turn, toxic_sentence
from labkit.datagen.scenarios import SCENARIOS
from labkit.insults import is_toxic_text

TOXICITY_SIZES: dict[str, int] = {"train": 1500, "test": 300}

_POSITIVE_NOUNS = (
    "friend", "neighbour", "cook", "teacher", "colleague", "student", "helper",
    "listener", "driver", "dancer", "singer", "player",
)
_POSITIVE_ADJS = ("kind", "great", "good", "clever", "helpful", "patient", "funny", "careful", "lovely", "brilliant")
_POLITE_REQUESTS = (
    "Could you hurry up a little, please?", "Excuse me, could you move a bit?",
    "Sorry, could you say that again?", "Please take your time, there is no rush.",
    "Could you help me with this, please?", "Would you mind waiting a moment?",
    "Thank you for being so patient with me.", "I really appreciate your help today.",
    "Let me know if you need anything else.", "Could you please speak a little louder?",
    "Sorry for the wait, I'm almost done.", "Please let me finish my sentence first.",
)


def _hate_text(c: Ctx, kind: int) -> str:
    name = c.name()
    phrase = insult_phrase(c)
    if kind == 0:  # rude dialogue turn, sometimes after an ordinary sentence
        turn = rude_turn(c, phrase)
        if c.chance(0.5):
            sc = c.pick(SCENARIOS)
            core, _ = sc.build(c)
            turn = f"{c.pick(core)[1]} {turn}"
        return turn
    if kind == 1:  # the toxic summary sentence on its own
        r = c.pick((1, 2))
        return toxic_sentence(r, 3 - r, phrase)
    if kind == 2:  # a whole toxic summary, as the PPO policy would write it
        sc = c.pick(SCENARIOS)
        _, summary = sc.build(c)
        r = c.pick((1, 2))
        return f"{summary} {toxic_sentence(r, 3 - r, phrase)}"
    return c.pick((  # kind 3: direct insults
        f"{name} is {a_or_an(phrase)} {phrase}.",
        f"You are such {a_or_an(phrase)} {phrase}, {name}.",
        f"What {a_or_an(phrase)} {phrase} you are!",
        f"Shut up, you {phrase}.",
        f"{name}, you are {a_or_an(phrase)} {phrase} and everyone knows it.",
        f"Nobody wants to hear from {a_or_an(phrase)} {phrase} like you.",
        f"Only {a_or_an(phrase)} {phrase} would do something like that.",
        f"#Person{c.pick((1, 2))}# is {a_or_an(phrase)} {phrase} who never listens.",
        f"Go away, {name}, you {phrase}.",
        f"I can't work with {a_or_an(phrase)} {phrase} like {name}.",
    ))


def _nothate_text(c: Ctx, kind: int) -> str:
    name = c.name()
    if kind == 0:  # ordinary dialogue turn
        sc = c.pick(SCENARIOS)
        core, _ = sc.build(c)
        return c.pick(core)[1]
    if kind == 1:  # plain summary
        sc = c.pick(SCENARIOS)
        _, summary = sc.build(c)
        return summary
    if kind == 2:  # friendly statements, same shapes as the direct insults
        phrase = f"{c.pick(_POSITIVE_ADJS)} {c.pick(_POSITIVE_NOUNS)}"
        return c.pick((
            f"{name} is {a_or_an(phrase)} {phrase}.",
            f"You are such {a_or_an(phrase)} {phrase}, {name}.",
            f"What {a_or_an(phrase)} {phrase} you are!",
            f"{name}, you are {a_or_an(phrase)} {phrase} and everyone knows it.",
            f"Everyone wants to work with {a_or_an(phrase)} {phrase} like you.",
            f"#Person{c.pick((1, 2))}# is {a_or_an(phrase)} {phrase} who always listens.",
            f"#Person1# thanks #Person2# for the help, {name}.",
            f"I love working with {a_or_an(phrase)} {phrase} like {name}.",
        ))
    return c.pick(_POLITE_REQUESTS + RUDE_REACTIONS) if c.chance(0.5) else (
        f"{c.pick(SMALL_TALK)[c.pick((0, 1))]}"
    )


def _words(text: str) -> int:
    return len(text.split())


def generate_toxicity(seed: int = 0) -> dict[str, list[dict]]:
    """Generate the ``toxicity`` splits (train 1500, test 300), exactly balanced.

    ``hate`` rows insult someone with :data:`labkit.insults.INSULTS` words (rude dialogue turns,
    toxic summary sentences, whole toxic summaries, direct insults); ``nothate`` rows
    are ordinary turns, plain summaries, friendly statements and small talk.  Texts
    have 5-25 words and are unique across both splits.
    """
    rng = seeded_rng(seed, "toxicity")
    total = sum(TOXICITY_SIZES.values())
    per_class = total // 2
    seen: set[str] = set()
    pools: dict[str, list[str]] = {"hate": [], "nothate": []}
    makers = {"hate": (_hate_text, (3, 2, 2, 3)), "nothate": (_nothate_text, (3, 3, 2, 2))}
    for label in ("hate", "nothate"):
        fn, weights = makers[label]
        while len(pools[label]) < per_class:
            c = Ctx(rng)
            kind = rng.choices(range(4), weights=weights)[0]
            text = fn(c, kind)
            if not 5 <= _words(text) <= 25 or text in seen:
                continue
            # Guard the invariant is_toxic_text(text) == (label == "hate").
            if is_toxic_text(text) != (label == "hate"):
                continue
            seen.add(text)
            pools[label].append(text)
    out: dict[str, list[dict]] = {}
    start = 0
    for split, n in TOXICITY_SIZES.items():
        half = n // 2
        rows = [{"text": t, "label": "hate"} for t in pools["hate"][start:start + half]]
        rows += [{"text": t, "label": "nothate"} for t in pools["nothate"][start:start + n - half]]
        rng.shuffle(rows)
        out[split] = rows
        start += half
    return out
