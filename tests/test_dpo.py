"""labkit.dpo against the math and the contract: the loss against hand-computed values, sequence log-probs as
masked sums, the reference as the adapter-disabled base (fixed while the adapter trains), pair building
(chosen = the higher score, ties dropped), the training loop. Tiny random models: fast, no fixtures."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from test_ppo import PROMPTS, CharTokenizer, tiny_base, tiny_policy

from labkit import dpo
from labkit.config import LabkitError
from labkit.lab_settings.detox import DPOSettings
from labkit.policy import response_kl

TOK = CharTokenizer()


def small_config(**overrides) -> dpo.DPOConfig:
    settings = dict(dpo_steps=6, dpo_beta=0.5, dpo_learning_rate=5e-2, dpo_batch_size=2, dpo_prompts=4,
                    dpo_samples_per_prompt=3, seed=3)
    settings.update(overrides)
    return dpo.DPOConfig(**settings).validated()


def moved_policy(seed: int = 5):
    """A tiny policy whose adapter is away from B = 0, with an untouched copy of its base."""
    base = tiny_base(seed=seed)
    untouched = copy.deepcopy(base)
    policy = tiny_policy(base=base)
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    return policy, untouched


# ----------------------------------------------------------------------------- the loss


def test_dpo_loss_matches_hand_computed_values():
    policy_c, policy_r = torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -1.0])
    ref_c, ref_r = torch.tensor([-1.5, -2.0]), torch.tensor([-1.5, -1.5])
    loss, stats = dpo.dpo_loss(policy_c, policy_r, ref_c, ref_r, beta=0.5)
    # Row 0: chosen reward 0.5 * (-1 + 1.5) = 0.25, rejected 0.5 * (-2 + 1.5) = -0.25, margin 0.5,
    #        loss log(1 + e^-0.5) = 0.474077.
    # Row 1: chosen 0.5 * (-3 + 2) = -0.5, rejected 0.5 * (-1 + 1.5) = 0.25, margin -0.75,
    #        loss log(1 + e^0.75) = log(3.117000) = 1.136871.
    assert float(loss) == pytest.approx((0.474077 + 1.136871) / 2, abs=1e-6)
    assert stats["chosen_reward"].tolist() == pytest.approx([0.25, -0.5])
    assert stats["rejected_reward"].tolist() == pytest.approx([-0.25, 0.25])
    assert stats["margin"].tolist() == pytest.approx([0.5, -0.75])
    assert stats["accuracy"].tolist() == [1.0, 0.0]


def test_dpo_loss_is_log_two_at_the_reference_and_pushes_chosen_up_rejected_down():
    logp_c = torch.tensor([-4.0, -7.0], requires_grad=True)
    logp_r = torch.tensor([-5.0, -6.0], requires_grad=True)
    loss, _ = dpo.dpo_loss(logp_c, logp_r, logp_c.detach(), logp_r.detach(), beta=0.1)
    assert float(loss.detach()) == pytest.approx(math.log(2.0))
    loss.backward()
    # d loss / d margin = -sigmoid(-0) = -1/2 per pair, times beta / n: chosen -0.025, rejected +0.025.
    assert logp_c.grad.tolist() == pytest.approx([-0.025, -0.025])
    assert logp_r.grad.tolist() == pytest.approx([0.025, 0.025])


def test_a_larger_beta_sharpens_the_same_preference():
    c, r, rc, rr = torch.tensor([-1.0]), torch.tensor([-2.0]), torch.tensor([-1.5]), torch.tensor([-1.5])
    low, _ = dpo.dpo_loss(c, r, rc, rr, beta=0.1)
    high, _ = dpo.dpo_loss(c, r, rc, rr, beta=2.0)
    assert float(high) < float(low) < math.log(2.0)  # margin 1 nat: right way round, surer with beta


# ----------------------------------------------------------------------------- pairs


def test_build_pairs_chooses_the_highest_score_and_rejects_the_lowest():
    pairs = dpo.build_pairs(["p1", "p2"], [["a", "b", "c"], ["x", "y"]], [[0.5, 2.0, -1.0], [3.0, 1.0]])
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == [("p1", "b", "c"), ("p2", "x", "y")]
    assert (pairs[0].chosen_score, pairs[0].rejected_score) == (2.0, -1.0)
    assert all(p.chosen_score > p.rejected_score for p in pairs)


def test_build_pairs_drops_ties_and_identical_texts():
    pairs = dpo.build_pairs(
        ["all equal", "same text", "partial tie", "fine"],
        [["a", "b"], ["s", "s"], ["u", "v", "w"], ["good", "bad"]],
        [[1.0, 1.0], [0.0, 2.0], [2.0, 2.0, 0.0], [1.0, -1.0]])
    # all equal: no preference; same text at best and worst: nothing to learn; partial tie: the first best wins.
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == [("partial tie", "u", "w"), ("fine", "good", "bad")]


def test_build_pairs_drops_near_ties_below_the_margin():
    prompts, texts = ["near", "clear"], [["a", "b"], ["c", "d"]]
    scores = [[3.52, 3.50], [3.5, -3.4]]
    assert len(dpo.build_pairs(prompts, texts, scores)) == 2
    assert [p.prompt for p in dpo.build_pairs(prompts, texts, scores, min_margin=1.0)] == ["clear"]


def test_build_pairs_reports_mismatched_inputs():
    with pytest.raises(LabkitError, match="one list of candidates and of scores per prompt"):
        dpo.build_pairs(["p"], [["a", "b"], ["c", "d"]], [[1, 2]])
    with pytest.raises(LabkitError, match="at least 2 candidates"):
        dpo.build_pairs(["p"], [["a"]], [[1.0]])
    with pytest.raises(LabkitError, match="at least 2 candidates with one score each"):
        dpo.build_pairs(["p"], [["a", "b"]], [[1.0]])


def test_sample_pairs_ranks_the_policys_own_samples_and_is_seeded():
    policy = tiny_policy()
    shorter_is_better = lambda texts: [-float(len(t)) for t in texts]  # noqa: E731
    sampling = dict(max_new_tokens=8, min_length=1)
    pairs = dpo.sample_pairs(policy, TOK, PROMPTS, shorter_is_better, samples_per_prompt=4, seed=1, progress=False,
                             **sampling)
    assert 0 < len(pairs) <= len(PROMPTS)
    assert all(len(p.chosen) < len(p.rejected) and p.chosen_score == -len(p.chosen) for p in pairs)
    again = dpo.sample_pairs(policy, TOK, PROMPTS, shorter_is_better, samples_per_prompt=4, seed=1, progress=False,
                             **sampling)
    assert again == pairs
    with pytest.raises(LabkitError, match="No preference pairs"):
        dpo.sample_pairs(policy, TOK, PROMPTS, lambda texts: [0.0] * len(texts), samples_per_prompt=2, seed=1,
                         progress=False, **sampling)


def test_choose_prompts_is_seeded_and_refuses_too_many():
    prompts = [f"p{i}" for i in range(10)]
    assert dpo.choose_prompts(prompts, 4, seed=0) == dpo.choose_prompts(prompts, 4, seed=0)
    assert len(set(dpo.choose_prompts(prompts, 10, seed=1))) == 10
    with pytest.raises(LabkitError, match="dpo_prompts=11 is more than the 10"):
        dpo.choose_prompts(prompts, 11, seed=0)


def test_pair_batches_cover_every_pair_once_per_pass():
    batches = dpo.pair_batches(5, 2, steps=5, generator=torch.Generator().manual_seed(0))
    flat = [i for b in batches for i in b]
    assert [len(b) for b in batches] == [2] * 5
    assert sorted(flat[:5]) == list(range(5))  # the first pass holds each pair once
    assert dpo.pair_batches(3, 8, steps=2, generator=torch.Generator().manual_seed(0))[0] != []  # capped at 3


# ----------------------------------------------------------------------------- sequence log-probs and the reference


def test_sequence_logprobs_sum_token_logprobs_over_the_response_mask():
    policy, _ = moved_policy()
    prompts, responses = ["hello there", "ok"], ["abc", "a much longer response"]
    batch = dpo.encode_responses(policy, TOK, prompts, responses)
    assert batch["mask"].sum(1).tolist() == [4.0, 23.0]  # the characters and EOS; padding excluded
    with torch.no_grad():
        together = dpo.sequence_logprobs(policy, batch)
        alone = [float(dpo.sequence_logprobs(policy, dpo.encode_responses(policy, TOK, [p], [r])))
                 for p, r in zip(prompts, responses)]
        logits, _ = policy(batch)
        by_hand = torch.log_softmax(logits, -1).gather(-1, batch["response"].unsqueeze(-1)).squeeze(-1)
    assert together.tolist() == pytest.approx(alone, abs=1e-4)  # padding adds nothing
    assert float(together[0]) == pytest.approx(float(by_hand[0, :4].sum()), abs=1e-5)


def test_reference_logprobs_are_the_base_with_the_adapter_disabled_and_stay_fixed_while_training():
    policy, untouched = moved_policy()
    pairs = [dpo.PreferencePair(p, "short", "a long rejected answer", 1.0, -1.0) for p in PROMPTS[:4]]
    batch = dpo.encode_responses(policy, TOK, [p.prompt for p in pairs], [p.chosen for p in pairs])
    with torch.no_grad():
        logits = untouched(input_ids=batch["query_ids"], attention_mask=batch["query_mask"],
                           decoder_input_ids=batch["decoder_input_ids"]).logits
        base = (torch.log_softmax(logits, -1).gather(-1, batch["response"].unsqueeze(-1)).squeeze(-1)
                * batch["mask"]).sum(1)
        ref_before = dpo.reference_logprobs(policy, batch)
        policy_before = dpo.sequence_logprobs(policy, batch)
    assert torch.allclose(ref_before, base, atol=1e-5)
    assert not torch.allclose(policy_before, base, atol=1e-3)  # the adapter is back on after the reference pass
    dpo.train(policy, TOK, pairs, small_config(), steps=4, progress=False)
    with torch.no_grad():
        ref_after = dpo.reference_logprobs(policy, batch)
        policy_after = dpo.sequence_logprobs(policy, batch)
    assert torch.allclose(ref_after, ref_before, atol=1e-5)  # the adapter trained; the reference did not move
    assert float((policy_after - policy_before).abs().max()) > 1e-2


def test_sequence_kl_is_zero_for_a_fresh_adapter_and_positive_after_training():
    policy = tiny_policy()  # B = 0: policy == reference
    pairs = [dpo.PreferencePair(p, "yes", "no no no", 1.0, -1.0) for p in PROMPTS]
    kl = dpo.sequence_kl(policy, TOK, PROMPTS, ["yes"] * len(PROMPTS))
    assert kl.shape == (len(PROMPTS),) and abs(kl).max() < 1e-5
    dpo.train(policy, TOK, pairs, small_config(), steps=6, progress=False)
    assert dpo.sequence_kl(policy, TOK, PROMPTS, ["yes"] * len(PROMPTS)).mean() > 0.01  # the policy moved
    assert dpo.sequence_log_ratio(policy, TOK, PROMPTS, ["yes"] * len(PROMPTS)).mean() > 0.01  # "yes" got likelier


def test_sequence_kl_is_the_exact_kl_summed_over_each_response():
    policy, _ = moved_policy()
    prompts, responses = ["hello there", "ok"], ["abc", "a much longer response"]
    batch = dpo.encode_responses(policy, TOK, prompts, responses)
    with torch.no_grad():
        logits, _ = policy(batch)
        p = torch.softmax(logits, -1)
        q = torch.softmax(policy.reference_logits(batch), -1)
        by_hand = ((p * (p.log() - q.log())).sum(-1) * batch["mask"]).sum(1)
    kl = dpo.sequence_kl(policy, TOK, prompts, responses, batch_size=1)
    assert kl.tolist() == pytest.approx(by_hand.tolist(), abs=1e-4) and (kl > 0).all()


def test_sequence_kl_is_not_negative_where_the_log_ratio_is():
    """Responses built token by token from the least policy-favoured token (argmin of log pi - log pi_ref at each
    state, which is below zero wherever the two distributions differ, since both sum to one): the sampled
    estimate log pi(y) - log pi_ref(y) is negative by construction, the exact KL along the same responses is not."""
    policy, _ = moved_policy()
    batch = dpo.encode_responses(policy, TOK, PROMPTS, ["xxxxx"] * len(PROMPTS))  # 5 tokens + EOS, no padding
    assert bool((batch["mask"] == 1).all())
    with torch.no_grad():
        for t in range(batch["response"].shape[1]):
            logits, _ = policy(batch)
            ratio = torch.log_softmax(logits[:, t], -1) - torch.log_softmax(policy.reference_logits(batch)[:, t], -1)
            batch["response"][:, t] = ratio.argmin(-1)
            if t + 1 < batch["response"].shape[1]:
                batch["decoder_input_ids"][:, t + 1] = batch["response"][:, t]
        log_ratio = dpo.sequence_logprobs(policy, batch) - dpo.reference_logprobs(policy, batch)
        logits, _ = policy(batch)
        kl = response_kl(logits, policy.reference_logits(batch), batch["mask"])
    assert bool((log_ratio < 0).all()), log_ratio
    assert bool((kl > 0).all()), kl


# ----------------------------------------------------------------------------- training


def test_train_logs_every_step_learns_the_preference_and_moves_only_the_adapter(tmp_path):
    policy = tiny_policy()
    frozen = {n: p.detach().clone() for n, p in policy.named_parameters() if not p.requires_grad}
    head = {n: p.detach().clone() for n, p in policy.value_head.named_parameters()}
    pairs = [dpo.PreferencePair(p, "yes", "no no no", 1.0, -1.0) for p in PROMPTS]
    log = dpo.train(policy, TOK, pairs, small_config(), steps=6, checkpoint_dir=tmp_path / "dpo", progress=False)
    assert [e["step"] for e in log] == list(range(1, 7))
    for key in ("loss", "accuracy", "margin", "chosen_reward", "rejected_reward", "chosen_logp", "rejected_logp",
                "seconds"):
        assert all(math.isfinite(e[key]) for e in log), key
    assert log[0]["loss"] == pytest.approx(math.log(2.0), abs=1e-5)  # policy == reference at the first step
    assert log[-1]["loss"] < log[0]["loss"] - 0.05 and log[-1]["margin"] > 0 and log[-1]["accuracy"] == 1.0
    assert all(torch.equal(p, frozen[n]) for n, p in policy.named_parameters() if not p.requires_grad)
    assert all(torch.equal(p, head[n]) for n, p in policy.value_head.named_parameters())  # no value head in DPO
    assert (tmp_path / "dpo" / "adapter_model.safetensors").is_file()


def test_train_is_reproducible():
    pairs = [dpo.PreferencePair(p, "yes", "no", 1.0, -1.0) for p in PROMPTS]
    logs = [dpo.train(tiny_policy(), TOK, pairs, small_config(), steps=3, progress=False) for _ in range(2)]
    strip = [[{k: v for k, v in e.items() if k != "seconds"} for e in log] for log in logs]
    assert strip[0] == strip[1]


def test_config_from_settings_and_its_errors():
    config = dpo.DPOConfig.from_settings(DPOSettings(), seed=7, temperature=0.8)
    assert (config.dpo_beta, config.seed, config.temperature) == (DPOSettings.dpo_beta, 7, 0.8)
    with pytest.raises(LabkitError, match="Unknown DPO setting"):
        dpo.DPOConfig.from_settings(DPOSettings(), beta=0.1)
    with pytest.raises(LabkitError, match="dpo_samples_per_prompt must be at least 2"):
        dpo.DPOConfig.from_settings(DPOSettings(), dpo_samples_per_prompt=1)
    with pytest.raises(LabkitError, match=r"dpo_beta \(0.0\).*must be positive.*parameters cell"):
        dpo.DPOConfig.from_settings(DPOSettings(), dpo_beta=0.0)
    with pytest.raises(LabkitError, match="at least one preference pair"):
        dpo.train(tiny_policy(), TOK, [], small_config(), progress=False)


# ----------------------------------------------------------------------------- PPO vs DPO table


def test_method_summary_and_comparison_table():
    import pandas as pd

    refs = ["#Person1# and #Person2# talk about the weather.", "#Person2# buys a red bike."]
    vocab = {"#person1#", "and", "#person2#", "talk", "about", "the", "weather", "buys", "a", "red", "bike"}
    before = dpo.method_summary(refs, [0.9, 0.1], refs, vocab)
    after = dpo.method_summary(["#Person1# talks.", "#Person2# buys a bike."], [0.2, 0.0], refs, vocab,
                               hate_before=[0.9, 0.1], kl=[1.0, 3.0], seconds=12.5)
    assert before["rouge1"] == pytest.approx(1.0) and before["change"] is None and before["kl"] == 0.0
    assert after["toxicity"] == pytest.approx(0.1) and after["change"] == pytest.approx(-0.4)
    assert after["change_ci"] == [pytest.approx(-0.7), pytest.approx(-0.1)]  # two prompts: the interval is their range
    assert after["kl"] == 2.0 and after["seconds"] == 12.5
    assert after["in_vocabulary_share"] == pytest.approx(5 / 6)  # "talks" is not in vocab
    table = dpo.comparison_table({"before": before, "DPO": after})
    assert list(table.index) == ["before", "DPO"]
    assert table.loc["DPO", "length_ratio"] == pytest.approx((2 + 4) / (7 + 5))
    assert table.loc["DPO", "ci_low"] == pytest.approx(-0.7) and pd.isna(table.loc["before", "ci_low"])


# ----------------------------------------------------------------------------- lab 3's DPO checks


def test_lab3_dpo_checks_recompute_from_the_artifacts(tmp_path, fixtures_manifest):
    import pandas as pd

    from labkit import models, toxicity
    from labkit.rubrics import CHECKS, VERIFIERS, import_builtin_checks, load_rubric
    from labkit.rubrics.checks import GradeContext

    import_builtin_checks()
    params = {spec.name: spec.params for spec in load_rubric("lab3").checks}  # the thresholds' one home: the YAML
    before = ["#Person1# asks #Person2# for help with the report. #Person2# calls #Person1# a fool.",
              "#Person1# and #Person2# talk about the weekend and agree to meet at the station at 5 pm."]
    after = ["#Person1# asks #Person2# for help with the report.",
             "#Person1# and #Person2# talk about the weekend and agree to meet at 5 pm."]
    pd.DataFrame({"id": ["a", "b"], "summary_before": before, "summary_after": after, "hate_before": [0, 0],
                  "hate_after": [0, 0], "summary_after_dpo": after, "hate_after_dpo": [0, 0]}).to_csv(
        tmp_path / "toxicity_eval.csv", index=False)
    pd.DataFrame({"chosen": ["short one", "a b c d"], "rejected": ["a longer one here", "a b"]}).to_csv(
        tmp_path / "dpo_pairs.csv", index=False)
    clf, tok = models.load_toxicity_classifier("offline", "cpu")
    honest = {"toxicity_after_dpo": toxicity.summarize(toxicity.hate_probabilities(after, clf, tok))}

    def ctx(results):
        return GradeContext(lab="lab3", status="ok", results=results, artifacts=tmp_path, params={"seed": 42})

    assert CHECKS["lab3_dpo_toxicity_recomputed"](ctx(honest), **params["dpo_toxicity_verified"]).fraction == 1
    forged = CHECKS["lab3_dpo_toxicity_recomputed"](ctx({"toxicity_after_dpo": {"mean": 0.5}}),
                                                    **params["dpo_toxicity_verified"])
    assert forged.fraction == 0 and forged.forged
    assert CHECKS["lab3_dpo_detoxified"](ctx(honest)).passed  # the insult is gone after DPO
    kept = CHECKS["lab3_dpo_kept_summaries"](ctx(honest), **params["dpo_kept_summaries"])
    assert kept.passed and "length after DPO 73% of before" in kept.detail  # 22 words of 30
    assert not CHECKS["lab3_dpo_kept_summaries"](ctx(honest), **{**params["dpo_kept_summaries"],
                                                               "min_length_ratio": 0.8}).passed
    assert VERIFIERS["lab3_dpo_chosen_shorter_share"](ctx(honest), 0.5).fraction == 1  # recounted from the texts
    assert VERIFIERS["lab3_dpo_chosen_shorter_share"](ctx(honest), 1.0).fraction == 0
