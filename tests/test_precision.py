"""labkit.precision: fp32 or bf16 chosen by measuring, tested with fake measurements (both branches), and the
bf16/fp32 parity of the offline lessons where the CPU has fast bf16."""
from __future__ import annotations

import json
import logging
import os

import pytest
import torch

from labkit import precision
from labkit.config import LabkitError
from labkit.record import set_results_dir

FAST = precision.Measurement(fp32_gflops=80.0, bf16_gflops=350.0, key={"cpu": "fake Zen 5"})  # 4.4x
SLOW = precision.Measurement(fp32_gflops=69.0, bf16_gflops=9.0, key={"cpu": "fake AVX2"})     # 0.13x
EDGE = precision.Measurement(fp32_gflops=100.0, bf16_gflops=149.0)                           # 1.49x: not clearly faster


@pytest.fixture(autouse=True)
def _reset():
    yield
    precision.set_active(None)
    set_results_dir(None)


# ---------------------------------------------------------------- the parameter


@pytest.mark.parametrize(("given", "expected"), [("auto", "auto"), ("fp32", "fp32"), ("BF16", "bf16"),
                                                 ("bfloat16", "bf16"), (" float32 ", "fp32")])
def test_check_dtype_accepts(given, expected):
    assert precision.check_dtype(given) == expected


@pytest.mark.parametrize("bad", ["bf61", "fp16", "", None, 16, torch.float16])
def test_check_dtype_says_what_was_wrong_and_how_to_fix(bad):
    with pytest.raises(LabkitError) as err:
        precision.check_dtype(bad)
    text = str(err.value)
    assert repr(bad) in text and "'auto', 'fp32', 'bf16'" in text and 'dtype = "auto"' in text


# ---------------------------------------------------------------- the choice, both branches


def test_auto_picks_bf16_where_bf16_is_clearly_faster():
    choice = precision.choose("auto", "cpu", measurement=lambda: FAST)
    assert choice.dtype == "bf16" and choice.cpu_bf16 and choice.torch_dtype == torch.bfloat16
    assert choice.fp32_gflops == 80.0 and choice.bf16_gflops == 350.0 and choice.speedup == pytest.approx(4.375)
    assert "4.38x" in choice.reason and ">= 1.5x" in choice.reason
    assert choice.as_dict()["speedup"] == 4.375


@pytest.mark.parametrize("slow", [SLOW, EDGE])
def test_auto_keeps_fp32_where_bf16_is_not_clearly_faster(slow):
    choice = precision.choose("auto", "cpu", measurement=lambda: slow)
    assert choice.dtype == "fp32" and not choice.cpu_bf16 and choice.torch_dtype == torch.float32
    assert "no fast bf16" in choice.reason
    assert choice.fp32_gflops == slow.fp32_gflops and choice.bf16_gflops == slow.bf16_gflops


def test_forced_dtypes_are_honoured_and_bf16_on_a_slow_cpu_warns(caplog):
    assert precision.choose("fp32", "cpu", measurement=lambda: FAST).dtype == "fp32"
    with caplog.at_level(logging.WARNING, logger="labkit.precision"):
        choice = precision.choose("bf16", "cpu", measurement=lambda: SLOW)
    assert choice.dtype == "bf16" and "parameters cell" in choice.reason
    assert "slower" in caplog.text


def test_cuda_keeps_its_rule_and_measures_nothing(monkeypatch):
    def never():
        raise AssertionError("a GPU is not measured")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    choice = precision.choose("auto", "cuda", measurement=never)
    assert choice.dtype == "bf16" and choice.device == "cuda" and choice.speedup is None and not choice.cpu_bf16
    assert precision.choose("fp32", "cuda", measurement=never).dtype == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert precision.choose("auto", "cuda", measurement=never).dtype == "fp32"
    with pytest.raises(LabkitError, match="does not support bf16"):
        precision.choose("bf16", "cuda", measurement=never)


# ---------------------------------------------------------------- the measurement and its cache


def test_measure_times_both_dtypes():
    m = precision.measure(shapes=((8, 32, 16),), seconds_per_shape=0.01)
    assert m.fp32_gflops > 0 and m.bf16_gflops > 0 and m.speedup > 0
    assert set(m.key) == {"cpu", "torch", "capability"} and m.key["torch"] == torch.__version__


def test_measured_once_per_machine_key(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    calls = []
    monkeypatch.setattr(precision, "measure", lambda: calls.append(1) or FAST)
    key = {"cpu": "fake Zen 5", "torch": torch.__version__, "capability": "AVX512"}
    monkeypatch.setattr(precision, "machine_key", lambda: dict(key))
    first = precision.cached_measurement()
    again = precision.cached_measurement()
    assert len(calls) == 1 and first.fp32_gflops == again.fp32_gflops == 80.0 and again.bf16_gflops == 350.0
    cached = json.loads(precision.cache_path().read_text())
    assert precision.cache_path().parent == tmp_path and len(cached) == 1
    # ATEN_CPU_CAPABILITY=avx2 lowers torch's capability: another machine as far as bf16 goes
    key["capability"] = "AVX2"
    precision.cached_measurement()
    assert len(calls) == 2 and len(json.loads(precision.cache_path().read_text())) == 2
    precision.cached_measurement(refresh=True)
    assert len(calls) == 3


def test_damaged_cache_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    precision.cache_path().write_text("{not json")
    monkeypatch.setattr(precision, "measure", lambda: SLOW)
    assert precision.cached_measurement().bf16_gflops == 9.0


# ---------------------------------------------------------------- using the choice


def _tied() -> torch.nn.Module:
    model = torch.nn.Sequential(torch.nn.Embedding(10, 8), torch.nn.Linear(8, 10, bias=False))
    model[1].weight = model[0].weight
    return model


def test_inference_model_is_a_bf16_copy_only_when_cpu_bf16_is_active():
    model = _tied()
    assert precision.inference_model(model) is model  # nothing active: fp32
    precision.set_active(precision.choose("auto", "cpu", measurement=lambda: SLOW))
    assert precision.inference_model(model) is model
    precision.set_active(precision.choose("auto", "cpu", measurement=lambda: FAST))
    copy = precision.inference_model(model)
    assert copy is not model and next(copy.parameters()).dtype == torch.bfloat16 and not copy.training
    assert copy[1].weight is copy[0].weight  # tied weights stay tied
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the master weights are untouched
    assert precision.inference_model(model, "fp32") is model


def test_autocast_computes_in_bf16_with_fp32_weights_only_when_chosen():
    layer = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with precision.autocast("cpu"):
        assert layer(x).dtype == torch.float32
    precision.set_active(precision.choose("auto", "cpu", measurement=lambda: FAST))
    with precision.autocast("cpu"):
        assert layer(x).dtype == torch.bfloat16
    assert layer.weight.dtype == torch.float32


def test_fp32_step_says_why_and_restores(caplog):
    fast = precision.choose("auto", "cpu", measurement=lambda: FAST)
    precision.set_active(fast)
    with caplog.at_level(logging.INFO, logger="labkit.precision"), precision.fp32_step("PPO", "bf16 changed it"):
        assert precision.active().dtype == "fp32" and not precision.active().cpu_bf16
        model = _tied()
        assert precision.inference_model(model) is model
    assert precision.active() is fast and "PPO runs in fp32, not the chosen bf16: bf16 changed it" in caplog.text


def test_generate_validates_dtype():
    from labkit import generate

    with pytest.raises(LabkitError, match="not a precision"):
        generate.generate_ids(torch.nn.Linear(1, 1), None, ["x"], dtype="half")
    with pytest.raises(LabkitError, match="cannot be combined"):
        generate.generate_ids(torch.nn.Linear(1, 1), None, ["x"], dtype="bf16", quantize="int8")


# ---------------------------------------------------------------- start_lab


@pytest.mark.parametrize(("measured", "chosen"), [(FAST, "bf16"), (SLOW, "fp32")])
def test_start_lab_records_the_choice_and_both_speeds(tmp_path, monkeypatch, measured, chosen):
    from labkit.session import check_setup, start_lab

    monkeypatch.setattr(precision, "cached_measurement", lambda **_: measured)
    ctx = start_lab("lab1", profile="offline", output_dir=tmp_path / "o", dtype="auto", namespace={})
    assert ctx.precision.dtype == chosen and precision.active() is ctx.precision
    assert ctx.dtype == torch.float32  # the weights the lab loads: fp32 masters on a CPU either way
    info = json.loads((ctx.output_dir / "results.json").read_text())["run_info"]
    assert info["dtype"] == {"bf16": "bfloat16", "fp32": "float32"}[chosen]
    assert info["precision"]["dtype"] == chosen and info["precision"]["requested"] == "auto"
    assert info["precision"]["fp32_gflops"] == measured.fp32_gflops
    assert info["precision"]["bf16_gflops"] == measured.bf16_gflops and info["precision"]["weights"] == "float32"
    table = check_setup(ctx)
    assert table.loc["dtype", "value"] == chosen and "asked 'auto'" in table.loc["dtype", "note"]
    assert f"bf16 {measured.bf16_gflops:.1f} GFLOP/s" in table.loc["bf16 vs fp32", "value"]


def test_start_lab_refuses_an_unknown_dtype_first(tmp_path, monkeypatch):
    from labkit.session import start_lab

    monkeypatch.setattr(precision, "cached_measurement", lambda **_: pytest.fail("measured before validating"))
    with pytest.raises(LabkitError, match="dtype = 'fp8' is not a precision"):
        start_lab("lab1", profile="offline", output_dir=tmp_path, dtype="fp8", namespace={})


# ---------------------------------------------------------------- parity, where the CPU has fast bf16

FORCE_ENV = "LABKIT_BF16_PARITY"  # =1: run the parity test even on a CPU without fast bf16 (slowly)


@pytest.fixture(scope="module")
def fast_bf16_here():
    m = precision.cached_measurement()
    if not m.fast_bf16 and os.environ.get(FORCE_ENV) != "1":
        flags = ", ".join(precision.cpu_bf16_flags()) or "neither avx512_bf16 nor amx_bf16"
        pytest.skip(f"no fast bf16 on this CPU ({m.key.get('cpu')}, {flags}): bf16 ran {m.speedup:.2f}x as fast as "
                    f"fp32 (< {precision.FAST_BF16_RATIO}x), so 'auto' uses fp32 here and there is no bf16 path to "
                    f"compare; {FORCE_ENV}=1 runs it anyway")
    return m


def test_bf16_parity_with_fp32_on_the_offline_lessons(fast_bf16_here, fixtures_manifest):
    """On the same dialogues, bf16 and fp32 agree: ROUGE-1 within 0.01 with the paired CI of the difference
    including 0; the reward model's P(hate) of the same summaries within noise."""
    import numpy as np

    from labkit import data, generate, metrics, models, prompts, toxicity

    rows = data.load_dialogsum("offline")["test"].select(range(100))
    tokenizer = models.load_tokenizer("offline")
    model = models.load_seq2seq("offline", device="cpu", dtype=torch.float32)
    texts = [prompts.summarize_prompt(d) for d in rows["dialogue"]]
    refs = list(rows["summary"])
    fp32 = generate.generate(model, tokenizer, texts, "greedy", progress=False, dtype="fp32")
    bf16 = generate.generate(model, tokenizer, texts, "greedy", progress=False, dtype="bf16")
    a, b = metrics.rouge(fp32, refs, seed=0), metrics.rouge(bf16, refs, seed=0)
    diff = b.per_example["rouge1"].to_numpy() - a.per_example["rouge1"].to_numpy()
    low, high = metrics.bootstrap_ci(diff, seed=0)
    same = sum(x == y for x, y in zip(fp32, bf16))
    print(f"ROUGE-1 fp32 {a.scores['rouge1']:.4f} bf16 {b.scores['rouge1']:.4f} (CI of bf16-fp32 [{low:+.4f}, "
          f"{high:+.4f}]); {same}/{len(fp32)} summaries identical")
    assert abs(b.scores["rouge1"] - a.scores["rouge1"]) <= 0.01 and low <= 0 <= high

    # the reward model on summaries with and without insults (the training split keeps its rude ones)
    scored = list(data.load_dialogsum("offline")["train"].select(range(300))["summary"])
    classifier, ctok = models.load_toxicity_classifier("offline", device="cpu")
    hate32 = toxicity.hate_probabilities(scored, classifier, ctok)
    precision.set_active(precision.choose("bf16", "cpu", measurement=lambda: fast_bf16_here))
    hate16 = toxicity.hate_probabilities(scored, classifier, ctok)
    print(f"P(hate) of {len(scored)} summaries: mean fp32 {hate32.mean():.4f} bf16 {hate16.mean():.4f}, mean "
          f"|difference| {np.abs(hate16 - hate32).mean():.4f}, hateful (>0.5) {(hate32 > 0.5).sum()} vs {(hate16 > 0.5).sum()}")
    assert float(np.abs(hate16 - hate32).mean()) < 0.01
