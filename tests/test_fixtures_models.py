"""Foundation: the shipped offline models (installed by hash, the same on every machine) and model loading."""
from __future__ import annotations

import subprocess
import sys

import pytest

from labkit import fixtures
from labkit.config import LabkitError, fixture_dir
from labkit.profiles import get_profile
from labkit.models import count_parameters, load_seq2seq, load_tokenizer, load_toxicity_classifier


def test_manifest_is_current_and_hashes_match_files(fixtures_manifest):
    from labkit import pretrain

    assert fixtures.is_current(fixtures_manifest)
    assert fixtures_manifest["recipe_version"] == pretrain.RECIPE_VERSION
    assert fixtures.weight_hashes() == fixtures_manifest["weights"]
    assert {"policy/model.safetensors", "classifier/model.safetensors"} <= set(fixtures_manifest["weights"])
    assert fixtures_manifest["shipped_files"] == fixtures.read_shipped_manifest()["files"]


def test_installed_weights_are_the_shipped_fp16_weights_widened_exactly(fixtures_manifest):
    from safetensors.torch import load_file

    for part in ("policy", "classifier"):
        shipped = load_file(str(fixtures.shipped_dir() / part / "model.safetensors"))
        installed = load_file(str(fixture_dir(part) / "model.safetensors"))
        assert shipped.keys() == installed.keys()
        for name, tensor in shipped.items():
            assert installed[name].dtype.is_floating_point and str(installed[name].dtype) == "torch.float32"
            assert str(tensor.dtype) == "torch.float16"
            assert (installed[name].half() == tensor).all() and (installed[name] == tensor.float()).all(), name


def test_a_fresh_home_installs_the_same_bytes_in_seconds(tmp_path, monkeypatch, fixtures_manifest):
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    manifest = fixtures.build()
    assert manifest["weights"] == fixtures_manifest["weights"]
    assert manifest["install_seconds"] < 30
    assert fixtures.is_current()


def test_a_changed_shipped_file_is_refused_with_the_way_back(tmp_path, monkeypatch):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(fixtures.shipped_dir(), data / "original-model")
    monkeypatch.setattr(fixtures, "shipped_dir", lambda: data / "original-model")
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    weights = data / "original-model" / "policy" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(LabkitError, match="policy/model.safetensors.*git checkout -- data/original-model"):
        fixtures.build()
    assert fixtures.read_manifest() is None  # nothing half-installed


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
    # The stand-in's pre-training (pretrain.MIXTURE): FLAN's template gets a real summary that copies
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
    from labkit import pretrain_mixture
    from labkit.data import load_dialogsum
    from labkit.metrics import dataset_vocabulary, words

    data = load_dialogsum("offline")
    vocab = dataset_vocabulary(data)
    topics = {t for split in data.values() for t in split["topic"]}
    for topic in topics:
        assert set(words(pretrain_mixture.vague_answer({"topic": topic}))) <= vocab, topic


def test_classifier_labels_and_accuracy(fixtures_manifest):
    import torch

    model, tok = load_toxicity_classifier("offline", device="cpu")
    assert model.config.id2label == {0: "nothate", 1: "hate"}
    assert fixtures_manifest["classifier"]["test_accuracy"] >= 0.9
    with torch.inference_mode():
        logits = model(**tok(["You are a stupid idiot.", "Thank you, have a nice day."], return_tensors="pt", padding=True)).logits
    hate = model.config.label2id["hate"]
    assert logits[0, hate] > logits[1, hate]


def test_install_again_when_the_shipped_model_changes(fixtures_manifest, monkeypatch):
    assert fixtures.is_current()
    changed = {**fixtures.read_shipped_manifest(), "files": {"policy/model.safetensors": "0" * 64}}
    monkeypatch.setattr(fixtures, "_read_json", lambda path: changed if path.parent == fixtures.shipped_dir()
                        else fixtures_manifest)
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
def test_a_short_rebuild_is_deterministic_on_one_machine(tmp_path):
    """``labkit fixtures --rebuild`` with a shortened schedule, twice, in fresh processes: the same bytes."""
    code = ("import sys; from pathlib import Path; from labkit import fixtures; "
            "print(fixtures.rebuild(Path(sys.argv[1]), steps=20)['files'])")
    outs = []
    for name in ("a", "b"):
        run = subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        outs.append(run.stdout.strip().splitlines()[-1])
    assert outs[0] == outs[1]
    assert "policy/model.safetensors" in outs[0]


def test_tokenizer_vocab_keeps_whole_words_and_a_character_fallback():
    from transformers import T5Tokenizer

    from labkit.pretrain_tokenizer import tokenizer_vocab

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
    code = ("import sys; from pathlib import Path; from labkit import pretrain_mixture, pretrain_tokenizer; "
            "pretrain_tokenizer.train_tokenizer(pretrain_mixture.load_corpus(), Path(sys.argv[1]))")
    files = []
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], check=True, capture_output=True)
        files.append((tmp_path / name / "tokenizer.json").read_bytes())
    assert files[0] == files[1]
