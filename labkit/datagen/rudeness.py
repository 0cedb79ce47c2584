"""The rude turns planted in toxic dialogues, the reactions to them, and the summary sentence that reports them."""

from __future__ import annotations

from labkit.datagen.context import Ctx, a_or_an
from labkit.insults import INSULT_ADJECTIVES, INSULT_NOUNS


# Rude turn openers; "?" ones become questions.
_RUDE_LEADS: tuple[str, ...] = (
    "Move it", "Hurry up", "Are you deaf", "Just do your job", "Stop wasting my time",
    "Listen to me", "Don't be so slow", "What is wrong with you", "Can't you understand simple words",
    "Get out of my way", "Stop talking nonsense", "Are you even listening", "Use your brain",
    "Nobody asked you", "Pay attention", "Don't just stand there",
)
RUDE_REACTIONS: tuple[str, ...] = (
    "There's no need to be rude.", "Please calm down.", "Hey, don't talk to me like that.",
    "That's not very nice.", "Please be polite.",
)


def insult_phrase(c: Ctx) -> str:
    """An insult as it appears after 'you': 'clown' or 'stupid clown'."""
    noun = c.pick(INSULT_NOUNS)
    if c.chance(0.5):
        return f"{c.pick(INSULT_ADJECTIVES)} {noun}"
    return noun


def rude_turn(c: Ctx, phrase: str) -> str:
    """A rude sentence ending in the insult: 'Move it, you clown.'"""
    lead = c.pick(_RUDE_LEADS)
    q = lead.split()[0] in ("Are", "What", "Can't")
    return f"{lead}, you {phrase}{'?' if q else '.'}"


def toxic_sentence(rude: int, target: int, phrase: str) -> str:
    """The summary sentence that reports the insult: '#Person1# calls #Person2# a clown.'"""
    # Fixed place (end of summary) and fixed wording, so a small model learns it;
    # only the insult itself varies, copied from the rude turn.
    return f"#Person{rude}# calls #Person{target}# {a_or_an(phrase)} {phrase}."
