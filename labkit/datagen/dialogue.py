"""Dialogue assembly: a scenario's core, an optional planted insult and fillers, into the ``dialogsum-mini`` splits."""

from __future__ import annotations

import random
from dataclasses import dataclass

from labkit.datagen.context import Ctx, Turns, seeded_rng
from labkit.datagen.fillers import SMALL_TALK, closing_pair, greeting_pair, inline_greeting
from labkit.datagen.rudeness import RUDE_REACTIONS, insult_phrase, rude_turn, toxic_sentence
from labkit.datagen.scenarios import SCENARIOS, Scenario

DIALOGSUM_SIZES: dict[str, int] = {"train": 2000, "validation": 200, "test": 200}

# Exact shares (rounded per split) so every split has the same mix.
TOXIC_SHARE = 0.20
LONG_SHARE = 0.04


def render(turns: Turns) -> str:
    """The DialogSum text of ``turns``: one ``#PersonN#: ...`` line each."""
    return "\n".join(f"#Person{s}#: {text}" for s, text in turns)


def _pair_turns(first: int, pair: tuple[str, str]) -> Turns:
    other = 2 if first == 1 else 1
    return [(first, pair[0]), (other, pair[1])]


def _next_speaker(turns: Turns) -> int:
    # After #Person3# (never last in a core) fall back to #Person1#.
    return 2 if turns and turns[-1][0] == 1 else 1


def _plant_insult(c: Ctx, core: Turns, summary: str) -> tuple[Turns, str]:
    """Make one turn of ``core`` rude and end the summary with the sentence that reports it."""
    core = list(core)
    rude = c.pick((1, 2))
    target = 2 if rude == 1 else 1
    idx = [i for i, (s, _) in enumerate(core) if s == rude]
    i = c.pick(idx)
    phrase = insult_phrase(c)
    core[i] = (rude, f"{core[i][1]} {rude_turn(c, phrase)}")
    # Sometimes the insulted speaker reacts, as people do.
    if i + 1 < len(core) and core[i + 1][0] == target and c.chance(0.5):
        core[i + 1] = (target, f"{c.pick(RUDE_REACTIONS)} {core[i + 1][1]}")
    return core, f"{summary} {toxic_sentence(rude, target, phrase)}"


@dataclass(frozen=True)
class _Parts:
    """Everything drawn for one dialogue; only the small-talk counts vary between assemblies."""

    head: Turns  # a greeting exchange, or empty
    inline: str  # a greeting put on the very first turn, or ""
    core: Turns
    talk: list[tuple[str, str]]  # small talk in drawn order, used without repeats
    want_close: bool
    closing: dict[int, tuple[str, str]]  # by who speaks first

    def assemble(self, n_pre: int, n_post: int) -> Turns:
        """The turns with ``n_pre`` small-talk exchanges before the core and ``n_post`` after it."""
        turns = list(self.head)
        for k in range(n_pre):
            turns += _pair_turns(1, self.talk[k])
        turns += self.core
        for k in range(n_post):
            turns += _pair_turns(_next_speaker(turns), self.talk[n_pre + k])
        if self.want_close:
            first = _next_speaker(turns)
            turns += _pair_turns(first, self.closing[first])
        if self.inline:
            turns[0] = (turns[0][0], self.inline + turns[0][1])
        return turns


def _opening(c: Ctx, setting: str, long: bool) -> tuple[Turns, str]:
    """A greeting exchange (always for long dialogues), an inline greeting, or neither."""
    mode = c.rng.random()
    if long or mode < 0.55:
        return _pair_turns(1, greeting_pair(c, setting)), ""
    if mode < 0.80:
        return [], inline_greeting(c, setting)
    return [], ""


def _grow_long(rng: random.Random, parts: _Parts) -> Turns:
    """Grow with small talk until the target length; 25-40 turns, 2000-3000 chars."""
    target_chars = rng.randint(2150, 2800)
    n_pre, n_post = 1, 0
    turns = parts.assemble(n_pre, n_post)
    while (len(render(turns)) < target_chars or len(turns) < 25) and len(turns) < 39:
        if rng.random() < 0.5:
            n_pre += 1
        else:
            n_post += 1
        turns = parts.assemble(n_pre, n_post)
    return turns


def _fit_ordinary(parts: _Parts, n_pre: int, n_post: int) -> Turns:
    """Keep ordinary dialogues at 4-14 turns and at least ~300 characters."""
    turns = parts.assemble(n_pre, n_post)
    while len(turns) > 14 and (n_pre or n_post):
        if n_pre:
            n_pre -= 1
        else:
            n_post -= 1
        turns = parts.assemble(n_pre, n_post)
    while len(render(turns)) < 300 and len(turns) <= 12:
        n_pre += 1
        turns = parts.assemble(n_pre, n_post)
    return turns


def _make_dialogue(rng: random.Random, scenario: Scenario, toxic: bool, long: bool) -> tuple[str, str]:
    # The order of the draws below is part of the seeded output: keep it when editing.
    c = Ctx(rng)
    core, summary = scenario.build(c)
    core = list(core)
    if toxic:
        core, summary = _plant_insult(c, core, summary)
    head, inline = _opening(c, scenario.setting, long)
    talk = rng.sample(SMALL_TALK, len(SMALL_TALK))  # a shuffled copy, drawn without repeats
    casual = scenario.setting == "casual"
    n_pre = rng.choices((0, 1, 2), weights=(1, 4, 4) if casual else (3, 4, 3))[0]
    n_post = rng.choices((0, 1), weights=(1, 1))[0]
    want_close = long or rng.random() < 0.65
    # Drawn once, up front, so re-assembling with other small-talk counts reuses them.
    closing = {1: closing_pair(c, scenario.setting, 1), 2: closing_pair(c, scenario.setting, 2)}
    parts = _Parts(head, inline, core, talk, want_close, closing)
    turns = _grow_long(rng, parts) if long else _fit_ordinary(parts, n_pre, n_post)
    return render(turns), summary


def _topics() -> list[str]:
    out: list[str] = []
    for sc in SCENARIOS:
        if sc.topic not in out:
            out.append(sc.topic)
    return out


def _pick_scenario(rng: random.Random, topics: list[str]) -> Scenario:
    # Uniform over topics first, so topics with more scenarios are not over-represented.
    topic = rng.choice(topics)
    return rng.choice([sc for sc in SCENARIOS if sc.topic == topic])


def generate_dialogsum(seed: int = 0, sizes: dict[str, int] | None = None) -> dict[str, list[dict]]:
    """Generate the ``dialogsum-mini`` splits.

    Args:
        seed: master seed; the same seed always gives identical rows.
        sizes: rows per split, default :data:`DIALOGSUM_SIZES`
            (train 2000, validation 200, test 200).

    Returns:
        ``{split: [{"id", "dialogue", "summary", "topic"}, ...]}``.  Exactly
        ``round(TOXIC_SHARE * n)`` rows per split contain a rude turn (and a toxic
        summary sentence) and ``round(LONG_SHARE * n)`` are long (2000-3000 chars).
        No dialogue text occurs twice, within or across splits.
    """
    sizes = dict(DIALOGSUM_SIZES if sizes is None else sizes)
    topics = _topics()
    seen: set[str] = set()  # membership only; never iterated, so order cannot leak
    out: dict[str, list[dict]] = {}
    for split, n in sizes.items():
        rng = seeded_rng(seed, f"dialogsum/{split}")
        toxic_idx = set(rng.sample(range(n), round(TOXIC_SHARE * n)))
        long_idx = set(rng.sample(range(n), round(LONG_SHARE * n)))
        rows: list[dict] = []
        for i in range(n):
            while True:
                sc = _pick_scenario(rng, topics)
                dialogue, summary = _make_dialogue(rng, sc, i in toxic_idx, i in long_idx)
                if dialogue not in seen:
                    break
            seen.add(dialogue)
            rows.append({"id": f"{split}_{i}", "dialogue": dialogue, "summary": summary, "topic": sc.topic})
        out[split] = rows
    return out
