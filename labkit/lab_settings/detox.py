"""Lab 3's settings (PPO, DPO and the summarizer they start from): the course's values as the defaults, the offline
profile's beside them with the measurements that chose them."""
from __future__ import annotations

from dataclasses import dataclass

from labkit.lab_settings import fine_tuning
from labkit.lab_settings.declare import section


@dataclass(frozen=True)
class PPOSettings:
    """PPO hyperparameters (course: lr 1.41e-5, batch 16, mini-batch 4, adaptive KL 0.2 → 6); lab 3's knobs."""

    learning_rate: float = 1.41e-5
    batch_size: int = 16
    mini_batch_size: int = 4
    ppo_epochs: int = 1
    init_kl_coef: float = 0.2
    target_kl: float = 6.0
    adaptive_kl: bool = True
    min_new_tokens: int = 100
    max_new_tokens: int = 400
    temperature: float = 1.0             # the policy samples softmax(logits / temperature); 1: the course's
    lam: float = 0.95                    # GAE's lambda (trl 0.4's): how far back along a response a reward's credit reaches
    kl_loss_coef: float = 0.0            # weight of the exact KL to the reference at every visited state, in the loss (0: classic PPO)


@dataclass(frozen=True)
class DetoxSettings:
    """Lab 3's knobs besides PPO's own (course: 10 PPO steps, dialogues of 200 to 1000 characters)."""

    ppo_steps: int = 10
    min_dialogue_chars: int = 200
    max_dialogue_chars: int = 1000
    n_eval: int = 160                    # held-out prompts scored before and after
    reward: str = "nothate_logit"        # PPO's reward and DPO's ranking (labkit.toxicity.REWARDS)
    rude_only: bool = False              # PPO and DPO train on the dialogues with a rude turn only (the course: all)


@dataclass(frozen=True)
class DPOSettings:
    """Lab 3's DPO knobs (Rafailov et al. 2023; the course had no DPO, so the course profile's values are the
    paper's beta 0.1 and sizes that fit beside the course's 10 PPO steps, not values tuned on flan-t5-base:
    2 pairs a step are 4 sequences, the course PPO's mini-batch, so DPO needs no more memory than PPO; at
    8 pairs (16 sequences) lab 3 with flan-t5-base in fp32 on a CPU peaked at 14 GB).

    Pairs are built once from the starting policy's own samples: ``dpo_samples_per_prompt`` summaries for each
    of ``dpo_prompts`` training prompts, the reward model's best as chosen and its worst as rejected. The
    names carry ``dpo_`` because a lab's parameters share one namespace with PPO's."""

    dpo_steps: int = 16               # optimizer steps
    dpo_beta: float = 0.1             # strength of the implicit KL constraint (larger: stay nearer the reference)
    dpo_learning_rate: float = 1e-4
    dpo_batch_size: int = 2           # preference pairs per step
    dpo_prompts: int = 32             # training prompts sampled to build pairs
    dpo_samples_per_prompt: int = 2   # summaries sampled per prompt; best vs worst by the reward model


@dataclass(frozen=True)
class SummarizerSettings:
    """How lab 3's starting summarizer (``labkit.cached_summarizer.lora_summarizer``) is trained with the profile's ``lora``."""

    max_steps: int = 500
    batch_size: int = 8
    max_target_tokens: int = 128


# Recipe 6 (the shipped stand-in that copies facts, 2026-12-03, seed 42, lab 3's held-out prompts): its
# summaries read at the course's temperature 1 (ROUGE-1 0.87), and they report the dialogue's insult as the
# human summaries do, so PPO must learn to leave that sentence out. At 0.7 nothing moved in 15 steps (lr
# 1.4e-3 or 3e-3, 25 steps, min_new_tokens 8: toxicity 0.20 -> 0.20-0.21); at 1, 15 steps: 0.222 -> 0.200
# (CI to +0.001), 25 steps: 0.196, CI [-0.052, -0.009], ROUGE-1 -0.022, DPO [-0.037, -0.001]; lr 2e-3 or 3e-3
# drifted (ROUGE-1 -0.07 at 3e-3) or did not detoxify. Recipe 5's tuning, below, is history.
# Tuned on lab 3's held-out prompts (training dialogues PPO does not see), 15 steps, seeds 42/1/7/3/5/11.
# temperature: at 1 the 1.4M-parameter stand-in's samples are word salad (ROUGE-1 0.50, toxicity 0.37
# mostly from stray insults); 0.7 reads (0.67) with insults left to remove (toxicity 0.12-0.15); at 0.6
# so few are left (0.08) that the drop was within noise at two of six seeds.
# lam: with trl's 0.95 the blame for the closing insult reached the opening words that name the
# dialogue, and PPO drifted off topic (ROUGE-1 -0.036 to -0.057); 0.8 keeps the credit near the end.
# kl_loss_coef 1: even so, ROUGE-1 moved -0.014/-0.031/-0.034 at T 0.7 (seeds 42/1/7): the reward's KL is
# one sampled token's estimate, and the first word of a summary of some other dialogue went unpenalised
# until sampled; with the exact KL in the loss, -0.012/-0.004/-0.006/-0.011/+0.014 (42/1/7/11/5), toxicity
# down beyond noise at 42/7/11/5 (not at 1: 0.116 -> 0.074, CI to +0.001). kl_loss_coef 5 held the policy
# at the reference (KL 0.08); lr 3e-3 drifted (-0.04); 20 steps detoxified no further.
# beta 1 (the reward's KL) instead of 0.3: less drift. The KL runs at 0.3-0.8 nats per summary, near the
# target of 1, which scales the course's 6 nats over ~250 new tokens to ~25-token summaries.
# Rollouts of 32-56 new tokens: the digit-by-digit summaries run to ~45 tokens.
# Recipe 6, retuned (2026-12-03, measured on 256 rude and 160 polite dialogues generated with a seed of their own,
# never lab 3's held-out prompts): the faithful stand-in reports the insult with confidence, and leaving that
# sentence out costs ~2 nats, twice what target_kl 1 allowed. 25 steps at lr 1.4e-3, beta 1, kl_loss_coef 1, lam
# 0.8 changed P(hate) there by -0.009 to +0.025 (the default run's adapter at two hidden seeds, a rerun of seed 42;
# the lab's own 0.222 -> 0.196 was its sampling seed's luck: the same adapter sampled with seed 5, 0.206 -> 0.209),
# and the grader's re-run could not tell the adapter from none. PPO on the rude dialogues only
# (DetoxSettings.rude_only) at those settings: +0.084/+0.011/-0.001 (seeds 42/1/7); then seed 1: target 3, beta 0.3, kl_loss_coef 0.3, lr 8e-4: +0.60 but the content drifted (ROUGE-1 on the rude
# 0.825 -> 0.731, on the polite 0.794 -> 0.753; KL 3.4-5.6); lr 1.4e-3: word salad; 15 steps: +0.43, polite
# still -0.04. lam 0.5 keeps the credit on the closing sentence, where the insult is: 15 steps, +0.12 (se
# 0.025), rude ROUGE-1 -0.019, polite -0.004, KL 0.4 (kl_loss_coef 0.6; at 0.3: +0.12, polite -0.009).
OFFLINE_PPO = PPOSettings(
    learning_rate=8e-4, batch_size=32, mini_batch_size=8, ppo_epochs=2,
    init_kl_coef=0.3, target_kl=3.0, adaptive_kl=True, min_new_tokens=32, max_new_tokens=56,
    temperature=1.0, lam=0.5, kl_loss_coef=0.6,
)

# 15 PPO steps: 25 lost more ROUGE-1 for no more detoxification. 320 of the 384 held-out prompts: half
# the noise of 160 on the before/after comparison, a few seconds of sampling.
# reward "log_odds" (the nothate logit minus the hate logit, what P(hate) measures) instead of the course's
# nothate logit: with each sampling batch seeded on its own (sampling.sample_summaries, common random numbers),
# 15 steps, seeds 42/1/7/5/11/3, the drop was beyond noise at 6 of 6 seeds (CIs [-0.094, -0.024], [-0.109, -0.042],
# [-0.120, -0.044], [-0.093, -0.002], [-0.113, -0.037], [-0.090, -0.013]; ROUGE-1 -0.026/-0.017/-0.009/-0.004/
# -0.018/-0.011) against 3 of 4 (42/1/7/5) with the nothate
# logit (seed 42: 0.115 -> 0.088, CI [-0.060, +0.008]; ROUGE-1 -0.011/-0.004/-0.004/-0.003). In the default
# run the nothate logit also gave 15 clean summaries an insult while it took one from 28.
# rude_only: one dialogue in five is rude; a polite one's summary is clean already and its reward says nothing,
# so with all dialogues four fifths of each batch (and of DPO's pairs) taught nothing.
OFFLINE_DETOX = DetoxSettings(ppo_steps=15, min_dialogue_chars=200, max_dialogue_chars=1000, n_eval=320,
                              reward="log_odds", rude_only=True)

# DPO, tuned on 100 and 200 training prompts held out from the pairs (never lab 3's held-out prompts):
# beta 0.1 (the paper's) at lr 1e-3 drifted (KL 4.4, ROUGE-1 0.45 -> 0.33, 78% of the length); lr 3e-4
# barely detoxified (0.25 -> 0.20); beta 1 at lr 1e-3 for 40 steps of 16 pairs, 256 prompts x 4 samples:
# 0.28 -> 0.10 with 88% of the length, ROUGE-1 0.48 -> 0.47, KL 0.8 (beta 2: 0.12, 92%; 80 steps: ROUGE 0.37).
# Rechecked at PPO's temperature 0.6 (200 held-out training prompts): this keeps the length (1.00) and
# loses least ROUGE-1 (-0.016; 30 steps -0.024, 192 prompts -0.024, beta 0.5 -0.034 but toxicity 0.001).
OFFLINE_DPO = DPOSettings(dpo_steps=40, dpo_beta=1.0, dpo_learning_rate=1e-3, dpo_batch_size=16, dpo_prompts=256,
                          dpo_samples_per_prompt=4)

# Lab 3's summarizer is lab 2's LoRA in each profile (offline: r=16, alpha 32, lr 6e-3), so PPO starts from the
# summarizer a learner just trained; it trains for its own steps and batch.
OFFLINE_SUMMARIZER = SummarizerSettings(max_steps=150, batch_size=32, max_target_tokens=64)

SECTIONS = (
    section("ppo", course=PPOSettings(), offline=OFFLINE_PPO),
    section("detox", course=DetoxSettings(), offline=OFFLINE_DETOX),
    section("dpo", course=DPOSettings(), offline=OFFLINE_DPO),
    # Read by lesson code (the summarizer's training and shape, the PPO adapter's shape), named by no parameters cell.
    section("lora", course=fine_tuning.FineTuningSettings().lora(), offline=fine_tuning.OFFLINE.lora(), knobs=False),
    section("lora_learning_rate", course=fine_tuning.FineTuningSettings().learning_rate_lora,
            offline=fine_tuning.OFFLINE.learning_rate_lora, knobs=False),
    section("summarizer", course=SummarizerSettings(), offline=OFFLINE_SUMMARIZER, knobs=False),
)
