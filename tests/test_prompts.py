"""labkit.prompts: the course's exact strings and the token budget (on real DialogSum dialogues)."""
from __future__ import annotations

import logging

import pytest

from labkit.config import LabkitError
from labkit.data import read_jsonl
from labkit.prompts import (
    BudgetedPrompt,
    build_prompt,
    build_prompts,
    count_tokens,
    flan_prompt,
    make_prompt,
    no_prompt,
    rows_at,
    summarize_prompt,
    zero_shot_prompt,
)


# ---- exact strings (the course's Lab 1 f-strings, character for character) ----

def test_zero_shot_and_flan_templates_are_the_courses():
    assert no_prompt("D") == "D"
    assert zero_shot_prompt("A: hi\nB: yo") == "\nSummarize the following conversation.\n\nA: hi\nB: yo\n\nSummary:\n    "
    assert flan_prompt("A: hi\nB: yo") == "\nDialogue:\n\nA: hi\nB: yo\n\nWhat was going on?\n"


def test_summarize_prompt_is_lab2_prompt_with_trailing_space():
    assert summarize_prompt("X") == "Summarize the following conversation.\n\nX\n\nSummary: "


def test_make_prompt_matches_course_make_prompt():
    shots = [{"dialogue": "d1", "summary": "s1"}, ("d2", "s2")]
    expected = (
        "\nDialogue:\n\nd1\n\nWhat was going on?\ns1\n\n\n"
        "\nDialogue:\n\nd2\n\nWhat was going on?\ns2\n\n\n"
        "\nDialogue:\n\nT\n\nWhat was going on?\n"
    )
    assert make_prompt(shots, "T") == expected
    assert make_prompt([], "T") == flan_prompt("T")


def test_bad_inputs_raise_clear_errors(tokenizer):
    with pytest.raises(LabkitError, match="Did you mean 'few_shot'"):
        build_prompt("fewshot", "x", tokenizer=tokenizer)
    with pytest.raises(LabkitError, match="needs 3 shot"):
        build_prompt("few_shot", "x", tokenizer=tokenizer, shots=[("a", "b")], n_shots=3)
    with pytest.raises(LabkitError, match="'summary' is missing|'summary'"):
        make_prompt([{"dialogue": "a"}], "x")
    with pytest.raises(LabkitError, match="200 rows"):
        rows_at(list(range(200)), [40, 200], what="example_indices")


# ---- token budget ----------------------------------------------------------

def test_prompt_that_fits_is_unchanged(tokenizer):
    shots = [("#Person1#: Hi.\n#Person2#: Hello.", "They greet.")]
    built = build_prompt("one_shot", "#Person1#: Bye.\n#Person2#: Bye.", tokenizer=tokenizer, shots=shots)
    assert built.prompt == make_prompt(shots, "#Person1#: Bye.\n#Person2#: Bye.")
    assert built.tokens == built.tokens_before == count_tokens(tokenizer, built.prompt) <= 512
    assert (built.shots_requested, built.shots_kept, built.target_trimmed) == (1, 1, False)


@pytest.fixture(scope="module")
def real_rows(dialogsum_dev_path, tokenizer):
    """Real DialogSum validation rows with their dialogue's token count."""
    rows = read_jsonl(dialogsum_dev_path)
    return [dict(r, n_tokens=count_tokens(tokenizer, r["dialogue"])) for r in rows]


def _pick(rows, lo, hi, k):
    """k real dialogues whose length is lo..hi tokens (long, but each fits the encoder alone)."""
    found = [r for r in rows if lo <= r["n_tokens"] <= hi][:k]
    assert len(found) == k, f"need {k} real dialogues of {lo}-{hi} tokens"
    return found


def test_few_shot_of_long_real_dialogues_keeps_target_intact(tokenizer, real_rows, caplog):
    shots = _pick(real_rows, 250, 400, 3)
    target = _pick(real_rows, 300, 420, 4)[-1]
    unbudgeted = make_prompt(shots, target["dialogue"])
    before = count_tokens(tokenizer, unbudgeted)
    assert before > 512, "the test needs a prompt that would overflow the encoder"
    with caplog.at_level(logging.INFO, logger="labkit.prompts"):
        built = build_prompt("few_shot", target["dialogue"], tokenizer=tokenizer, shots=shots, max_source_tokens=512)
    assert built.tokens == count_tokens(tokenizer, built.prompt) <= 512
    assert built.tokens_before == before
    assert built.shots_kept < built.shots_requested == 3
    # The target dialogue and the question arrive whole, at the end.
    assert built.prompt.endswith(flan_prompt(target["dialogue"]))
    assert not built.target_trimmed
    # Farthest shots went first: the kept ones are the last ones, in order.
    kept = shots[len(shots) - built.shots_kept:]
    assert built.prompt == make_prompt(kept, target["dialogue"])
    assert str(before) in built.note and "512" in built.note and "intact" in built.note
    assert any(str(before) in r.getMessage() for r in caplog.records)


def test_trim_mode_shortens_farthest_shot_instead_of_dropping(tokenizer, real_rows):
    shots, target = _pick(real_rows, 250, 400, 3), _pick(real_rows, 150, 250, 1)[0]
    dropped = build_prompt("few_shot", target["dialogue"], tokenizer=tokenizer, shots=shots)
    trimmed = build_prompt("few_shot", target["dialogue"], tokenizer=tokenizer, shots=shots, on_overflow="trim")
    assert trimmed.tokens <= 512 and trimmed.prompt.endswith(flan_prompt(target["dialogue"]))
    assert trimmed.shots_kept >= dropped.shots_kept
    assert trimmed.shots_trimmed == 1
    # The trimmed shot keeps its summary and the end of its dialogue.
    far = shots[len(shots) - trimmed.shots_kept]
    assert far["summary"] in trimmed.prompt
    assert far["dialogue"].split("\n")[-1] in trimmed.prompt
    assert far["dialogue"] not in trimmed.prompt


def test_target_alone_too_long_is_cut_from_its_start_or_refused(tokenizer, real_rows):
    longest = max(real_rows, key=lambda r: r["n_tokens"])
    target = longest["dialogue"]
    limit = 512
    assert count_tokens(tokenizer, flan_prompt(target)) > limit
    built = build_prompt("few_shot", target, tokenizer=tokenizer, shots=_pick(real_rows, 100, 200, 2),
                         max_source_tokens=limit)
    assert longest["n_tokens"] > limit, "the longest real dialogue alone should overflow the encoder"
    assert built.target_trimmed and built.shots_kept == 0
    assert built.tokens == count_tokens(tokenizer, built.prompt) <= limit
    assert built.prompt.endswith("\n\nWhat was going on?\n")
    kept_text = built.prompt[len("\nDialogue:\n\n"): -len("\n\nWhat was going on?\n")]
    assert target.endswith(kept_text) and len(kept_text) < len(target)
    assert "cut from its start" in built.note
    with pytest.raises(LabkitError, match="alone needs"):
        build_prompt("zero_shot", target, tokenizer=tokenizer, max_source_tokens=limit, on_long_target="error")


def test_build_prompts_summarises_budget_once(tokenizer, real_rows, caplog):
    targets = [r["dialogue"] for r in _pick(real_rows, 150, 450, 4)]
    with caplog.at_level(logging.INFO, logger="labkit.prompts"):
        built = build_prompts("few_shot", targets, tokenizer=tokenizer, shots=_pick(real_rows, 250, 400, 3))
    assert all(isinstance(b, BudgetedPrompt) and b.tokens <= 512 for b in built)
    assert all(b.prompt.endswith(flan_prompt(t)) for b, t in zip(built, targets))
    assert len([r for r in caplog.records if "prompt budget" in r.getMessage()]) == 1
    assert set(built[0].as_dict()) >= {"tokens", "limit", "shots_requested", "shots_kept", "note"}
