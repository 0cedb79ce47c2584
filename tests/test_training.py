"""labkit.training: atomic checkpoint folders with RNG state (shared by finetune and ppo), the LoRA config builder."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from labkit import finetune, ppo, training
from labkit.config import LabkitError
from labkit.lab_settings.detox import PPOSettings
from labkit.lab_settings.lora import LoraSettings
from labkit.training import atomic_folder, load_state, lora_config, rng_state, save_state
from labkit.training.checkpoint import restore_rng_state


def test_atomic_folder_replaces_whole_or_not_at_all(tmp_path):
    final = tmp_path / "ckpt"
    with atomic_folder(final) as tmp:
        (tmp / "a.txt").write_text("first")
    with pytest.raises(RuntimeError):
        with atomic_folder(final) as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("killed mid-save")
    assert (final / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no scratch folder left behind
    with atomic_folder(final) as tmp:
        (tmp / "b.txt").write_text("second")
    assert sorted(p.name for p in final.iterdir()) == ["b.txt"]


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    save_state(tmp_path / "state.pt", {"step": 3})
    draws = (random.random(), np.random.rand(), torch.rand(2))
    random.random(), np.random.rand(), torch.rand(5)  # move every generator on
    state = load_state(tmp_path / "state.pt")
    assert state["step"] == 3
    again = (random.random(), np.random.rand(), torch.rand(2))
    assert draws[:2] == again[:2] and torch.equal(draws[2], again[2])
    before = rng_state()
    torch.rand(3)
    restore_rng_state(before)
    assert torch.equal(torch.get_rng_state(), before["torch"])


def test_unreadable_state_says_so(tmp_path):
    (tmp_path / "state.pt").write_bytes(b"not a torch file")
    with pytest.raises(LabkitError, match="Cannot read the training state"):
        load_state(tmp_path / "state.pt")


def test_lora_config_is_validated_once_for_both_lessons():
    config = lora_config(LoraSettings(r=4, alpha=8, dropout=0.1, target_modules=("q", "v")))
    assert (config.r, config.lora_alpha, config.lora_dropout, sorted(config.target_modules)) == (4, 8, 0.1, ["q", "v"])
    assert config.bias == "none" and str(config.task_type.value) == "SEQ_2_SEQ_LM"
    for bad, why in ((LoraSettings(r=0), "rank r must be >= 1"), (LoraSettings(dropout=1.5), "dropout must be in"),
                     (LoraSettings(alpha=0), "alpha must be > 0"), (LoraSettings(target_modules=()), "is empty")):
        with pytest.raises(LabkitError, match=why):
            lora_config(bad)
    assert finetune.estimate_memory is training.estimate_memory  # the lesson API re-exports the one rule


def _tiny_policy():
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    base = T5ForConditionalGeneration(T5Config(vocab_size=32, d_model=16, d_kv=4, d_ff=32, num_layers=1,
                                               num_decoder_layers=1, num_heads=2, decoder_start_token_id=0,
                                               pad_token_id=0, eos_token_id=1))
    model = finetune.make_lora_model(base, LoraSettings(r=2, alpha=4, dropout=0.0, target_modules=("q", "v")), seed=0)
    return ppo.PolicyWithValueHead(model)


def test_ppo_checkpoint_is_written_atomically(tmp_path, monkeypatch):
    """A save killed half-way leaves the previous PPO checkpoint complete (it used to be overwritten in place)."""
    policy = _tiny_policy()
    config = ppo.PPOConfig.from_settings(PPOSettings(), batch_size=4, mini_batch_size=2)
    optimizer = ppo.make_optimizer(policy, config)
    state = ppo.new_state(config)
    state.step = 1
    ppo.save_checkpoint(policy, optimizer, state, tmp_path / "ppo_adapter")
    saved = {n: p.detach().clone() for n, p in policy.named_parameters() if "lora_B" in n}
    with torch.no_grad():  # step 2 moved the adapter: a half-written save would mix both steps
        for n, p in policy.named_parameters():
            if "lora_B" in n:
                p.add_(1.0)
    state.step = 2
    import safetensors.torch

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed while saving the value head")
    monkeypatch.setattr(safetensors.torch, "save_file", killed)
    with pytest.raises(KeyboardInterrupt):
        ppo.save_checkpoint(policy, optimizer, state, tmp_path / "ppo_adapter")
    monkeypatch.undo()
    fresh = _tiny_policy()
    restored = ppo.load_checkpoint(fresh, ppo.make_optimizer(fresh, config), config, tmp_path / "ppo_adapter")
    assert restored.step == 1
    assert all(torch.equal(p, saved[n]) for n, p in fresh.named_parameters() if "lora_B" in n)
    assert [p.name for p in tmp_path.iterdir()] == ["ppo_adapter"]


def test_token_budget_batches_cover_every_row_once_within_the_budget():
    import random

    from labkit.training.batching import token_budget_batches

    lengths = [random.Random(i).randint(5, 500) for i in range(300)]
    batches = token_budget_batches(lengths, 2000, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(300))
    # padded size of a batch: rows x its longest row; a single row may exceed the budget on its own
    assert all(len(b) * max(lengths[i] for i in b) <= 2000 or len(b) == 1 for b in batches)
    assert batches == token_budget_batches(lengths, 2000, random.Random(0))  # a function of the seed
    assert len({len(b) for b in batches}) > 1  # short rows travel in bigger batches than long ones
