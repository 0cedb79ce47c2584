"""Foundation: offline fixtures (deterministic, cached) and model loading."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from labkit import fixtures
from labkit.config import LabkitError, fixture_dir, get_profile
from labkit.models import count_parameters, load_seq2seq, load_tokenizer, load_toxicity_classifier


def test_manifest_is_current_and_hashes_match_files(fixtures_manifest):
    assert fixtures.is_current(fixtures_manifest)
    assert fixtures_manifest["recipe_version"] == fixtures.RECIPE_VERSION
    assert fixtures.weight_hashes() == fixtures_manifest["weights"]
    assert {"policy/model.safetensors", "classifier/model.safetensors"} <= set(fixtures_manifest["weights"])


def test_cached_build_is_fast_and_skips_torch(fixtures_manifest):
    code = ("import sys, time; t=time.perf_counter(); import labkit; labkit.fixtures.build(); "
            "print(round(time.perf_counter()-t, 2), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[0]) < 5.0
    assert out[1] == "False"


def test_tokenizer_has_t5_special_tokens(tokenizer):
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    ids = tokenizer("#Person1#: Hello there.")["input_ids"]
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "#Person1#: Hello there."


def test_policy_loads_through_from_pretrained_and_is_tiny(fixtures_manifest):
    model = load_seq2seq("offline", device="cpu")
    n = count_parameters(model)
    assert 300_000 <= n.total <= 3_000_000
    assert not model.training
    assert model.config.decoder_start_token_id == 0


def test_policy_pretraining_makes_it_answer_the_prompt(fixtures_manifest, tokenizer):
    # Weak but not random: the instruction gets a DialogSum-style (vague) answer.
    import torch

    model = load_seq2seq("offline", device="cpu")
    prompt = "Summarize the following conversation.\n\n#Person1#: I want to buy a red jacket.\n#Person2#: It is 40 dollars.\n\nSummary: "
    with torch.inference_mode():
        out = model.generate(**tokenizer(prompt, return_tensors="pt"), max_new_tokens=20, do_sample=False)
    text = tokenizer.decode(out[0], skip_special_tokens=True)
    assert "#Person1#" in text


def test_classifier_labels_and_accuracy(fixtures_manifest):
    import torch

    model, tok = load_toxicity_classifier("offline", device="cpu")
    assert model.config.id2label == {0: "nothate", 1: "hate"}
    assert fixtures_manifest["classifier"]["test_accuracy"] >= 0.9
    with torch.inference_mode():
        logits = model(**tok(["You are a stupid idiot.", "Thank you, have a nice day."], return_tensors="pt", padding=True)).logits
    hate = model.config.label2id["hate"]
    assert logits[0, hate] > logits[1, hate]


def test_rebuild_when_recipe_changes(fixtures_manifest, monkeypatch):
    assert fixtures.is_current()
    monkeypatch.setattr(fixtures, "RECIPE_VERSION", "999")
    assert not fixtures.is_current()


def test_missing_fixture_dir_is_not_current(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    assert fixtures.read_manifest() is None and not fixtures.is_current()
    assert fixture_dir("policy") == tmp_path / "fixtures" / "policy"


def test_course_profile_without_hub_gives_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache: nothing to load offline
    with pytest.raises(LabkitError, match="needs a network"):
        load_tokenizer(get_profile("course"))


@pytest.mark.slow
def test_build_is_deterministic_across_homes(tmp_path, monkeypatch):
    hashes = []
    for name in ("a", "b"):
        monkeypatch.setenv("LABKIT_HOME", str(tmp_path / name))
        t0 = time.perf_counter()
        manifest = fixtures.build()
        assert time.perf_counter() - t0 < 180
        hashes.append(manifest["weights"])
    assert hashes[0] == hashes[1]


def test_canonical_vocab_rounds_scores_and_sorts_the_fallback_run():
    from labkit.fixtures import _canonical_vocab

    specials = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    # Two builds as the trainer gives them: every score shifted a little, the
    # trailing fallback characters in another order.
    build_a = specials + [("b", -2.0000000000000004), ("a", -2.0000000000000004), ("c", -3.0000000000000004),
                          ("K", -9.0000000000000004), ("#", -9.0001000000000004), ("G", -9.0002000000000004),
                          ("v", -9.0002000000000004)]
    build_b = specials + [("b", -1.9999999999999998), ("a", -1.9999999999999998), ("c", -2.9999999999999998),
                          ("v", -8.9999999999999998), ("G", -9.0000999999999998), ("K", -9.0001999999999998),
                          ("#", -9.0001999999999998)]
    expected = specials + [("b", -2.0), ("a", -2.0), ("c", -3.0),
                           ("#", -9.0), ("G", -9.0001), ("K", -9.0002), ("v", -9.0002)]
    assert _canonical_vocab(build_a, n_special=3) == expected
    assert _canonical_vocab(build_b, n_special=3) == expected


def test_tokenizer_training_is_byte_for_byte_repeatable(tmp_path):
    """Each training in its own process, as in fresh homes: the trainer's raw output
    differs from run to run, the saved tokenizer must not."""
    code = ("import sys; from pathlib import Path; from labkit import fixtures; "
            "fixtures._train_tokenizer(fixtures._load_corpus(), Path(sys.argv[1]))")
    files = []
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], check=True, capture_output=True)
        files.append((tmp_path / name / "tokenizer.json").read_bytes())
    assert files[0] == files[1]
