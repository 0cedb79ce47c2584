"""The course profile without the Hub: LABKIT_MODELS folders, the course-shaped stand-in, one dataset file per lab.

The stand-in is built here with small configurations (seconds); the same code at the published shapes is what
``labkit fixtures --course-shaped`` writes and what the slow ``tests/test_course_shaped.py`` runs the labs on.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit import models, standin
from labkit.config import COURSE_MODEL, COURSE_SUMMARIZER_ADAPTER, COURSE_TOXICITY_MODEL, LabkitError
from labkit.profiles import get_profile


def _small_configs():
    from transformers import T5Config

    t5 = T5Config(vocab_size=32128, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=4,
                  feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0,
                  pad_token_id=0, eos_token_id=1)
    roberta = standin.roberta_classifier_config()
    roberta.hidden_size, roberta.num_hidden_layers, roberta.num_attention_heads, roberta.intermediate_size = 32, 1, 2, 64
    return t5, roberta


@pytest.fixture(scope="module")
def small_standin(tmp_path_factory) -> Path:
    """A stand-in layout with tiny models (the published tokenizers and labels, small widths)."""
    root = tmp_path_factory.mktemp("models")
    t5, roberta = _small_configs()
    standin.build(root, t5_config=t5, roberta_config=roberta)
    return root


@pytest.fixture
def models_env(small_standin, monkeypatch) -> Path:
    monkeypatch.setenv("LABKIT_MODELS", str(small_standin))
    return small_standin


# ---------------------------------------------------------------- the stand-in's layout and contents

def test_standin_layout_labels_and_markers(small_standin):
    for rel in (COURSE_MODEL, COURSE_TOXICITY_MODEL):
        assert (small_standin / rel / "config.json").is_file() and (small_standin / rel / "model.safetensors").is_file()
        assert models.marker(small_standin / rel)["of"] == rel
    assert (small_standin / COURSE_SUMMARIZER_ADAPTER / "adapter_config.json").is_file()
    reward = json.loads((small_standin / COURSE_TOXICITY_MODEL / "config.json").read_text())
    assert reward["id2label"] == {"0": "nothate", "1": "hate"} and reward["vocab_size"] == 50265
    assert reward["max_position_embeddings"] == 514 and reward["pad_token_id"] == 1
    adapter = json.loads((small_standin / COURSE_SUMMARIZER_ADAPTER / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], sorted(adapter["target_modules"]), adapter["lora_dropout"]) == (
        32, 32, ["q", "v"], 0.05)
    manifest = standin.read_manifest(small_standin)
    assert manifest["stand_in"] and "shapes and memory only" in manifest["note"]
    assert not models.is_stand_in(small_standin.parent) and models.marker(None) is None


def test_standin_lm_head_stays_separate_after_reloading(small_standin):
    import torch
    from transformers import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(small_standin / COURSE_MODEL)
    assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
    assert not torch.equal(model.lm_head.weight, model.shared.weight)  # equal values would be tied again


def test_flan_t5_base_shape_keeps_its_own_lm_head():
    import torch

    from labkit.models import build_flan_t5_base_shaped, count_parameters

    with torch.device("meta"):
        model = build_flan_t5_base_shaped()
    assert count_parameters(model).total == 247_577_856  # a tied head would count 222,903,552


def test_standin_tokenizer_is_t5_shaped_and_every_id_decodes(small_standin):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(small_standin / COURSE_MODEL)
    assert len(tok) == 32_100 and tok.convert_tokens_to_ids(["<pad>", "</s>", "<unk>"]) == [0, 1, 2]
    assert tok.convert_tokens_to_ids("<extra_id_0>") >= 32_000
    assert all(tok.decode([i]).strip() for i in range(4, 32_000, 997))  # fillers too (3 is "▁", as in T5)
    reward_tok = AutoTokenizer.from_pretrained(small_standin / COURSE_TOXICITY_MODEL)
    assert reward_tok.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>"]) == [0, 1, 2, 3]
    assert reward_tok("You idiot.")["input_ids"][0] == 0


def test_filler_pieces_never_change_how_text_is_split():
    texts = list(standin._corpus_texts())[:3000]
    learned = standin.train_t5_tokenizer(texts, pieces=100_000, extra_ids=0)  # no fillers: all the trainer found
    filled = standin.train_t5_tokenizer(texts, pieces=len(learned) + 5_000, extra_ids=0)
    assert len(filled) == len(learned) + 5_000
    sample = texts[:200:7] + ["#Person1#: Hello, how are you doing today? I have been having trouble breathing."]
    assert [learned.tokenize(t) for t in sample] == [filled.tokenize(t) for t in sample]


def test_build_never_overwrites_a_real_model(tmp_path):
    real = tmp_path / COURSE_MODEL
    real.mkdir(parents=True)
    (real / "config.json").write_text("{}")
    with pytest.raises(LabkitError, match="not a labkit stand-in") as err:
        standin.build(tmp_path)
    assert str(real) in str(err.value)
    assert (real / "config.json").read_text() == "{}"


def test_cli_course_shaped_reuses_a_built_layout(small_standin, monkeypatch, capsys):
    from labkit.cli import main

    def no_rebuild(*a, **k):
        raise AssertionError("rebuilt a current stand-in")
    monkeypatch.setattr(standin, "_build_parts", no_rebuild)
    monkeypatch.setattr(standin, "read_manifest", lambda d: json.loads((small_standin / standin.MANIFEST).read_text()))
    assert main(["fixtures", "--course-shaped", str(small_standin)]) == 0
    out = capsys.readouterr().out
    assert "shapes and memory only" in out and "LABKIT_MODELS=" in out and "summarizer_adapter" in out


# ---------------------------------------------------------------- the course profile from LABKIT_MODELS

def test_course_profile_reads_models_from_labkit_models(models_env):
    course = get_profile("course")
    assert course.model == str(models_env / COURSE_MODEL) == course.tokenizer
    assert course.toxicity_model == str(models_env / COURSE_TOXICITY_MODEL)
    assert course.summarizer_adapter == str(models_env / COURSE_SUMMARIZER_ADAPTER)
    assert course.dataset == "knkarthick/dialogsum"  # DialogSum comes from the lab's dataset parameter
    assert get_profile("offline").models_dir is None


def test_course_profile_without_labkit_models_keeps_hub_ids(monkeypatch):
    monkeypatch.delenv("LABKIT_MODELS", raising=False)
    course = get_profile("course")
    assert (course.model, course.toxicity_model, course.models_dir, course.summarizer_adapter) == (
        COURSE_MODEL, COURSE_TOXICITY_MODEL, None, None)


def test_course_models_load_from_the_folders(models_env):
    from labkit.models import load_seq2seq, load_tokenizer, load_toxicity_classifier
    from labkit.toxicity import label_index

    course = get_profile("course")
    model = load_seq2seq(course, device="cpu")
    assert model.config.d_model == 32 and len(load_tokenizer(course)) == 32_100
    classifier, _ = load_toxicity_classifier(course, device="cpu")
    assert label_index(classifier, "nothate") == 0 and label_index(classifier, "hate") == 1


def test_missing_model_folder_names_the_path_and_what_belongs_there(tmp_path, monkeypatch):
    from labkit.models import load_seq2seq, load_toxicity_classifier

    monkeypatch.setenv("LABKIT_MODELS", str(tmp_path))
    with pytest.raises(LabkitError) as err:
        load_seq2seq(get_profile("course"), device="cpu")
    msg = str(err.value)
    assert str(tmp_path / COURSE_MODEL) in msg and "does not exist" in msg
    assert "config.json, model.safetensors" in msg and "save_pretrained" in msg
    assert f"labkit fixtures --course-shaped {tmp_path}" in msg and "unset LABKIT_MODELS" in msg
    (tmp_path / COURSE_TOXICITY_MODEL).mkdir(parents=True)
    with pytest.raises(LabkitError, match="is empty or has no config.json") as err:
        load_toxicity_classifier(get_profile("course"), device="cpu")
    assert "vocab.json, merges.txt" in str(err.value)


def test_model_sources_say_where_each_model_comes_from(models_env, monkeypatch):
    from labkit.models import model_sources, uses_stand_in

    rows = {s.part: s for s in model_sources("course")}
    assert set(rows) == {"summarizer", "tokenizer", "reward model", "lab 3 summarizer adapter"}
    assert all(s.stand_in and "stand-in" in s.how for s in rows.values())
    assert "LABKIT_MODELS folder" in rows["summarizer"].how and "random weights" in rows["reward model"].how
    assert uses_stand_in("course") and not uses_stand_in("offline")
    monkeypatch.delenv("LABKIT_MODELS")
    hub = {s.part: s for s in model_sources("course")}
    assert hub["summarizer"].where == COURSE_MODEL and "Hugging Face Hub" in hub["summarizer"].how
    assert "trained by lab 3 on first use" in hub["lab 3 summarizer adapter"].how
    assert "offline fixture" in model_sources("offline")[0].how


def test_start_lab_runs_the_stand_in_on_a_cpu_and_says_so(models_env, tmp_path, capsys):
    from labkit.session import check_setup, start_lab

    ctx = start_lab("lab1", profile="course", device="cpu", output_dir=tmp_path, namespace={})
    assert ctx.device.type == "cpu" and "STAND-IN" in capsys.readouterr().out
    info = json.loads((tmp_path / "results.json").read_text())["run_info"]
    assert info["models"] == "course-shaped stand-in (random weights)"
    table = check_setup(ctx)
    assert "stand-in" in table.loc["summarizer", "note"] and "stand-in" in table.loc["reward model", "note"]
    assert table.loc["summarizer", "value"].endswith(COURSE_MODEL)


def test_lab3_starts_from_the_adapter_in_labkit_models(models_env, monkeypatch):
    from labkit import cached_summarizer

    def no_training(*a, **k):
        raise AssertionError("trained a summarizer although the adapter was given")
    monkeypatch.setattr(cached_summarizer, "train", no_training)
    summarizer = cached_summarizer.lora_summarizer(get_profile("course"), device="cpu", progress=False)
    assert hasattr(summarizer, "merge_and_unload")
    assert summarizer.peft_config["default"].r == 32
    assert any(p.requires_grad for p in summarizer.parameters())  # trainable, as lab 3's policy needs


def test_an_adapter_folder_without_an_adapter_is_refused(tmp_path, monkeypatch, small_standin):
    import shutil

    from labkit import cached_summarizer

    models = tmp_path / "models"
    shutil.copytree(small_standin, models)
    shutil.rmtree(models / COURSE_SUMMARIZER_ADAPTER)
    (models / COURSE_SUMMARIZER_ADAPTER).mkdir()
    monkeypatch.setenv("LABKIT_MODELS", str(models))
    with pytest.raises(LabkitError, match="has no adapter_config.json"):
        cached_summarizer.lora_summarizer(get_profile("course"), device="cpu")


# ---------------------------------------------------------------- one dataset file stands in for a lab's splits

def _rows(n: int) -> list[dict]:
    return [{"id": f"r{i}", "dialogue": f"#Person1#: line {i}", "summary": f"summary {i}", "topic": ""} for i in range(n)]


def test_split_one_file_cuts_disjoint_parts_in_file_order():
    from labkit.data import split_one_file

    rows = _rows(501)
    parts = split_one_file(rows, ("test", "train"))
    assert list(parts) == ["train", "test"] and [len(v) for v in parts.values()] == [250, 251]
    assert parts["train"] + parts["test"] == rows
    assert split_one_file(rows, ("test",)) == {"test": rows}
    with pytest.raises(LabkitError, match="cannot be cut into the 2 splits"):
        split_one_file(rows[:1], ("train", "test"))


def test_one_file_is_every_split_a_lab_reads(tmp_path):
    from labkit import labs
    from labkit.data import check_dataset, load_dialogsum

    path = tmp_path / "dialogsum.dev.jsonl"
    path.write_text("".join(json.dumps({"fname": r["id"], "dialogue": r["dialogue"], "summary": r["summary"]}) + "\n"
                            for r in _rows(10)))
    for lab in ("lab1", "lab2", "lab3"):  # each lab's own splits; a validation file has none of them
        assert check_dataset(path, splits=labs.get(lab).splits) == str(path)
    assert list(load_dialogsum(path)) == ["validation"]  # read alone: the split its name says
    lab2 = labs.with_settings("lab2", get_profile("offline"), {"dataset": str(path)})
    data = load_dialogsum(lab2)
    assert {k: len(v) for k, v in data.items()} == {"train": 5, "test": 5}
    assert not set(data["train"]["id"]) & set(data["test"]["id"])
    lab1 = labs.with_settings("lab1", get_profile("offline"), {"dataset": str(path)})
    assert {k: len(v) for k, v in load_dialogsum(lab1).items()} == {"test": 10}
