"""Prompt tuning (peft PromptTuningConfig, SEQ_2_SEQ_LM) in lab 2: the course-format count at flan-t5-base shape
(20 virtual tokens for encoder and decoder = 30,720 trainable), the soft prompt's text init, what peft trains of
it, training on the shared loop with exact resume, generation through labkit, and the scale verdict."""
from __future__ import annotations

import pytest
import torch

from labkit import finetune, finetune_report, training
from labkit.config import LabkitError, fixture_dir
from labkit.training.batching import collate
from labkit.training.params import count_parameters
from labkit.training.prompt_tuning import prompt_tuning_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def base(fixtures_manifest):
    from labkit.models import load_seq2seq

    return load_seq2seq("offline", device=torch.device("cpu"), dtype=torch.float32)


def _prompt_model(base, n: int = 20, seed: int = 0):
    return finetune.make_prompt_tuning_model(base, n, init_text=finetune.PROMPT_INIT_TEXT,
                                             tokenizer_path=fixture_dir("policy"), seed=seed)


def _batch(tokenizer, n: int = 4) -> dict[str, torch.Tensor]:
    from labkit.data import load_dialogsum

    rows = list(load_dialogsum("offline")["train"].select(range(n)))
    examples = training.tokenize_for_training(rows, tokenizer, max_target_tokens=64)
    return collate(examples, tokenizer.pad_token_id)


# ---------------------------------------------------------------- counts


def test_prompt_tuning_trains_30720_parameters_at_flan_t5_base_shape():
    """20 virtual tokens for the encoder and 20 for the decoder at d_model 768: 2 x 20 x 768 = 30,720 trainable,
    in the course's format; every weight of the flan-t5-base-shaped model stays frozen."""
    from labkit.models import build_flan_t5_base_shaped

    with torch.device("meta"):  # the count is structural: no 1 GB random init, no download
        model = build_flan_t5_base_shaped(seed=0)
        assert model.config.d_model == 768
        prompt = finetune.make_prompt_tuning_model(model, 20, init_text=None, tokenizer_path=None, seed=0)
    counts = count_parameters(prompt)
    assert (counts.trainable, counts.total) == (30_720, 247_577_856 + 30_720)
    assert "trainable model parameters: 30720" in counts.course_format()
    trainable = [(n, tuple(p.shape)) for n, p in prompt.named_parameters() if p.requires_grad]
    assert trainable == [("prompt_encoder.default.embedding.weight", (40, 768))]
    assert count_parameters(model).trainable == 247_577_856  # the base given in was copied, not frozen


def test_prompt_tuning_trains_a_smaller_share_than_lora(base):
    from labkit.profiles import get_profile

    lora = count_parameters(finetune.make_lora_model(base, get_profile("offline").lora, seed=0))
    prompt = count_parameters(_prompt_model(base))
    assert prompt.trainable == 2 * 20 * base.config.d_model and prompt.percent < lora.percent


# ---------------------------------------------------------------- the soft prompt


def test_soft_prompt_starts_as_the_instruction_and_the_base_stays_untouched(base, tokenizer):
    before = {n: p.detach().clone() for n, p in base.named_parameters()}
    model = _prompt_model(base)
    ids = tokenizer(finetune.PROMPT_INIT_TEXT)["input_ids"]
    wanted = (ids * (40 // len(ids) + 1))[:40]  # peft repeats the text's tokens to fill both halves
    table = model.prompt_encoder["default"].embedding.weight
    assert torch.equal(table.detach(), base.get_input_embeddings().weight[wanted].detach())
    assert not any(p.requires_grad for n, p in model.named_parameters() if "prompt_encoder" not in n)
    assert all(torch.equal(before[n], p) and p.requires_grad for n, p in base.named_parameters())


def test_only_the_encoders_half_of_the_soft_prompt_gets_a_gradient(base, tokenizer):
    """peft 0.21 counts and saves 2 x num_virtual_tokens vectors for a seq2seq model but puts only the first
    num_virtual_tokens before the encoder's input; the decoder's half never gets a gradient."""
    model = _prompt_model(base).train()
    model(**_batch(tokenizer)).loss.backward()
    grad = model.prompt_encoder["default"].embedding.weight.grad
    assert grad[:20].abs().sum(dim=1).gt(0).all() and torch.count_nonzero(grad[20:]) == 0


def test_prompt_tuning_config_refuses_settings_that_cannot_work():
    with pytest.raises(LabkitError, match="prompt_tuning_virtual_tokens must be an integer from 1"):
        prompt_tuning_config(0, None, None)
    with pytest.raises(LabkitError, match="init text must be a non-empty string"):
        prompt_tuning_config(20, "  ", "some/tokenizer")
    with pytest.raises(LabkitError, match="needs the tokenizer's folder"):
        prompt_tuning_config(20, "Summarize the following conversation.", None)


# ---------------------------------------------------------------- training and generation


def test_prompt_tuning_lowers_the_loss_and_resumes_exactly(base, tokenizer, tmp_path):
    from labkit.data import load_dialogsum

    rows = list(load_dialogsum("offline")["train"].select(range(48)))
    cfg = training.TrainConfig(learning_rate=1.0, max_steps=6, batch_size=8, seed=3, max_target_tokens=64,
                               checkpoint_every=3)
    batch = _batch(tokenizer, 8)
    straight = _prompt_model(base)
    with torch.no_grad():
        loss_before = float(straight(**batch).loss)
    run = training.train(straight, tokenizer, rows, cfg, progress=False)
    with torch.no_grad():
        assert float(straight(**batch).loss) < loss_before - 0.05
    assert run.params.trainable == 5_120 and run.steps == 6
    # killed after step 3, resumed from its checkpoint: the same soft prompt, bit for bit
    resumed = _prompt_model(base)
    training.train(resumed, tokenizer, rows, cfg, output_dir=tmp_path, progress=False, stop_after_steps=3)
    again = _prompt_model(base)
    training.train(again, tokenizer, rows, cfg, output_dir=tmp_path, resume=True, progress=False)
    assert torch.equal(again.prompt_encoder["default"].embedding.weight, straight.prompt_encoder["default"].embedding.weight)


def test_labkit_generate_puts_the_soft_prompt_before_the_input(base, tokenizer):
    """labkit.generate runs a CPU encoder-decoder's encoder itself (padding-free chunks), which would skip a soft
    prompt; for a prompt-learning model it hands input_ids to peft's generate, as peft requires. What the encoder
    reads is checked directly: the soft prompt's vectors, then the input's own embeddings (whether the prompt
    changes the greedy text depends on the weights, so that is not asserted)."""
    from labkit import generate, prompts
    from labkit.data import load_dialogsum

    model = _prompt_model(base).eval()
    n = model.peft_config["default"].num_virtual_tokens
    with torch.no_grad():  # a large prompt, far from the text init and from every word embedding
        model.prompt_encoder["default"].embedding.weight.mul_(25.0)
    soft = model.prompt_encoder["default"].embedding.weight[:n].detach()  # the encoder's half
    dialogues = load_dialogsum("offline")["validation"]["dialogue"][:3]
    texts = [prompts.summarize_prompt(d) for d in dialogues]
    seen: list[torch.Tensor] = []

    def record(module, args, kwargs):
        embeds = kwargs.get("inputs_embeds")
        if embeds is None:  # the encoder was given token ids: embed them as it will
            embeds = module.embed_tokens(kwargs.get("input_ids", args[0] if args else None))
        seen.append(embeds.detach().clone())

    hook = model.get_base_model().encoder.register_forward_pre_hook(record, with_kwargs=True)
    try:
        ours = generate.generate_ids(model, tokenizer, texts[:1], "greedy", progress=False)
    finally:
        hook.remove()
    ids = tokenizer(texts[0], return_tensors="pt")["input_ids"]
    assert len(seen) == 1 and seen[0].shape == (1, n + ids.shape[1], base.config.d_model)
    assert torch.equal(seen[0][0, :n], soft)  # the soft prompt first ...
    with torch.no_grad():
        assert torch.allclose(seen[0][0, n:], base.get_input_embeddings()(ids)[0])  # ... then the input itself
    enc = tokenizer(texts[0], return_tensors="pt")
    with torch.no_grad():
        direct = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                generation_config=generate.make_config("greedy"))[0].tolist()
    assert ours[0] == [t for t in direct[1:] if t != tokenizer.pad_token_id]
    # a batch of several prompts: every row gets the soft prompt
    seen.clear()
    hook = model.get_base_model().encoder.register_forward_pre_hook(record, with_kwargs=True)
    try:
        generate.generate_ids(model, tokenizer, texts, "greedy", progress=False)
    finally:
        hook.remove()
    rows = torch.cat(seen)
    assert rows.shape[0] == len(texts) and all(torch.equal(row[:n], soft) for row in rows)


# ---------------------------------------------------------------- what the lab says about scale


def test_share_of_gain_and_the_verdict_follow_the_numbers():
    rouge = {"original": {"rouge1": {"mean": 0.2}}, "full_ft": {"rouge1": {"mean": 0.7}},
             "prompt_tuning": {"rouge1": 0.6}, "lora": {"rouge1": {"mean": 0.3}}}
    assert finetune_report.share_of_gain(rouge, "prompt_tuning") == pytest.approx(0.8)
    assert finetune_report.share_of_gain(rouge, "lora") == pytest.approx(0.2)
    with pytest.raises(LabkitError, match="no ROUGE for \\['qlora'\\]"):
        finetune_report.share_of_gain(rouge, "qlora")
    with pytest.raises(LabkitError, match="scored exactly what original did"):
        finetune_report.share_of_gain({**rouge, "full_ft": {"rouge1": 0.2}}, "lora")
    most = finetune_report.prompt_tuning_verdict(0.88, 0.37, (0.008, -0.02, 0.035))
    assert "got 88% of full fine-tuning's gain" in most and "0.37%" in most and "~10B" in most
    assert "did no better than the hand-written prompt" in most and "[-0.020, +0.035]" in most
    assert "beat the hand-written prompt" in finetune_report.prompt_tuning_verdict(0.88, 0.37, (0.05, 0.02, 0.08))
    assert "Part of it" in finetune_report.prompt_tuning_verdict(0.5, 0.01)
    little = finetune_report.prompt_tuning_verdict(-0.1, 0.01, (-0.2, -0.3, -0.1))
    assert "Little of it" in little and "scored below the hand-written prompt" in little
