"""QLoRA in lab 2: the NF4 arithmetic, the support probe's answer with and without bitsandbytes, the cost table's
4-bit weights, and -- where bitsandbytes is installed and its 4-bit layers work here -- LoRA on the 4-bit tiny
model, counted and trained like LoRA, and bitsandbytes' CPU trap after an inference forward."""
from __future__ import annotations

import sys

import pytest
import torch

from labkit import finetune, finetune_report, training
from labkit.training import qlora

pytestmark = pytest.mark.usefixtures("one_thread")


def test_nf4_bytes_per_param_follow_qlora_arithmetic():
    assert qlora.nf4_bytes_per_param() == pytest.approx((4 + 8 / 64 + 32 / (64 * 256)) / 8)
    assert qlora.nf4_bytes_per_param(double_quant=False) == pytest.approx((4 + 32 / 64) / 8)
    # QLoRA's section 3: double quantization takes the constants from 0.5 to 0.127 bits per weight
    assert 8 * qlora.nf4_bytes_per_param() - 4 == pytest.approx(0.127, abs=5e-4)
    assert 247_577_856 * qlora.nf4_bytes_per_param() / 1e9 == pytest.approx(0.1277, abs=1e-4)
    with pytest.raises(Exception, match="blocksize"):
        qlora.nf4_bytes_per_param(blocksize=0)


def test_support_without_bitsandbytes_says_why_and_how(monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import raises ImportError
    support = qlora.qlora_support("cpu")
    assert not support.ok and "bitsandbytes is not installed" in support.reason
    assert "genai-labs[qlora]" in support.reason
    record = support.as_dict()
    assert record["skipped"] == support.reason and "ran" not in record and record["device"] == "cpu"
    assert str(support).startswith("QLoRA skipped: bitsandbytes is not installed")
    with pytest.raises(Exception, match="QLoRA needs bitsandbytes"):
        qlora.load_4bit_seq2seq("offline", "cpu")
    off = qlora.QloraSupport.off("qlora = False in the parameters cell")
    assert off.as_dict()["skipped"] == "qlora = False in the parameters cell"


def test_nf4_config_is_the_course_notes_one():
    config = qlora.nf4_config()
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant
    assert config.bnb_4bit_compute_dtype == torch.bfloat16


def test_costs_table_uses_measured_4bit_weights():
    from labkit.training.params import ParamCount

    run = training.TrainResult(steps=2, losses=[1.0, 0.9], seconds_per_step=0.3, peak_memory_mb=140.0,
                               memory_method="test", params=ParamCount(trainable=1_000, total=1_000_000))
    table = finetune_report.costs_table({"lora": run, "qlora": run}, {"lora": 0.2, "qlora": 0.2}, {"qlora": 1.5})
    rule = training.estimate_memory(1_000_000, 1_000)
    assert table.loc["lora", "weights_mb"] == pytest.approx(rule.weights_mb)
    assert table.loc["qlora", "weights_mb"] == 1.5
    assert table.loc["qlora", "estimate_mb"] == pytest.approx(1.5 + rule.training_mb - rule.weights_mb)


# ---------------------------------------------------------------- with bitsandbytes (skipped without it)


@pytest.fixture(scope="module")
def support():
    pytest.importorskip("bitsandbytes")
    found = qlora.qlora_support("cpu")
    if not found.ok:
        pytest.skip(f"bitsandbytes is installed, but: {found.reason}")
    return found


def test_qlora_counts_and_trains_like_lora(support, fixtures_manifest, tokenizer):
    from labkit.profiles import get_profile
    from labkit.data import load_dialogsum
    from labkit.models import load_seq2seq
    from labkit.training.batching import collate
    from labkit.training.params import count_parameters

    assert support.as_dict()["ran"] and support.bitsandbytes
    p = get_profile("offline")
    model = finetune.make_qlora_model(p, p.lora, device="cpu", seed=0)
    lora = finetune.make_lora_model(load_seq2seq(p, torch.device("cpu"), torch.float32), p.lora, seed=0)
    assert count_parameters(model) == count_parameters(lora)  # 4-bit weights count the weights they pack
    assert any(type(m).__name__ == "Linear4bit" for m in model.modules())
    assert qlora.footprint_mb(model) < 0.5 * qlora.footprint_mb(lora)
    rows = list(load_dialogsum(p)["train"].select(range(32)))
    examples = training.tokenize_for_training(rows[:8], tokenizer, max_target_tokens=64)
    batch = collate(examples, tokenizer.pad_token_id)
    model.train()  # an eval-mode forward without gradients would spring bitsandbytes' CPU trap (next test)
    with torch.no_grad():
        before = float(model(**batch).loss)
    cfg = training.TrainConfig(learning_rate=6e-3, max_steps=6, batch_size=8, seed=0, max_target_tokens=64)
    training.train(model, tokenizer, rows, cfg, progress=False)
    model.train()
    with torch.no_grad():
        assert float(model(**batch).loss) < before - 0.05


def test_the_cpu_trap_is_reported_when_present(support):
    """bitsandbytes 0.50's CPU path repacks 4-bit weights at the first eval-mode forward without gradients, after
    which no gradient flows through them: the probe says so, and the lab trains before it generates."""
    trapped = not qlora._probe_after_inference(torch.device("cpu"))
    assert (support.caveat is not None) == trapped
    if trapped:
        assert "train a 4-bit model before generating" in support.caveat
