"""labkit.finetune and labkit.training.loop: exact parameter counts, the base model left untouched, length
bucketing, memory measurement, checkpoints and bit-exact resume; lab 3's cached summarizer."""
from __future__ import annotations

import random
import shutil

import pytest
import torch

from labkit.config import LabkitError
from labkit.lab_settings.lora import LoraSettings
from labkit.finetune import make_full_model, make_lora_model
from labkit.training.batching import bucketed_batches, collate
from labkit.training.loop import TrainConfig, list_checkpoints, train
from labkit.training.memory import TensorMemoryTracker, estimate_memory
from labkit.training.params import count_parameters

LORA = LoraSettings(r=4, alpha=8, dropout=0.1, target_modules=("q", "v"))


def tiny_t5(seed: int = 0):
    """A small random T5 (dropout on, so resume must restore RNG state too)."""
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    config = T5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
                      dropout_rate=0.1, feed_forward_proj="gated-gelu", decoder_start_token_id=0, pad_token_id=0,
                      eos_token_id=1)
    return T5ForConditionalGeneration(config).eval()


class _Tok:
    pad_token_id = 0


def toy_examples(n: int = 40, seed: int = 0) -> list[dict[str, list[int]]]:
    """Pre-tokenized rows of varied length: the target is the source's first tokens."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        src = [rng.randrange(3, 64) for _ in range(rng.randrange(4, 30))] + [1]
        rows.append({"input_ids": src, "labels": src[:4] + [1]})
    return rows


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- counts


def test_flan_t5_base_shaped_counts_match_the_course():
    from labkit.models import build_flan_t5_base_shaped

    # Counts are structural: building on the meta device skips 1 GB of random
    # init (the benchmark builds the same model with real weights).
    with torch.device("meta"):
        base = build_flan_t5_base_shaped(seed=0)
    full = count_parameters(base)
    assert (full.trainable, full.total) == (247_577_856, 247_577_856)
    lora = count_parameters(make_lora_model(base, LoraSettings(r=32, alpha=32, dropout=0.05, target_modules=("q", "v"))))
    assert (lora.trainable, lora.total) == (3_538_944, 251_116_800)
    assert f"{lora.percent:.2f}" == "1.41"
    assert "trainable model parameters: 3538944" in lora.course_format()
    # the base is still the plain 247,577,856-parameter model
    assert count_parameters(base).total == 247_577_856
    assert not any("lora" in name for name, _ in base.named_modules())


def test_estimate_memory_follows_the_rule_of_thumb():
    est = estimate_memory(1_000_000_000)
    assert est.weights_bytes == 4_000_000_000 and est.training_bytes == 24_000_000_000
    lora = estimate_memory(1000, 10)
    assert lora.training_bytes == 4 * 1000 + 20 * 10
    with pytest.raises(LabkitError):
        estimate_memory(10, 11)


# ---------------------------------------------------------------- models stay distinct


def test_lora_and_full_never_mutate_the_original():
    base = tiny_t5()
    before = _state(base)
    modules_before = [(n, type(m).__name__) for n, m in base.named_modules()]
    base_type = type(base)

    lora = make_lora_model(base, LORA, seed=0)
    full = make_full_model(base)
    cfg = TrainConfig(learning_rate=1e-2, max_steps=3, batch_size=8, seed=0)
    train(lora, _Tok(), toy_examples(), cfg, progress=False)
    train(full, _Tok(), toy_examples(), cfg, progress=False)

    assert type(base) is base_type
    assert [(n, type(m).__name__) for n, m in base.named_modules()] == modules_before
    after = base.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # three distinct models sharing no storage
    ptrs = [{p.data_ptr() for p in m.parameters()} for m in (base, lora, full)]
    assert not (ptrs[0] & ptrs[1]) and not (ptrs[0] & ptrs[2]) and not (ptrs[1] & ptrs[2])
    # and training really changed them
    assert not torch.equal(full.state_dict()["shared.weight"], before["shared.weight"])
    lora_b = [p for n, p in lora.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)
    assert count_parameters(lora).trainable < count_parameters(full).trainable


def test_bad_lora_targets_are_explained():
    with pytest.raises(LabkitError, match="target_modules"):
        make_lora_model(tiny_t5(), LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=("query",)))


# ---------------------------------------------------------------- data


def test_bucketed_batches_cover_everything_once_and_group_lengths():
    lengths = [random.Random(i).randrange(5, 500) for i in range(1000)]
    batches = bucketed_batches(lengths, 32, seed=3, epoch=1)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert batches == bucketed_batches(lengths, 32, seed=3, epoch=1)
    assert batches != bucketed_batches(lengths, 32, seed=3, epoch=2)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    shuffled = list(range(1000))
    random.Random(0).shuffle(shuffled)
    naive = sum(32 * max(lengths[i] for i in shuffled[s:s + 32]) for s in range(0, 1000, 32))
    real = sum(lengths)
    assert padded - real < 0.1 * (naive - real)  # a tenth of the padding of unbucketed batches


def test_collate_pads_to_the_longest_and_masks_labels():
    batch = collate([{"input_ids": [5, 6, 1], "labels": [7, 1]}, {"input_ids": [5, 1], "labels": [1]}], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 1], [5, 1, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[7, 1], [1, -100]]


# ---------------------------------------------------------------- measurement


def test_tensor_memory_tracker_counts_live_storage_peak():
    tracker = TensorMemoryTracker()
    with tracker:
        a = torch.zeros(1024, 256)  # 1 MiB
        b = a.view(-1)  # a view: no new storage
        del a, b
        c = torch.ones(512, 256)  # 0.5 MiB after the first was freed
    assert tracker.peak == 1024 * 256 * 4
    assert tracker.current == 512 * 256 * 4
    del c


def test_peak_memory_includes_adamw_state_and_lora_needs_less():
    base = tiny_t5()
    cfg = TrainConfig(learning_rate=1e-3, max_steps=4, batch_size=8, seed=0)
    full = train(make_full_model(base), _Tok(), toy_examples(), cfg, progress=False)
    lora = train(make_lora_model(base, LORA, seed=0), _Tok(), toy_examples(), cfg, progress=False)
    n = full.params.total
    # weights + grads + two AdamW moments are all alive at the peak of a steady-state step
    assert full.peak_memory_mb * 2**20 >= 16 * n
    assert lora.peak_memory_mb < full.peak_memory_mb
    assert full.seconds_per_step > 0 and len(full.losses) == 4


# ---------------------------------------------------------------- checkpoint + resume


@pytest.mark.parametrize("method", ["full", "lora"])
def test_interrupted_then_resumed_run_ends_bit_identical(tmp_path, method):
    base = tiny_t5()
    prepare = (lambda: make_full_model(base)) if method == "full" else (lambda: make_lora_model(base, LORA, seed=0))
    cfg = TrainConfig(learning_rate=5e-3, max_steps=7, batch_size=8, seed=5, checkpoint_every=2, keep_checkpoints=2)
    data = toy_examples()

    straight = prepare()
    ref = train(straight, _Tok(), data, cfg, output_dir=tmp_path / "straight", progress=False)

    killed = prepare()
    partial = train(killed, _Tok(), data, cfg, output_dir=tmp_path / "resumed", progress=False, stop_after_steps=5)
    assert partial.steps == 5
    assert [p.name for p in list_checkpoints(tmp_path / "resumed")] == ["step-000002", "step-000004"]
    # a killed process loses its in-memory state: continue in a fresh model
    resumed_model = prepare()
    resumed = train(resumed_model, _Tok(), data, cfg, output_dir=tmp_path / "resumed", resume=True, progress=False)

    assert resumed.resumed_from == 4 and resumed.steps == 7
    assert resumed.losses == ref.losses
    want, got = straight.state_dict(), resumed_model.state_dict()
    assert all(torch.equal(want[k], got[k]) for k in want)  # bit-exact, not just allclose
    fresh = prepare().state_dict()
    assert any(not torch.equal(want[k], fresh[k]) for k in want)  # training did something


def test_resume_of_a_finished_run_loads_without_training(tmp_path):
    base = tiny_t5()
    cfg = TrainConfig(learning_rate=1e-3, max_steps=3, batch_size=8, seed=0, checkpoint_every=10)
    first = make_full_model(base)
    done = train(first, _Tok(), toy_examples(), cfg, output_dir=tmp_path, progress=False)
    again = make_full_model(base)
    loaded = train(again, _Tok(), toy_examples(), cfg, output_dir=tmp_path, resume=True, progress=False)
    assert loaded.resumed_from == 3 and loaded.losses == done.losses
    assert loaded.peak_memory_mb == done.peak_memory_mb
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), again.parameters()))


def test_resume_refuses_other_settings(tmp_path):
    base = tiny_t5()
    cfg = TrainConfig(learning_rate=1e-3, max_steps=3, batch_size=8, seed=0, checkpoint_every=1)
    train(make_full_model(base), _Tok(), toy_examples(), cfg, output_dir=tmp_path, progress=False, stop_after_steps=2)
    other = TrainConfig(learning_rate=2e-3, max_steps=3, batch_size=8, seed=0, checkpoint_every=1)
    with pytest.raises(LabkitError, match="different settings"):
        train(make_full_model(base), _Tok(), toy_examples(), other, output_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(LabkitError, match="trainable parameters"):
        train(make_lora_model(base, LORA), _Tok(), toy_examples(), cfg, output_dir=tmp_path, resume=True, progress=False)


# ---------------------------------------------------------------- lab 3's starting point


def test_lora_summarizer_is_cached_trainable_and_distinct(fixtures_manifest):
    from peft import PeftModel

    from labkit.cached_summarizer import lora_summarizer

    first = lora_summarizer("offline", seed=0, max_steps=3, progress=False)
    second = lora_summarizer("offline", seed=0, max_steps=3, progress=False)
    assert isinstance(first, PeftModel)
    assert 0 < count_parameters(first).trainable < count_parameters(first).total
    a = {n: p for n, p in first.named_parameters() if "lora_" in n}
    b = {n: p for n, p in second.named_parameters() if "lora_" in n}
    assert a and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(p.abs().sum() > 0 for n, p in a.items() if "lora_B" in n)  # trained, not fresh


def test_the_shipped_summarizer_is_installed_only_under_its_key_and_hashes(fixtures_manifest, tmp_path, monkeypatch):
    """ship() writes the adapter with the key it was trained under; a fresh cache installs it instead of training,
    and a different key or a changed file trains as before."""
    import json

    from labkit import cached_summarizer as cs

    info = cs.ship(tmp_path / "shipped", max_steps=2)
    assert json.loads((tmp_path / "shipped" / cs.SHIPPED_INFO).read_text())["key"] == info["key"]
    assert "adapter_model.safetensors" in info["files"] and info["max_steps"] == 2
    monkeypatch.setattr(cs, "shipped_dir", lambda: tmp_path / "shipped")
    trained = []
    monkeypatch.setattr(cs, "train", lambda *a, **k: trained.append(1))
    home = tmp_path / "cache"

    def fresh_load(max_steps: int):
        shutil.rmtree(home, ignore_errors=True)
        monkeypatch.setenv("LABKIT_HOME", str(home))  # a fresh home: the fixtures install there, then the adapter
        return cs.lora_summarizer("offline", seed=0, max_steps=max_steps, progress=False)

    fresh_load(2)
    assert not trained  # installed, not trained
    (target,) = [p for p in (home / "cache" / "lora_summarizer").iterdir() if p.is_dir()]
    assert (target / "adapter_model.safetensors").read_bytes() == (
        tmp_path / "shipped" / "adapter_model.safetensors").read_bytes()
    fresh_load(3)  # another key (other settings): trained
    assert trained == [1]
    (tmp_path / "shipped" / "adapter_model.safetensors").write_bytes(b"tampered")
    fresh_load(2)
    assert trained == [1, 1]  # a changed file is never installed
