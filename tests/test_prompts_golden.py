"""labkit.prompts.build_prompt, golden: the exact prompt, counts and note for each way of fitting the budget.

A tokenizer with one token per character (plus ``</s>``) makes every count readable and the cases
independent of the fixtures; the real tokenizer's budget is tested in ``test_prompts.py``. These values
were recorded from ``build_prompt`` before it was split into small functions, and must not change.
"""
from __future__ import annotations

import pytest

from labkit.config import LabkitError
from labkit.prompts import BudgetedPrompt, build_prompt, flan_prompt, make_prompt, zero_shot_prompt

SHOTS = [
    ("#Person1#: Hello, I'd like a red jacket.\n#Person2#: Here you are. It's 45 dollars.\n#Person1#: I'll take it.",
     "#Person1# buys a red jacket for 45 dollars."),
    ("#Person1#: When is the exam?\n#Person2#: On Monday at nine.\n#Person1#: Thanks.",
     "#Person2# tells #Person1# the exam is on Monday."),
    ("#Person1#: Is it going to rain?\n#Person2#: Yes, take an umbrella.", "#Person2# says it will rain."),
]
TARGET = "#Person1#: Can I book a table for two?\n#Person2#: Sure, for what time?\n#Person1#: Eight o'clock, please."
ONE_LONG_TURN = "#Person1#: " + "I would like to book a table for two people at eight o'clock tonight, please. " * 2


def chars(text: str, **_: object) -> dict[str, list[int]]:
    """One token per character, and one for the end-of-sequence token."""
    return {"input_ids": [0] * (len(text) + 1)}


def _expected(strategy: str, prompt: str, tokens: int, limit: int, requested: int, kept: int, trimmed: int,
              before: int, target_trimmed: bool, note: str) -> BudgetedPrompt:
    return BudgetedPrompt(strategy=strategy, prompt=prompt, tokens=tokens, limit=limit, shots_requested=requested,
                          shots_kept=kept, shots_trimmed=trimmed, tokens_before=before,
                          target_trimmed=target_trimmed, note=note)


CASES = {
    "fits": (
        ("few_shot", TARGET, {"shots": SHOTS, "max_source_tokens": 1000}),
        _expected("few_shot", make_prompt(SHOTS, TARGET), 614, 1000, 3, 3, 0, 614, False,
                  "few_shot: 614 tokens <= limit 1000; 3 of 3 shots kept"),
    ),
    "drop": (
        ("few_shot", TARGET, {"shots": SHOTS, "max_source_tokens": 400}),
        _expected("few_shot", make_prompt(SHOTS[2:], TARGET), 267, 400, 3, 1, 0, 614, False,
                  "few_shot: 614 tokens > limit 400; dropped 2 of 3 shots (farthest from the target first) "
                  "-> 267 tokens; the target dialogue is intact"),
    ),
    "trim a shot": (
        ("few_shot", TARGET, {"shots": SHOTS, "max_source_tokens": 400, "on_overflow": "trim"}),
        _expected("few_shot",
                  make_prompt([("#Person2#: On Monday at nine.\n#Person1#: Thanks.", SHOTS[1][1]), SHOTS[2]], TARGET),
                  399, 400, 3, 2, 1, 614, False,
                  "few_shot: 614 tokens > limit 400; dropped 1 of 3 shots (farthest from the target first); "
                  "shortened the farthest kept shot from its start -> 399 tokens; the target dialogue is intact"),
    ),
    "one shot dropped": (
        ("one_shot", TARGET, {"shots": SHOTS, "max_source_tokens": 200}),
        _expected("one_shot", flan_prompt(TARGET), 138, 200, 1, 0, 0, 324, False,
                  "one_shot: 324 tokens > limit 200; dropped 1 of 1 shots (farthest from the target first) "
                  "-> 138 tokens; the target dialogue is intact"),
    ),
    "target loses turns": (
        ("zero_shot", TARGET, {"max_source_tokens": 100}),
        _expected("zero_shot", zero_shot_prompt("#Person1#: Eight o'clock, please."), 89, 100, 0, 0, 0, 160, True,
                  "zero_shot: 160 tokens > limit 100; no shots to drop -> 89 tokens; the target dialogue alone "
                  "was too long, so its first 2 of 3 turns were cut from its start"),
    ),
    "target loses characters": (
        ("zero_shot_flan", ONE_LONG_TURN, {"max_source_tokens": 60}),
        _expected("zero_shot_flan", flan_prompt(" o'clock tonight, please. "), 60, 60, 0, 0, 0, 201, True,
                  "zero_shot_flan: 201 tokens > limit 60; no shots to drop -> 60 tokens; the target dialogue "
                  "alone was too long, so all but the end of its last turn (141 characters) were cut from its start"),
    ),
    "template alone too long": (
        ("zero_shot", TARGET, {"max_source_tokens": 40}),
        _expected("zero_shot", zero_shot_prompt(TARGET), 160, 40, 0, 0, 0, 160, False,
                  "zero_shot: 160 tokens > limit 40; no shots to drop -> 160 tokens; the target dialogue is intact; "
                  "the template alone exceeds the limit, nothing could be cut to fit"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_build_prompt_golden(case: str) -> None:
    (strategy, dialogue, options), expected = CASES[case]
    assert build_prompt(strategy, dialogue, tokenizer=chars, **options) == expected


def test_long_target_refused_golden() -> None:
    with pytest.raises(LabkitError) as err:
        build_prompt("zero_shot", TARGET, tokenizer=chars, max_source_tokens=100, on_long_target="error")
    assert str(err.value) == (
        "The dialogue to summarize alone needs 160 tokens with the zero_shot template, more than the encoder "
        "limit of 100. Pick a shorter dialogue, raise max_source_tokens if the model allows it, or use "
        "on_long_target='trim'."
    )
