"""labkit.ppo against the math: hand-computed GAE, KL controller, clipped losses; resume. With it, the policy
it trains (labkit.policy: the shared-base reference, the value-head count at flan-t5-base shape, log-probs
and KLs at a temperature) and its sampling (labkit.sampling)."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from labkit import ppo, sampling
from labkit.config import LabkitError
from labkit.lab_settings.detox import PPOSettings
from labkit.policy import (
    PolicyWithValueHead, add_value_head, entropy_from_logits, logprobs_from_logits, response_kl, state_kl,
)

# ----------------------------------------------------------------------------- tiny models


class CharTokenizer:
    """A stand-in tokenizer (ids 3..62 from characters, eos=1, pad=0), enough for
    the tiny random T5 below; keeps these tests independent of the fixtures."""

    pad_token_id = 0

    def __call__(self, texts, padding=True, truncation=True, max_length=512, return_tensors="pt"):
        from transformers import BatchEncoding

        ids = [[3 + ord(c) % 60 for c in t][: max_length - 1] + [1] for t in texts]
        width = max(map(len, ids))
        return BatchEncoding({
            "input_ids": torch.tensor([i + [0] * (width - len(i)) for i in ids]),
            "attention_mask": torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids]),
        })

    def batch_decode(self, sequences, skip_special_tokens=True):
        return ["".join(chr(97 + (int(x) - 3) % 26) for x in seq if int(x) > 2) for seq in sequences]


PROMPTS = ["hello there", "how are you", "a somewhat longer prompt here", "x", "summarize this", "ok"]


def tiny_base(seed: int = 0):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    config = T5Config(vocab_size=64, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return T5ForConditionalGeneration(config).eval()


def tiny_policy(seed: int = 0, base=None, head_seed: int | None = None) -> PolicyWithValueHead:
    from peft import LoraConfig, get_peft_model

    base = base if base is not None else tiny_base(seed)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q", "v"],
                                            task_type="SEQ_2_SEQ_LM"))
    torch.manual_seed(seed + 1 if head_seed is None else head_seed)
    return add_value_head(model)


def length_reward(texts):
    # Deterministic and policy-dependent: shorter responses score higher.
    return [-len(t) / 5.0 for t in texts]


def small_config(**overrides) -> ppo.PPOConfig:
    settings = dict(learning_rate=1e-2, batch_size=4, mini_batch_size=2, ppo_epochs=2, init_kl_coef=0.1,
                    target_kl=1.0, adaptive_kl=True, min_new_tokens=4, max_new_tokens=8, min_length=2, seed=3)
    settings.update(overrides)
    return ppo.PPOConfig(**settings)


# ----------------------------------------------------------------------------- GAE


def test_gae_matches_hand_computed_case():
    rewards = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 99.0]])
    values = torch.tensor([[0.5, 1.0, 1.5], [0.5, 1.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    adv, ret = ppo.gae(rewards, values, mask, gamma=1.0, lam=0.95)
    # Row 0: deltas from the end 3-1.5=1.5, 2+1.5-1=2.5, 1+1-0.5=1.5;
    # A2=1.5, A1=2.5+0.95*1.5=3.925, A0=1.5+0.95*3.925=5.22875.
    # Row 1 ends at t=1 (padding ignored): A1=2+0-1=1, A0=1.5+0.95*1=2.45.
    assert torch.allclose(adv, torch.tensor([[5.22875, 3.925, 1.5], [2.45, 1.0, 0.0]]))
    assert torch.allclose(ret, torch.tensor([[5.72875, 4.925, 3.0], [2.95, 2.0, 0.0]]))


def test_gae_uses_gamma_and_lambda():
    adv, _ = ppo.gae(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[0.5, 1.0, 1.5]]), torch.ones(1, 3),
                     gamma=0.5, lam=0.5)
    # deltas: 1.5, 2+0.5*1.5-1=1.75, 1+0.5*1-0.5=1.0; A1=1.75+0.25*1.5, A0=1.0+0.25*A1
    assert torch.allclose(adv, torch.tensor([[1.53125, 2.125, 1.5]]))


def test_whiten_is_zero_mean_unit_variance_on_the_mask():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 100.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    w = ppo.whiten(x, mask)
    valid = w[mask.bool()]
    assert abs(float(valid.mean())) < 1e-6
    assert math.isclose(float((valid ** 2).mean()), 1.0, rel_tol=1e-5)
    assert torch.equal(w[~mask.bool()], torch.zeros(2))


# ----------------------------------------------------------------------------- rewards and losses


def test_rewards_put_score_on_last_token_and_kl_penalty_everywhere():
    logprobs = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, -5.0]])
    ref = torch.tensor([[-1.5, -2.0, -2.0], [-2.0, -1.0, -9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards, kl = ppo.compute_rewards(torch.tensor([10.0, 20.0]), logprobs, ref, mask, beta=0.5)
    assert torch.allclose(kl, torch.tensor([[0.5, 0.0, -1.0], [1.0, 0.0, 0.0]]))
    assert torch.allclose(rewards, torch.tensor([[-0.25, 0.0, 0.5 + 10.0], [-0.5, 20.0, 0.0]]))


def test_clipped_policy_loss_on_hand_made_tensors():
    old = torch.zeros(1, 4)
    new = torch.log(torch.tensor([[1.5, 0.5, 1.1, 3.0]]))
    adv = torch.tensor([[1.0, -1.0, 2.0, 5.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # the 4th token is padding
    loss, clipfrac = ppo.policy_loss(new, old, adv, mask, cliprange=0.2)
    # max(-A r, -A clip(r)): token 1 max(-1.5, -1.2) = -1.2; token 2 max(0.5, 0.8) = 0.8;
    # token 3 ratio 1.1 inside the range: -2.2.
    assert math.isclose(float(loss), (-1.2 + 0.8 - 2.2) / 3, rel_tol=1e-6)
    assert math.isclose(float(clipfrac), 2 / 3, rel_tol=1e-6)


def test_clipped_value_loss_on_hand_made_tensors():
    old = torch.zeros(1, 3)
    values = torch.tensor([[0.5, -0.1, 9.0]])
    returns = torch.tensor([[1.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    loss = ppo.value_loss(values, old, returns, mask, cliprange_value=0.2)
    # token 1: max((0.5-1)^2, (0.2-1)^2) = 0.64; token 2 inside the range: 1.21.
    assert math.isclose(float(loss), 0.5 * (0.64 + 1.21) / 2, rel_tol=1e-6)


def test_response_mask_keeps_tokens_through_first_eos():
    response = torch.tensor([[5, 6, 1, 0, 0], [5, 6, 7, 8, 9], [1, 0, 0, 0, 0]])
    assert sampling.response_mask(response, eos_token_id=1).tolist() == [
        [1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]


# ----------------------------------------------------------------------------- KL controller


def test_adaptive_kl_controller_update_formula():
    ctl = ppo.AdaptiveKLController(init_kl_coef=0.2, target=6.0, horizon=10_000)
    ctl.update(current_kl=6.6, n_steps=16)  # error 0.1
    assert math.isclose(ctl.value, 0.2 * (1 + 0.1 * 16 / 10_000), rel_tol=1e-12)
    ctl.update(current_kl=60.0, n_steps=16)  # error clipped to +0.2
    assert math.isclose(ctl.value, 0.2 * (1 + 0.1 * 16 / 10_000) * (1 + 0.2 * 16 / 10_000), rel_tol=1e-12)
    low = ppo.AdaptiveKLController(1.0, target=6.0, horizon=100)
    low.update(current_kl=0.0, n_steps=50)  # error -1 clipped to -0.2
    assert math.isclose(low.value, 1.0 - 0.2 * 0.5, rel_tol=1e-12)


def test_fixed_kl_controller_and_state_round_trip():
    fixed = ppo.make_kl_controller(small_config(adaptive_kl=False, init_kl_coef=0.3))
    fixed.update(100.0, 16)
    assert fixed.value == 0.3
    ctl = ppo.AdaptiveKLController(0.2, 6.0, 10)
    ctl.update(12.0, 5)
    other = ppo.AdaptiveKLController(1.0, 1.0, 1)
    other.load_state_dict(ctl.state_dict())
    assert other.state_dict() == ctl.state_dict()


# ----------------------------------------------------------------------------- reference = adapter off


def test_kl_is_zero_at_step_zero():
    # A fresh LoRA adapter has B = 0, so policy == reference exactly.
    policy = tiny_policy()
    batch = ppo.rollout(policy, CharTokenizer(), PROMPTS, length_reward, max_new_tokens=6, min_length=2)
    assert torch.allclose(batch["logprobs"], batch["ref_logprobs"], atol=1e-6)
    _, kl = ppo.compute_rewards(batch["scores"], batch["logprobs"], batch["ref_logprobs"], batch["mask"], 0.2)
    assert float(kl.abs().max()) < 1e-6


def test_reference_logprobs_equal_base_model_with_adapter_disabled():
    base = tiny_base(seed=5)
    untouched = copy.deepcopy(base)
    policy = tiny_policy(base=base)
    with torch.no_grad():  # move the adapter away from B = 0 so policy and base differ
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    batch = ppo.rollout(policy, CharTokenizer(), PROMPTS, length_reward, max_new_tokens=6, min_length=2)
    with torch.no_grad():
        logits = untouched(input_ids=batch["query_ids"], attention_mask=batch["query_mask"],
                           decoder_input_ids=batch["decoder_input_ids"]).logits
    base_logprobs = logprobs_from_logits(logits, batch["response"])
    assert torch.allclose(batch["ref_logprobs"], base_logprobs, atol=1e-5)
    assert not torch.allclose(batch["logprobs"], base_logprobs, atol=1e-3)  # the adapter is back on after
    assert all(p.requires_grad for n, p in policy.model.named_parameters() if "lora_" in n)


def test_policy_needs_a_peft_model():
    with pytest.raises(LabkitError, match="peft"):
        PolicyWithValueHead(tiny_base())


def test_value_head_count_on_flan_t5_base_shape():
    from peft import LoraConfig, get_peft_model

    from labkit.models import build_flan_t5_base_shaped, count_parameters

    # On the meta device: the real shapes (and counts) without allocating ~1 GB.
    with torch.device("meta"):
        model = get_peft_model(build_flan_t5_base_shaped(), LoraConfig(
            r=32, lora_alpha=32, lora_dropout=0.05, target_modules=["q", "v"], task_type="SEQ_2_SEQ_LM"))
        lora_only = count_parameters(model).trainable
        policy = add_value_head(model)
    assert lora_only == 3_538_944
    assert count_parameters(policy.value_head).trainable == 769
    assert count_parameters(policy).trainable == 3_539_713


# ----------------------------------------------------------------------------- driver


def test_train_logs_every_step_and_moves_only_adapter_and_head():
    policy = tiny_policy()
    frozen = {n: p.detach().clone() for n, p in policy.named_parameters() if not p.requires_grad}
    log = ppo.train(policy, CharTokenizer(), PROMPTS, length_reward, small_config(), steps=3, progress=False)
    assert [e["step"] for e in log] == [1, 2, 3]
    for key in ("reward_mean", "kl", "beta", "policy_loss", "value_loss", "entropy"):
        assert all(math.isfinite(e[key]) for e in log), key
    assert log[0]["kl"] == pytest.approx(0.0, abs=1e-5) and log[0]["kl_sampled"] == pytest.approx(0.0, abs=1e-5)
    assert all(e["kl"] >= 0 for e in log)  # the exact KL, never negative
    assert log[0]["beta"] == 0.1 and log[1]["beta"] != 0.1  # the adaptive controller moved
    assert all(torch.equal(p, frozen[n]) for n, p in policy.named_parameters() if not p.requires_grad)
    assert any(float(p.detach().abs().sum()) > 0 for n, p in policy.named_parameters() if "lora_B" in n)


def test_resume_repeats_an_uninterrupted_run(tmp_path):
    straight = tiny_policy()
    log_straight = ppo.train(straight, CharTokenizer(), PROMPTS, length_reward, small_config(), steps=3, progress=False)
    first = tiny_policy()
    ppo.train(first, CharTokenizer(), PROMPTS, length_reward, small_config(), steps=2,
              checkpoint_dir=tmp_path / "ckpt", progress=False)
    torch.manual_seed(999)  # anything run in between must not matter
    resumed = tiny_policy(head_seed=7)  # same base, other initial head: the checkpoint must overwrite it
    log_resumed = ppo.train(resumed, CharTokenizer(), PROMPTS, length_reward, small_config(), steps=3,
                            checkpoint_dir=tmp_path / "ckpt", resume=True, progress=False)
    assert [e["step"] for e in log_resumed] == [1, 2, 3]
    for a, b in zip(log_straight, log_resumed):
        a, b = ({k: v for k, v in e.items() if k != "seconds"} for e in (a, b))  # wall time differs run to run
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    trained = dict(straight.named_parameters())
    for name, param in resumed.named_parameters():
        if param.requires_grad:
            assert torch.allclose(param, trained[name], atol=1e-6), name
    for name in ("adapter_model.safetensors", "adapter_config.json", ppo.VALUE_HEAD_FILE, ppo.TRAINER_STATE_FILE):
        assert (tmp_path / "ckpt" / name).is_file()


def test_checkpoint_every_means_what_it_means_in_finetune(tmp_path, monkeypatch):
    """As in labkit.finetune: N >= 1 saves every N steps, None no periodic ones (a checkpoint_dir still gets the
    run's end), and 0, once "only at the end" here but "off" there, is refused."""
    saved = []
    monkeypatch.setattr(ppo, "save_checkpoint", lambda policy, optimizer, state, directory: saved.append(state.step))
    for every, steps in ((None, [3]), (2, [2, 3]), (1, [1, 2, 3])):
        saved.clear()
        ppo.train(tiny_policy(), CharTokenizer(), PROMPTS, length_reward, small_config(), steps=3,
                  checkpoint_dir=tmp_path / "ckpt", checkpoint_every=every, progress=False)
        assert saved == steps, every
    with pytest.raises(LabkitError, match="checkpoint_every must be >= 1 or None"):
        ppo.train(tiny_policy(), CharTokenizer(), PROMPTS, length_reward, small_config(), steps=1,
                  checkpoint_dir=tmp_path / "ckpt", checkpoint_every=0, progress=False)


def test_load_checkpoint_reports_an_incomplete_folder(tmp_path):
    policy = tiny_policy()
    config = small_config()
    with pytest.raises(LabkitError, match="not a complete PPO checkpoint"):
        ppo.load_checkpoint(policy, ppo.make_optimizer(policy, config), config, tmp_path)


def test_config_from_settings_and_validation():
    config = ppo.PPOConfig.from_settings(PPOSettings(), batch_size=8, mini_batch_size=4)
    assert (config.batch_size, config.learning_rate, config.init_kl_coef, config.target_kl) == (8, 1.41e-5, 0.2, 6.0)
    with pytest.raises(LabkitError, match="multiple of mini_batch_size"):
        ppo.PPOConfig.from_settings(PPOSettings(), batch_size=6, mini_batch_size=4)
    with pytest.raises(LabkitError, match="Unknown PPO setting"):
        ppo.PPOConfig.from_settings(PPOSettings(), lr=1.0)


def test_sample_summaries_is_seeded_and_leaves_global_rng_alone():
    policy = tiny_policy()
    state = torch.get_rng_state()
    a = sampling.sample_summaries(policy, CharTokenizer(), PROMPTS, max_new_tokens=6, seed=1, progress=False)
    b = sampling.sample_summaries(policy, CharTokenizer(), PROMPTS, max_new_tokens=6, seed=1, progress=False)
    assert a == b and len(a) == len(PROMPTS)
    assert torch.equal(torch.get_rng_state(), state)


def test_sample_summaries_draws_each_batch_from_its_own_seeded_stream(monkeypatch):
    """Common random numbers for before/after comparisons: a batch's draws depend on the seed and its place
    only, not on how many random numbers earlier batches used (a generation that ran longer there)."""
    def fake_sample_responses(policy, tokenizer, chunk, **kwargs):
        for prompt in chunk:
            torch.rand(len(prompt))  # like decoding: the draws used grow with the generation's length
        return {"texts": [f"{torch.rand(1).item():.6f}" for _ in chunk]}

    monkeypatch.setattr(sampling, "sample_responses", fake_sample_responses)
    kwargs = dict(max_new_tokens=4, batch_size=2, seed=5, progress=False)
    a = sampling.sample_summaries(None, None, PROMPTS, **kwargs)
    b = sampling.sample_summaries(None, None, ["a much longer first prompt", "and another", *PROMPTS[2:]], **kwargs)
    assert a[2:] == b[2:] and a[:2] != b[:2]
    assert sampling.sample_summaries(None, None, PROMPTS, **{**kwargs, "seed": 6})[2:] != a[2:]


# ----------------------------------------------------------------------------- sampling temperature


def test_logprobs_and_entropy_at_a_temperature_are_those_of_the_tempered_softmax():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]]])
    tokens = torch.tensor([[0, 2]])
    for temperature in (1.0, 0.5):
        probs = torch.softmax(logits / temperature, dim=-1)
        expected = torch.log(probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1))
        assert torch.allclose(logprobs_from_logits(logits, tokens, temperature), expected, atol=1e-6)
        assert torch.allclose(entropy_from_logits(logits, temperature), -(probs * probs.log()).sum(-1), atol=1e-6)
    # A lower temperature sharpens: the likeliest token gets likelier, the entropy falls.
    assert logprobs_from_logits(logits, tokens, 0.5)[0, 0] > logprobs_from_logits(logits, tokens)[0, 0]
    assert (entropy_from_logits(logits, 0.5) < entropy_from_logits(logits)).all()


def test_rollout_at_a_temperature_keeps_policy_and_reference_at_that_temperature():
    base = tiny_base(seed=5)
    untouched = copy.deepcopy(base)
    policy = tiny_policy(base=base)
    batch = ppo.rollout(policy, CharTokenizer(), PROMPTS, length_reward, max_new_tokens=6, min_length=2,
                        temperature=0.5)
    assert torch.allclose(batch["logprobs"], batch["ref_logprobs"], atol=1e-6)  # B = 0: KL 0 at any temperature
    with torch.no_grad():
        logits = untouched(input_ids=batch["query_ids"], attention_mask=batch["query_mask"],
                           decoder_input_ids=batch["decoder_input_ids"]).logits
    assert torch.allclose(batch["ref_logprobs"], logprobs_from_logits(logits, batch["response"], 0.5), atol=1e-5)
    assert not torch.allclose(batch["ref_logprobs"], logprobs_from_logits(logits, batch["response"]), atol=1e-3)


def test_a_lower_temperature_samples_the_likelier_responses():
    # Sampling at a low temperature concentrates on the model's likeliest tokens: the mean untempered
    # log-prob of what was sampled rises as the temperature falls.
    policy = tiny_policy()
    def mean_logprob(temperature: float) -> float:
        torch.manual_seed(0)
        batch = ppo.rollout(policy, CharTokenizer(), PROMPTS * 4, length_reward, max_new_tokens=6, min_length=6,
                            temperature=temperature)
        with torch.no_grad():
            logits, _ = policy(batch)
        return float(ppo.masked_mean(logprobs_from_logits(logits, batch["response"]), batch["mask"]))
    assert mean_logprob(0.3) > mean_logprob(1.0) + 0.1


def test_config_rejects_a_lambda_outside_its_range():
    assert ppo.PPOConfig.from_settings(PPOSettings(), lam=0.8).lam == 0.8
    for bad in (-0.1, 1.5):
        with pytest.raises(LabkitError, match="lam"):
            ppo.PPOConfig.from_settings(PPOSettings(), lam=bad)


def test_config_rejects_a_temperature_outside_its_range():
    assert ppo.PPOConfig.from_settings(PPOSettings(), temperature=0.7).temperature == 0.7
    for bad in (0.0, -1.0, 3.0):
        with pytest.raises(LabkitError, match="temperature"):
            ppo.PPOConfig.from_settings(PPOSettings(), temperature=bad)


# ----------------------------------------------------------------------------- the KL term in the loss


def test_state_kl_is_the_exact_kl_of_the_tempered_distributions():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]]])
    ref = torch.tensor([[[1.0, 1.0, 0.0], [0.5, 0.5, 3.0]]])
    for temperature in (1.0, 0.6):
        p, q = torch.softmax(logits / temperature, -1), torch.softmax(ref / temperature, -1)
        expected = (p * (p.log() - q.log())).sum(-1)
        assert torch.allclose(state_kl(logits, ref, temperature), expected, atol=1e-6)
    kl = state_kl(logits, ref)
    assert kl[0, 0] > 0 and kl[0, 1] == pytest.approx(0.0, abs=1e-7)  # identical rows: no divergence


def test_response_kl_sums_the_exact_state_kl_over_the_response_against_hand_computed_values():
    ln = math.log
    # Row 0: p = (1/2, 1/2) vs q = (1/4, 3/4), then identical distributions, then padding (mask 0).
    # Row 1: p = (0.9, 0.1) vs q = (1/2, 1/2), then p = (1/2, 1/2) vs q = (0.9, 0.1), then padding.
    p = torch.tensor([[[0.5, 0.5], [0.3, 0.7], [0.99, 0.01]], [[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]]])
    q = torch.tensor([[[0.25, 0.75], [0.3, 0.7], [0.01, 0.99]], [[0.5, 0.5], [0.9, 0.1], [0.7, 0.3]]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    kl = response_kl(p.log(), q.log(), mask)
    row0 = 0.5 * ln(0.5 / 0.25) + 0.5 * ln(0.5 / 0.75)                                     # 0.5 ln(4/3)
    row1 = (0.9 * ln(0.9 / 0.5) + 0.1 * ln(0.1 / 0.5)) + (0.5 * ln(0.5 / 0.9) + 0.5 * ln(0.5 / 0.1))
    assert kl.tolist() == pytest.approx([row0, row1], abs=1e-6)
    assert row0 == pytest.approx(0.5 * ln(4 / 3)) and row1 == pytest.approx(0.368064 + 0.510826, abs=1e-6)
    # at a temperature: the KL of softmax(logits / T), as state_kl
    assert response_kl(p.log(), q.log(), mask, 2.0).tolist() == pytest.approx(
        response_kl(p.log() / 2, q.log() / 2, mask).tolist(), abs=1e-6)


def test_the_reported_kl_is_not_negative_where_the_sampled_estimate_is():
    # The token sampled at row 0's first position is the second, likelier under the reference: the penalty's
    # sampled estimate sum(logp - logp_ref) is ln(0.5 / 0.75) < 0; the exact KL along the same response is not.
    p = torch.tensor([[[0.5, 0.5], [0.3, 0.7]]])
    q = torch.tensor([[[0.25, 0.75], [0.3, 0.7]]])
    response, mask = torch.tensor([[1, 0]]), torch.ones(1, 2)
    logp, logq = logprobs_from_logits(p.log(), response), logprobs_from_logits(q.log(), response)
    _, sampled = ppo.compute_rewards(torch.zeros(1), logp, logq, mask, beta=0.2)
    assert float(sampled.sum()) == pytest.approx(math.log(0.5 / 0.75), abs=1e-6) and float(sampled.sum()) < 0
    assert float(response_kl(p.log(), q.log(), mask)[0]) == pytest.approx(0.5 * math.log(4 / 3), abs=1e-6)


def test_rollout_and_log_report_the_exact_kl_while_the_controller_reads_the_sampled_estimate():
    policy = tiny_policy(seed=4)
    with torch.no_grad():  # an adapter away from B = 0: policy and reference differ from the first rollout
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    torch.manual_seed(0)
    batch = ppo.rollout(policy, CharTokenizer(), PROMPTS, length_reward, max_new_tokens=6, min_length=2)
    with torch.no_grad():
        logits, _ = policy(batch)
        expected = (state_kl(logits, policy.reference_logits(batch)) * batch["mask"]).sum(1)
    assert torch.allclose(batch["response_kl"], expected, atol=1e-5) and bool((batch["response_kl"] > 0).all())
    config = small_config(init_kl_coef=0.5, target_kl=0.05, horizon=8)
    log = ppo.train(policy, CharTokenizer(), PROMPTS, length_reward, config, steps=3, progress=False)
    assert all(e["kl"] >= 0 and math.isfinite(e["kl_sampled"]) for e in log)
    for before, after in zip(log, log[1:]):  # the classic controller, fed the sampled estimate
        error = min(max(before["kl_sampled"] / config.target_kl - 1, -0.2), 0.2)
        assert after["beta"] == pytest.approx(before["beta"] * (1 + error * config.batch_size / config.horizon))


def test_kl_loss_term_keeps_the_policy_nearer_the_reference():
    # The same run (reward: write short) with and without the exact-KL term: with it, the policy ends nearer
    # the reference, measured on the same fresh rollout; the term is logged, and 0 when switched off.
    def final_kl(coef: float) -> tuple[float, list[dict[str, float]]]:
        policy = tiny_policy(seed=2)
        log = ppo.train(policy, CharTokenizer(), PROMPTS, length_reward,
                        small_config(init_kl_coef=0.0, adaptive_kl=False, kl_loss_coef=coef), steps=4, progress=False)
        torch.manual_seed(11)
        batch = ppo.rollout(policy, CharTokenizer(), PROMPTS * 4, length_reward, max_new_tokens=8, min_length=2)
        with torch.no_grad():
            logits, _ = policy(batch)
        return float(ppo.masked_mean(state_kl(logits, policy.reference_logits(batch)), batch["mask"])), log
    free, free_log = final_kl(0.0)
    held, held_log = final_kl(50.0)
    assert free > 0 and held < 0.5 * free, (free, held)
    assert all(e["kl_loss"] == 0.0 for e in free_log) and any(e["kl_loss"] > 0 for e in held_log)
