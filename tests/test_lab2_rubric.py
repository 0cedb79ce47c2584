"""Lab 2's rubric checks for prompt tuning and QLoRA, recomputed from artifacts: the saved soft prompt counted and
re-run on hidden dialogues, prompt tuning's text and ROUGE from summaries.csv, QLoRA passed when skipped with a
reason and recomputed when it ran, and the two new exercises' verifiers."""
from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")

COLUMNS = {"original": "original_model_summaries", "full_ft": "instruct_model_summaries", "lora": "peft_model_summaries",
           "prompt_tuning": "prompt_tuning_model_summaries", "qlora": "qlora_model_summaries"}


def _ctx(tmp_path: Path, results: dict):
    from labkit.rubrics.checks import GradeContext
    return GradeContext(lab="lab2", status="ok", results=results, artifacts=tmp_path, params={"seed": 42})


def _write(tmp_path: Path, preds: dict[str, list[str]], test) -> None:
    import pandas as pd
    frame = {"id": test["id"], "human_baseline_summaries": test["summary"]}
    frame.update({COLUMNS[m]: p for m, p in preds.items()})
    pd.DataFrame(frame).to_csv(tmp_path / "summaries.csv", index=False)


@pytest.fixture
def test_rows():
    from labkit.profiles import get_profile
    from labkit.data import load_dialogsum
    return load_dialogsum(get_profile("offline"))["test"].select(range(12))


def _head(text: str, share: float) -> str:
    """The first ``share`` of a summary's words (whole words: a cut word would leave the vocabulary)."""
    words = text.split()
    return " ".join(words[: max(1, int(len(words) * share))])


def _preds(refs: list[str]) -> dict[str, list[str]]:
    return {"original": [_head(r, 0.3) for r in refs], "full_ft": list(refs), "lora": [_head(r, 0.5) for r in refs],
            "prompt_tuning": [_head(r, 0.7) for r in refs]}


def test_prompt_tuning_reads_recomputes_rouge_and_text(tmp_path, test_rows):
    from labkit.rubrics import CHECKS
    refs = list(test_rows["summary"])
    _write(tmp_path, _preds(refs), test_rows)
    good = CHECKS["lab2_prompt_tuning_reads"](_ctx(tmp_path, {}))
    assert good.fraction == 1 and "prompt tuning ROUGE-1" in good.detail
    looping = {**_preds(refs), "prompt_tuning": [r + " pm pm pm" for r in refs]}  # a word three times in a row
    _write(tmp_path, looping, test_rows)
    out = CHECKS["lab2_prompt_tuning_reads"](_ctx(tmp_path, {}))
    assert out.fraction == 0.5 and "degenerate 100.0%" in out.detail  # beats the original, but does not read
    _write(tmp_path, {**_preds(refs), "prompt_tuning": ["zq xv"] * len(refs)}, test_rows)
    assert CHECKS["lab2_prompt_tuning_reads"](_ctx(tmp_path, {})).fraction == 0


def test_qlora_skipped_with_a_reason_passes_and_a_run_is_recomputed(tmp_path, test_rows):
    from labkit.metrics import rouge
    from labkit.rubrics import CHECKS
    refs = list(test_rows["summary"])
    preds = _preds(refs)
    _write(tmp_path, preds, test_rows)
    skipped = CHECKS["lab2_qlora"](_ctx(tmp_path, {"qlora": {"skipped": "bitsandbytes is not installed"}}))
    assert skipped.fraction == 1 and "not counted against you" in skipped.detail
    assert CHECKS["lab2_qlora"](_ctx(tmp_path, {})).fraction == 0  # not recorded at all
    ran = {"qlora": {"ran": True, "device": "cuda"}}
    assert "no qlora_model_summaries" in CHECKS["lab2_qlora"](_ctx(tmp_path, ran)).detail
    preds["qlora"] = [_head(r, 0.5) for r in refs]
    _write(tmp_path, preds, test_rows)
    assert CHECKS["lab2_qlora"](_ctx(tmp_path, ran)).fraction == 1
    # where QLoRA ran, its recorded ROUGE is recomputed too; a forged one is caught
    honest = {m: rouge(p, refs, n_resamples=50).as_dict() for m, p in preds.items()}
    assert CHECKS["lab2_rouge_recomputed"](_ctx(tmp_path, {"rouge": honest})).fraction == 1
    forged = {**honest, "qlora": {"rouge1": {"mean": 0.99, "ci": [0.98, 1.0]}}}
    out = CHECKS["lab2_rouge_recomputed"](_ctx(tmp_path, {"rouge": forged}))
    assert out.forged and out.fraction == pytest.approx(4 / 5)


def test_a_missing_entry_fails_whichever_side_lacks_it(tmp_path, test_rows):
    """Recorded against recomputed ROUGE (one check for labs 1 and 2): a model saved in summaries.csv but not
    recorded fails (nothing claimed: not forged); one recorded with nothing saved to recompute it from fails as
    a recorded number the artifacts do not back (forged)."""
    from labkit.metrics import rouge
    from labkit.rubrics import CHECKS
    refs = list(test_rows["summary"])
    preds = _preds(refs)
    _write(tmp_path, preds, test_rows)
    honest = {m: rouge(p, refs, n_resamples=50).as_dict() for m, p in preds.items()}
    unrecorded = CHECKS["lab2_rouge_recomputed"](_ctx(tmp_path, {"rouge": {m: v for m, v in honest.items()
                                                                           if m != "lora"}}))
    assert unrecorded.fraction == pytest.approx(3 / 4) and not unrecorded.forged
    assert "lora (not recorded" in unrecorded.detail, unrecorded.detail
    unsaved = CHECKS["lab2_rouge_recomputed"](_ctx(tmp_path, {"rouge": {**honest, "qlora": honest["lora"]}}))
    assert unsaved.fraction == pytest.approx(4 / 5) and unsaved.forged
    assert "qlora (recorded" in unsaved.detail and "nothing saved" in unsaved.detail, unsaved.detail
    assert CHECKS["lab2_rouge_recomputed"](_ctx(tmp_path, {"rouge": {}})).fraction == 0


def test_new_exercises_are_verified_from_artifacts(tmp_path, test_rows):
    from labkit.rubrics import VERIFIERS
    from labkit.rubrics.checks import rouge_of
    refs = list(test_rows["summary"])
    preds = _preds(refs)
    _write(tmp_path, preds, test_rows)
    o, f, p = (rouge_of(preds[m], refs).scores["rouge1"] for m in ("original", "full_ft", "prompt_tuning"))
    ctx = _ctx(tmp_path, {})
    assert VERIFIERS["lab2_prompt_gain_share"](ctx, (p - o) / (f - o)).fraction == 1
    assert VERIFIERS["lab2_prompt_gain_share"](ctx, 100 * (p - o) / (f - o)).fraction == 0  # percent, not a share
    assert VERIFIERS["lab2_nf4_weights_gb"](ctx, 0.12767).fraction == 1
    assert VERIFIERS["lab2_nf4_weights_gb"](ctx, 247_577_856 * 0.5 / 1e9).fraction == 0  # forgot the constants


def test_saved_soft_prompt_is_counted_and_regenerated(tmp_path, fixtures_manifest):
    """The grader loads prompt_adapter/ on the base, counts the soft prompt and re-runs it on hidden dialogues. A
    soft prompt that was never trained (its initial text's embeddings) writes the base model's summaries: it
    earns no re-run points, even with a summaries.csv it did write. (A trained one earns them all: the slow lab 2
    test grades the lab's own soft prompt, on a fresh batch's dialogues each time.)"""
    import pandas as pd
    import torch

    from labkit import data, finetune, generate, models, prompts
    from labkit.config import fixture_dir
    from labkit.profiles import get_profile
    from labkit.rubrics import CHECKS
    p = get_profile("offline")
    model = finetune.make_prompt_tuning_model(models.load_seq2seq(p, torch.device("cpu"), torch.float32), 20,
                                              init_text=finetune.PROMPT_INIT_TEXT, tokenizer_path=fixture_dir("policy"))
    model.save_pretrained(tmp_path / "prompt_adapter")
    tok = models.load_tokenizer(p)
    test = data.load_dialogsum(p)["test"].select(range(4))
    made = generate.generate(model, tok, [prompts.summarize_prompt(d) for d in test["dialogue"]], "greedy", progress=False)
    frame = {"id": test["id"], "human_baseline_summaries": test["summary"],
             **{c: made for m, c in COLUMNS.items() if m != "qlora"}}
    pd.DataFrame(frame).to_csv(tmp_path / "summaries.csv", index=False)
    n = models.count_parameters(model).trainable
    assert n == 5_120
    key = "trainable_params.prompt_tuning.trainable"
    ctx = _ctx(tmp_path, {"trainable_params": {"prompt_tuning": {"trainable": n}}})
    assert CHECKS["adapter_trainable_params"](ctx, adapter="prompt_adapter", key=key).fraction == 1
    ctx.hidden_seed = 1
    regen = CHECKS["lab2_adapter_regenerates"](ctx, n_hidden=16, adapter="prompt_adapter",
                                               column="prompt_tuning_model_summaries")
    assert regen.fraction == 0 and not regen.forged, regen.detail
    assert "learned nothing" in regen.detail and "reproduced" in regen.detail
    ctx.results["trainable_params"]["prompt_tuning"]["trainable"] = 49_152  # LoRA's count, claimed for the prompt
    assert CHECKS["adapter_trainable_params"](ctx, adapter="prompt_adapter", key=key).forged
    pd.DataFrame({**frame, "prompt_tuning_model_summaries": ["#Person1# wins the lottery twice."] * 4}).to_csv(
        tmp_path / "summaries.csv", index=False)
    fake = CHECKS["lab2_adapter_regenerates"](_ctx(tmp_path, {}), n_hidden=16, adapter="prompt_adapter",
                                              column="prompt_tuning_model_summaries")
    assert fake.forged and fake.fraction == 0
