"""labkit.generate: batched == one-at-a-time greedy, order, seeds, presets, truncation."""
from __future__ import annotations

import logging

import pytest

from labkit.config import LabkitError
from labkit.generate import PRESETS, generate, generate_ids, make_config, sampling_config
from labkit.prompts import flan_prompt, make_prompt, zero_shot_prompt


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model(fixtures_manifest):
    from labkit.models import load_seq2seq

    return load_seq2seq("offline", device="cpu")


@pytest.fixture(scope="module")
def prompts():
    from labkit.profiles import get_profile
    from labkit.data import load_dialogsum

    test = load_dialogsum(get_profile("offline"))["test"]
    rows = [test[i] for i in range(9)]
    # Mixed templates and lengths so batches need padding.
    out = []
    for k, r in enumerate(rows):
        if k % 3 == 0:
            out.append(zero_shot_prompt(r["dialogue"]))
        elif k % 3 == 1:
            out.append(flan_prompt(r["dialogue"]))
        else:
            out.append(make_prompt([rows[(k + 1) % len(rows)]], r["dialogue"]))
    return out


def test_greedy_batched_equals_one_at_a_time_token_for_token(model, tokenizer, prompts):
    lengths = {len(tokenizer(p)["input_ids"]) for p in prompts}
    assert len(lengths) > 3, "prompts of different lengths are needed to exercise padding"
    config = {"max_new_tokens": 30}
    batched = generate_ids(model, tokenizer, prompts, config, batch_size=4, progress=False)
    single = [generate_ids(model, tokenizer, [p], config, batch_size=1, progress=False)[0] for p in prompts]
    assert batched == single
    assert all(len(t) > 0 for t in batched)


@pytest.mark.parametrize("chunk_tokens", [1, 10_000])
def test_chunked_encoder_equals_the_course_loop(model, tokenizer, prompts, monkeypatch, chunk_tokens):
    """The separately-run encoder (one row per chunk, or the whole batch in one)
    gives what plain ``model.generate`` on each prompt gives, token for token."""
    import torch

    import labkit.generate as lg

    monkeypatch.setattr(lg, "ENCODER_CHUNK_TOKENS", chunk_tokens)
    monkeypatch.setattr(lg, "ENCODER_CHUNK_MAX_PADDING", 1.0)
    config = make_config({"max_new_tokens": 30})
    ours = generate_ids(model, tokenizer, prompts, config, batch_size=len(prompts), progress=False)
    with torch.inference_mode():
        course = [model.generate(**tokenizer(p, return_tensors="pt"), generation_config=config)[0].tolist() for p in prompts]
    assert ours == [lg._strip(row, tokenizer.eos_token_id) for row in course]


def test_encoder_chunks_respect_budget_and_padding():
    from labkit.generate import _encoder_chunks

    lengths = [500, 480, 300, 290, 280, 100, 99, 98, 97, 10]
    chunks = _encoder_chunks(lengths, token_budget=1024, max_padding=0.10)
    assert [list(c) for c in chunks] == [[0, 1], [2, 3, 4], [5, 6, 7, 8], [9]]
    assert [i for c in chunks for i in c] == list(range(len(lengths)))
    for c in chunks:
        padded = len(c) * lengths[c.start]
        assert len(c) == 1 or (padded <= 1024 and sum(lengths[i] for i in c) >= 0.9 * padded)
    # A row longer than the budget still gets a chunk of its own.
    assert [list(c) for c in _encoder_chunks([2000, 1999], 1024, 0.1)] == [[0], [1]]
    assert _encoder_chunks([], 1024, 0.1) == []


def test_outputs_come_back_in_input_order(model, tokenizer, prompts):
    forward = generate(model, tokenizer, prompts, "greedy_short", batch_size=4, progress=False)
    backward = generate(model, tokenizer, prompts[::-1], "greedy_short", batch_size=4, progress=False)
    assert backward == forward[::-1]
    assert all(isinstance(t, str) for t in forward) and len(forward) == len(prompts)
    assert generate(model, tokenizer, [], progress=False) == []


def test_sampling_is_reproducible_with_a_seed(model, tokenizer, prompts):
    config = sampling_config(1.0, max_new_tokens=20)
    a = generate(model, tokenizer, prompts[:6], config, seed=7, progress=False)
    b = generate(model, tokenizer, prompts[:6], config, seed=7, progress=False)
    c = generate(model, tokenizer, prompts[:6], config, seed=8, progress=False)
    assert a == b
    assert a != c


def test_max_new_tokens_limits_length(model, tokenizer, prompts):
    short = generate_ids(model, tokenizer, prompts, "greedy_short", progress=False)
    assert all(len(t) <= 10 for t in short)
    forced = generate_ids(model, tokenizer, prompts[:3], {"min_new_tokens": 12, "max_new_tokens": 12}, progress=False)
    assert all(len(t) == 12 for t in forced)


def test_presets_and_config_errors():
    assert make_config("greedy").max_new_tokens == 50 and not make_config("greedy").do_sample
    assert make_config("greedy", max_new_tokens=10).max_new_tokens == 10
    assert {PRESETS[k]["temperature"] for k in PRESETS if PRESETS[k].get("do_sample")} == {0.1, 0.5, 1.0}
    assert sampling_config(0).do_sample is False
    assert make_config(make_config("sample_t0.5")).temperature == 0.5
    with pytest.raises(LabkitError, match="Did you mean 'greedy'"):
        make_config("gready")
    with pytest.raises(LabkitError, match="temperature > 0"):
        make_config({"do_sample": True, "temperature": 0})


def test_long_prompt_is_truncated_with_a_warning(model, tokenizer, prompts, caplog):
    long_prompt = " ".join(prompts)
    with caplog.at_level(logging.WARNING, logger="labkit.generate"):
        out = generate(model, tokenizer, [long_prompt], max_source_tokens=64, progress=False)
    assert len(out) == 1
    assert any("truncated" in r.getMessage() and "64" in r.getMessage() for r in caplog.records)


def test_bad_arguments(model, tokenizer):
    with pytest.raises(LabkitError, match="one string"):
        generate(model, tokenizer, "a prompt", progress=False)
    with pytest.raises(LabkitError, match="batch_size"):
        generate(model, tokenizer, ["a"], batch_size=0, progress=False)
    with pytest.raises(LabkitError, match="quantize"):
        generate(model, tokenizer, ["a"], quantize="int4", progress=False)


def test_int8_mode_runs_and_leaves_the_model_alone(model, tokenizer, prompts):
    import torch

    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = generate(model, tokenizer, prompts[:4], "greedy", quantize="int8", progress=False)
    assert len(out) == 4 and all(isinstance(t, str) for t in out)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert type(model.lm_head) is torch.nn.Linear
