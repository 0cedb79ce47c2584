"""The randomness and grammar every generated line shares: seeded streams, the per-dialogue picker, articles."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from labkit.datagen.vocabulary import NAMES

Turns = list[tuple[int, str]]


def seeded_rng(seed: int, name: str) -> random.Random:
    """The random stream ``name`` of master seed ``seed``, never the global one."""
    # Stable across Python versions/processes (no hash randomisation involved).
    # The "labkit.datagen" prefix is part of the seeded output: keep it when moving code.
    digest = hashlib.sha256(f"labkit.datagen:{seed}:{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def a_or_an(word: str) -> str:
    """Indefinite article for ``word`` ("useless"/"uni..." sound like 'you')."""
    w = word.lower()
    if w.startswith(("use", "uni", "eu")):
        return "a"
    return "an" if w[:1] in "aeiou" else "a"


def cap(text: str) -> str:
    """``text`` with its first letter upper-cased (the rest untouched)."""
    return text[:1].upper() + text[1:]


class Ctx:
    """Per-dialogue random helper; tracks names so one person never plays two roles."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._names: list[str] = []

    def pick(self, seq: Sequence):
        """One element of ``seq``."""
        return self.rng.choice(seq)

    def picks(self, seq: Sequence, k: int) -> list:
        """``k`` distinct elements of ``seq``."""
        return self.rng.sample(list(seq), k)

    def chance(self, p: float) -> bool:
        """True with probability ``p``."""
        return self.rng.random() < p

    def name(self) -> str:
        """A first name not yet used in this dialogue."""
        pool = [n for n in NAMES if n not in self._names]
        n = self.rng.choice(pool)
        self._names.append(n)
        return n

    def num(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]``."""
        return self.rng.randint(lo, hi)
