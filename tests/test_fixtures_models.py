"""Foundation: offline fixtures (deterministic, cached) and model loading."""
from __future__ import annotations

import subprocess
import sys

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


def test_policy_summarizes_in_flan_template_and_stays_vague_when_merely_told_to(fixtures_manifest, tokenizer):
    # The stand-in's pre-training (fixtures.MIXTURE): FLAN's template gets a real summary that copies
    # from the dialogue; the generic instruction gets a vague one-liner. Validation dialogues: never trained on.
    import torch

    from labkit import metrics, prompts
    from labkit.data import load_dialogsum

    model = load_seq2seq("offline", device="cpu")
    rows = list(load_dialogsum("offline")["validation"].select(range(8)))

    def answer(prompt: str) -> str:
        with torch.inference_mode():
            out = model.generate(**tokenizer(prompt, return_tensors="pt"), max_new_tokens=50, do_sample=False)
        return tokenizer.decode(out[0], skip_special_tokens=True)

    flan = [answer(prompts.flan_prompt(r["dialogue"])) for r in rows]
    vague = [answer(prompts.summarize_prompt(r["dialogue"])) for r in rows]
    assert all(v.startswith("#Person1# and #Person2# are talking about") for v in vague), vague
    assert metrics.rouge(flan, [r["summary"] for r in rows]).scores["rouge1"] > metrics.rouge(vague, [r["summary"] for r in rows]).scores["rouge1"] + 0.2
    stop = set(metrics.words(" ".join(vague)))
    copied = [set(metrics.words(f)) & set(metrics.words(r["dialogue"])) - stop for f, r in zip(flan, rows)]
    assert sum(bool(c) for c in copied) >= 6, list(zip(flan, copied))


def test_vague_answers_use_only_words_of_the_data():
    from labkit.data import load_dialogsum
    from labkit.metrics import dataset_vocabulary, words

    data = load_dialogsum("offline")
    vocab = dataset_vocabulary(data)
    topics = {t for split in data.values() for t in split["topic"]}
    for topic in topics:
        assert set(words(fixtures.vague_answer({"topic": topic}))) <= vocab, topic


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
def test_build_is_deterministic_across_homes(tmp_path, monkeypatch, fixtures_manifest):
    """A fresh home builds the same weights, byte for byte, as the home this suite uses. That home is the second
    build when it came from this torch (the usual case; one build saved); otherwise a second fresh home is."""
    import torch

    same_torch = fixtures_manifest.get("torch") == torch.__version__
    homes = ["fresh"] if same_torch else ["fresh", "fresh-again"]
    hashes = [] if not same_torch else [fixtures_manifest["weights"]]
    for name in homes:
        monkeypatch.setenv("LABKIT_HOME", str(tmp_path / name))
        manifest = fixtures.build()  # its time is a benchmark (manifest build_seconds, BENCHMARKS.md), not a bar here
        assert manifest["recipe_version"] == fixtures_manifest["recipe_version"]
        hashes.append(manifest["weights"])
    assert hashes[0] == hashes[1]


def test_tokenizer_vocab_keeps_whole_words_and_a_character_fallback():
    from transformers import T5Tokenizer

    from labkit.fixtures import tokenizer_vocab

    texts = ["#Person1#: Did you watch TV last night?", "#Person1#: I watched TV last night, 2200 times."]
    vocab = tokenizer_vocab(texts)
    assert vocab[:3] == [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    assert vocab == tokenizer_vocab(list(reversed(texts)))  # counted, so order-free and repeatable
    tok = T5Tokenizer(vocab=vocab, extra_ids=0)
    # Words seen twice are one piece each; the rest fall back to characters and still round-trip.
    assert tok.tokenize("#Person1#: last night TV") == ["\u2581#Person1#", ":", "\u2581last", "\u2581night", "\u2581TV"]
    assert len(tok.tokenize("Did")) > 1
    assert tok.decode(tok("Zebra 99?")["input_ids"], skip_special_tokens=True) == "Zebra 99?"


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
