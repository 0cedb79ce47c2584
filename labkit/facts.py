"""Facts as a measured result: is a summary true to its dialogue?

ROUGE counts shared words, so a summary with the right template and the wrong
slots ("The Sharks beat the Eagles 5 to 1" for a dialogue about the Wolves and
the Falcons) scores well. This module checks the *facts* a summary states
against the dialogue it summarizes, in the spirit of entity-level precision
(Nan et al. 2021, "Entity-level Factual Consistency of Abstractive Text
Summarization"):

* ``fact_tokens``: a summary's names, numbers and days: numbers, day and month
  names, and capitalised words that do not start a sentence (a word after
  Mr./Ms./Mrs./Dr. counts), with the ``#PersonN#`` tags removed; lower-cased.
* a fact token is *supported* when the dialogue contains it (case-insensitive);
  the **invented-fact rate** of a set of outputs is unsupported fact tokens /
  all fact tokens (``check``; the human summaries of ``data/`` score 0.000).
* **fact recall**: the share of the reference summary's fact tokens that the
  output states, so that leaving every fact out is no way to score well.
* **echo share** (lab 1): the share of outputs closer (ROUGE-1) to a worked
  example's summary than to their own reference: a few-shot output that
  summarizes the example instead of the target.

The definitions are those of the project's acceptance script
(``../shared/acceptance/faithful``); ``tests/test_facts.py`` checks they agree.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

from labkit.config import LabkitError

DAYS = frozenset(
    d.lower() for d in (
        "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July "
        "August September October November December").split()
)
TITLES = frozenset({"mr", "ms", "mrs", "dr"})
_PERSON_TAG = re.compile(r"#Person\d+#")
_TOKEN = re.compile(r"([A-Za-z]+|\d+)|([.!?])")
_SOURCE_WORD = re.compile(r"[a-z]+|\d+")


def fact_tokens(text: str | None) -> list[str]:
    """The fact tokens of ``text``, lower-cased, in order (repeats kept).

    A fact token is a number (a run of digits), a day or month name, or a capitalised
    word that does not start a sentence; the word after a title (Mr./Ms./Mrs./Dr.)
    does not start one. ``#PersonN#`` tags are removed first. Words are runs of ASCII
    letters; ``.``, ``!`` and ``?`` end a sentence.

    >>> fact_tokens("#Person1# meets Ms. Taylor on Friday. They pay 20 dollars.")
    ['ms', 'taylor', 'friday', '20']
    """
    text = _PERSON_TAG.sub(" ", str(text or ""))
    out: list[str] = []
    start, prev = True, ""
    for match in _TOKEN.finditer(text):
        token = match.group(1)
        if token is None:  # sentence punctuation: a new sentence starts, unless it closed a title
            start = prev.lower() not in TITLES
            continue
        if token.isdigit() or token.lower() in DAYS or (token[0].isupper() and not start):
            out.append(token.lower())
        start, prev = False, token
    return out


def source_words(source: str | None) -> set[str]:
    """The lower-cased words and numbers of a source (a dialogue): what a fact token must be among."""
    return set(_SOURCE_WORD.findall(str(source or "").lower()))


def invented_facts(output: str | None, source: str | None) -> list[str]:
    """The fact tokens of ``output`` that ``source`` does not contain (in order, repeats kept)."""
    words = source_words(source)
    return [f for f in fact_tokens(output) if f not in words]


def invented_column(outputs: Sequence[str], sources: Sequence[str]) -> list[str]:
    """One string per output, its invented fact tokens joined by spaces ("" when none): a CSV column."""
    _same_length(outputs, sources, "sources")
    return [" ".join(invented_facts(o, s)) for o, s in zip(outputs, sources)]


def stated_facts(output: str | None, reference: str | None) -> tuple[int, int]:
    """(how many of the reference's fact tokens the output states, how many fact tokens the reference has).

    Counted over the reference's tokens with repeats, each stated when it is among the output's fact tokens."""
    got = set(fact_tokens(output))
    want = fact_tokens(reference)
    return sum(f in got for f in want), len(want)


@dataclass(frozen=True)
class FactCheck:
    """The facts of one set of outputs against their sources (and references)."""

    n_outputs: int
    n_facts: int                  # fact tokens in all outputs
    n_invented: int               # of those, not in the output's source
    invented_rate: float          # n_invented / n_facts (0 when there are no facts)
    outputs_with_invented: float  # share of outputs with at least one invented fact
    recall: float | None = None   # share of the references' fact tokens the outputs state (None: no references)
    n_reference_facts: int = 0
    echo_share: float | None = None  # lab 1: share of outputs closer to a worked example than to their reference

    def as_dict(self) -> dict[str, Any]:
        """The recorded form (JSON-ready); ``recall`` and ``echo_share`` only where measured."""
        out: dict[str, Any] = {"invented_rate": self.invented_rate, "outputs_with_invented": self.outputs_with_invented,
                               "n_outputs": self.n_outputs, "n_facts": self.n_facts, "n_invented": self.n_invented}
        if self.recall is not None:
            out.update(recall=self.recall, n_reference_facts=self.n_reference_facts)
        if self.echo_share is not None:
            out["echo_share"] = self.echo_share
        return out


def _same_length(outputs: Sequence[Any], other: Sequence[Any], what: str) -> None:
    if isinstance(outputs, str) or isinstance(other, str):
        raise LabkitError("The facts check takes lists of texts, not single strings.")
    if len(outputs) != len(other):
        raise LabkitError(f"Got {len(outputs)} outputs but {len(other)} {what}: the facts check needs one per output, "
                          "in the same order.")


def check(
    outputs: Sequence[str], sources: Sequence[str], references: Sequence[str] | None = None
) -> FactCheck:
    """Invented-fact rate of ``outputs`` against their ``sources`` (the dialogues, one per output), the share
    of outputs with an invented fact, and with ``references`` the fact recall. Empty texts count as no facts."""
    _same_length(outputs, sources, "sources")
    outputs, sources = [str(o or "") for o in outputs], [str(s or "") for s in sources]
    n_facts = n_invented = with_invented = 0
    for output, source in zip(outputs, sources):
        invented = invented_facts(output, source)
        n_facts += len(fact_tokens(output))
        n_invented += len(invented)
        with_invented += bool(invented)
    recall, n_ref = None, 0
    if references is not None:
        _same_length(outputs, references, "references")
        hit = 0
        for output, reference in zip(outputs, references):
            stated, wanted = stated_facts(output, str(reference or ""))
            hit, n_ref = hit + stated, n_ref + wanted
        recall = hit / n_ref if n_ref else 1.0
    return FactCheck(n_outputs=len(outputs), n_facts=n_facts, n_invented=n_invented,
                     invented_rate=n_invented / n_facts if n_facts else 0.0,
                     outputs_with_invented=with_invented / len(outputs) if outputs else 0.0,
                     recall=recall, n_reference_facts=n_ref)


def echoes(outputs: Sequence[str], references: Sequence[str], examples: Sequence[str]) -> list[bool]:
    """For each output: is it closer (ROUGE-1 F-measure, ``labkit.metrics``) to one of the worked ``examples``'
    summaries than to its own reference? Ties count as not closer; no examples, no echo."""
    import numpy as np

    from labkit import metrics

    _same_length(outputs, references, "references")
    outputs, references = [str(o or "") for o in outputs], [str(r or "") for r in references]
    examples = [str(e) for e in examples]
    if not outputs or not examples:
        return [False] * len(outputs)
    own = metrics.rouge_scores(outputs, references)["rouge1"].to_numpy()
    best = metrics.rouge_scores(outputs, [examples[0]] * len(outputs))["rouge1"].to_numpy()
    for example in examples[1:]:
        best = np.maximum(best, metrics.rouge_scores(outputs, [example] * len(outputs))["rouge1"].to_numpy())
    return [bool(b > o) for b, o in zip(best, own)]


def echo_share(outputs: Sequence[str], references: Sequence[str], examples: Sequence[str]) -> float:
    """The share of ``outputs`` closer (ROUGE-1) to a worked example's summary than to their own reference."""
    flags = echoes(outputs, references, examples)
    return sum(flags) / len(flags) if flags else 0.0


def check_sets(
    outputs: Mapping[str, Sequence[str]],
    sources: Sequence[str],
    references: Sequence[str] | None = None,
    *,
    human: str | None = None,
    examples: Sequence[str] | None = None,
    echo_sets: Iterable[str] = (),
) -> dict[str, FactCheck]:
    """``check`` for every named set of outputs of the same dialogues (a lab's strategies, models or policies).

    ``human``: also check the references themselves under that name (the human summaries: the 0.000 mark).
    ``examples`` and ``echo_sets``: the worked examples' summaries, and the sets (lab 1's one- and few-shot)
    whose echo share is measured against them."""
    echo_sets = set(echo_sets)
    out: dict[str, FactCheck] = {}
    for name, texts in outputs.items():
        result = check(list(texts), sources, references)
        if name in echo_sets and examples is not None and references is not None:
            result = replace(result, echo_share=echo_share(list(texts), references, examples))
        out[name] = result
    if human is not None and references is not None:
        out[human] = check(list(references), sources, references)
    return out


def as_records(checks: Mapping[str, FactCheck]) -> dict[str, dict[str, Any]]:
    """name → ``FactCheck.as_dict()``: what a lab records as ``facts``."""
    return {name: result.as_dict() for name, result in checks.items()}


def table(checks: Mapping[str, FactCheck] | Mapping[str, Mapping[str, Any]]) -> "Any":
    """The checks as a small DataFrame, one row per set: invented rate, share of outputs with an invented fact,
    recall (and echo share where measured), and the counts."""
    import pandas as pd

    rows = {name: (c.as_dict() if isinstance(c, FactCheck) else dict(c)) for name, c in checks.items()}
    order = ["invented_rate", "outputs_with_invented", "recall", "echo_share", "n_outputs", "n_facts", "n_invented"]
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return frame[[c for c in order if c in frame.columns]]


@dataclass(frozen=True)
class InventedExample:
    """One output that states a fact its dialogue lacks, with what a reader needs to see it."""

    name: str              # the output set (a model)
    index: int             # its row in the outputs
    dialogue: str
    reference: str
    output: str
    invented: list[str]    # the invented fact tokens
    rouge1: float          # the output's ROUGE-1 against the reference

    def describe(self) -> str:
        """A few lines that stay true whatever the model wrote: the dialogue, the human summary, the output,
        its invented facts and its ROUGE-1."""
        return (f"DIALOGUE:\n{self.dialogue}\n\nHUMAN SUMMARY:      {self.reference}\nSUMMARY ({self.name}):  {self.output}\n\n"
                f"ROUGE-1 of this summary against the human one: {self.rouge1:.3f}. Stated here but not in the "
                f"dialogue: {', '.join(dict.fromkeys(self.invented))}.")


def invented_example(
    outputs: Mapping[str, Sequence[str]], sources: Sequence[str], references: Sequence[str],
    *, prefer: Sequence[str] | None = None,
) -> InventedExample | None:
    """The output with the highest ROUGE-1 among those stating an invented fact, searching the sets in
    ``prefer`` order (default: all, in order) and taking the first set that has one; None when no output of
    those sets invents a fact. The one ROUGE likes best is the lesson: the template scores, the facts are wrong."""
    from labkit import metrics

    _same_length(sources, references, "references")
    sources, references = [str(s or "") for s in sources], [str(r or "") for r in references]
    for name in (prefer or list(outputs)):
        if name not in outputs:
            continue
        _same_length(outputs[name], sources, "sources")
        texts = [str(t or "") for t in outputs[name]]
        bad = [i for i, (t, s) in enumerate(zip(texts, sources)) if invented_facts(t, s)]
        if not bad:
            continue
        scores = metrics.rouge_scores([texts[i] for i in bad], [references[i] for i in bad])["rouge1"].to_numpy()
        k = int(scores.argmax())
        i = bad[k]
        return InventedExample(name=name, index=i, dialogue=sources[i], reference=references[i],
                               output=texts[i], invented=invented_facts(texts[i], sources[i]), rouge1=float(scores[k]))
    return None
