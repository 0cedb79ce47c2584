"""Seeded, stdlib-only generator of the small synthetic datasets shipped in ``data/``.

Two datasets are produced, both invented entirely by the templates in this package
(no third-party text is copied):

* ``dialogsum-mini`` -- dialogues in the DialogSum / ``knkarthick/dialogsum`` format
  (``id``, ``dialogue``, ``summary``, ``topic``; turns are ``#Person1#: ...`` lines).
  Summaries are short templates whose slot values (item, colour, price, day, ...)
  are copied from words in the dialogue, so a tiny T5 can learn the mapping in a few
  hundred steps.  About 20% of dialogues contain a rude turn with a mild, invented
  insult, and their summaries end with a fixed sentence that repeats the insult --
  this gives the PPO detoxification lab something to remove.
* ``toxicity`` -- short ``hate`` / ``nothate`` sentences for training a tiny reward
  classifier.  Every ``hate`` text contains a word from :data:`labkit.insults.INSULTS`
  and no ``nothate`` text does, so :func:`labkit.insults.is_toxic_text` agrees with the labels.

The modules, by job: ``vocabulary`` (slot-value word pools), ``context`` (seeded streams,
the per-dialogue picker, articles), ``scenarios`` (the scenario tables), ``fillers``
(greetings, small talk, closings), ``rudeness`` (planted rude turns), ``dialogue``
(assembly and the ``dialogsum-mini`` splits), ``toxicity_set`` (the ``toxicity`` splits),
``writer`` (JSONL files) and ``cli``.  The insult words and their detector live in
:mod:`labkit.insults`, so the grader can use them without loading the generator.

Regenerate the committed files with::

    python -m labkit.datagen            # writes <repo>/data/
    python -m labkit.datagen --out DIR --seed 1
"""

from __future__ import annotations

from labkit.datagen.cli import main
from labkit.datagen.dialogue import DIALOGSUM_SIZES, LONG_SHARE, TOXIC_SHARE, generate_dialogsum
from labkit.datagen.toxicity_set import TOXICITY_SIZES, generate_toxicity
from labkit.datagen.writer import DEFAULT_OUT, write_all

__all__ = [
    "DIALOGSUM_SIZES",
    "TOXICITY_SIZES",
    "TOXIC_SHARE",
    "LONG_SHARE",
    "DEFAULT_OUT",
    "generate_dialogsum",
    "generate_toxicity",
    "write_all",
    "main",
]
