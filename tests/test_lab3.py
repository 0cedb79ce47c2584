"""Lab 3 end to end: the notebook runs under papermill and writes the records and
artifacts the grader reads; the full default run (slow) meets the bar."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from labkit.config import repo_root

NOTEBOOK = repo_root() / "labs" / "lab3_ppo_detox.ipynb"
RECORDS = ("toxicity_before", "toxicity_after", "ppo_log", "trainable_params", "kl_final", "toxicity_change",
           "dpo_log", "toxicity_after_dpo", "toxicity_change_dpo", "ppo_vs_dpo", "facts",
           "exercise_1", "exercise_2", "exercise_3", "exercise_4")
PARAMETERS = ("profile", "ppo_steps", "batch_size", "mini_batch_size", "ppo_epochs", "learning_rate", "init_kl_coef",
              "target_kl", "adaptive_kl", "min_new_tokens", "max_new_tokens", "temperature", "lam", "kl_loss_coef", "n_eval", "reward", "dpo_steps", "dpo_beta", "dpo_learning_rate", "dpo_batch_size",
              "dpo_prompts", "dpo_samples_per_prompt", "seed", "output_dir")


def run_lab(tmp_path: Path, **parameters) -> tuple[dict, Path]:
    import papermill

    out = tmp_path / "out"
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "lab3.ipynb"), parameters={"output_dir": str(out), **parameters},
                               kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    return json.loads((out / "results.json").read_text()), out


def test_notebook_is_committed_clean_with_stable_ids_and_parameters():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    ids = [cell.id for cell in nb.cells]
    assert len(set(ids)) == len(ids) and all(i.startswith("lab3-") for i in ids)
    assert {"lab3-ex1", "lab3-ex2", "lab3-ex3", "lab3-ex4"} <= set(ids)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for name in PARAMETERS:
        assert f"\n{name} = " in "\n" + tagged[0].source, name
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, cell.id
    for k in (1, 2, 3, 4):
        src = next(c.source for c in nb.cells if c.id == f"lab3-ex{k}")
        region_end = src.index("### END SOLUTION")
        assert "### BEGIN SOLUTION" in src and src.index(f'labkit.record("exercise_{k}"') > region_end


def test_dpo_samples_exactly_as_ppos_evaluation():
    """DPO's pairs and its evaluation use sampling.sample_summaries with the arguments PPO's evaluation passes (bar
    the seed), so a change to PPO's sampling (a temperature, say) reaches DPO too."""
    import ast

    cells = {c.id: c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells}

    def call_keywords(source: str, func: str) -> dict[str, str]:
        calls = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call) and ast.unparse(n.func) == func]
        assert len(calls) == 1, (func, source)
        return {k.arg: ast.unparse(k.value) for k in calls[0].keywords if k.arg not in ("seed", "progress")}

    ppo_eval = call_keywords(cells["lab3-after"], "sample_summaries")
    assert ppo_eval == call_keywords(cells["lab3-before"], "sample_summaries")
    assert call_keywords(cells["lab3-dpo-policy"], "dict") == ppo_eval
    assert "**sampling" in cells["lab3-dpo-pairs"]
    assert "sample_summaries(dpo_policy, tokenizer, eval_prompts, seed=seed, **sampling)" in cells["lab3-dpo-eval"]
    assert "from labkit.sampling import sample_summaries" in cells["lab3-setup"]


def test_lab_runs_and_writes_the_graded_records(tmp_path, fixtures_manifest):
    # A short run (3 PPO steps, 2 DPO steps, 16 prompts): the wiring, not the bar.
    results, out = run_lab(tmp_path, ppo_steps=3, batch_size=8, mini_batch_size=4, n_eval=16,
                           min_new_tokens=8, max_new_tokens=12, dpo_steps=2, dpo_prompts=8, dpo_samples_per_prompt=2,
                           dpo_batch_size=4)
    for name in RECORDS:
        assert name in results, name
    assert [e["step"] for e in results["ppo_log"]] == [1, 2, 3]
    for key in ("reward_mean", "kl", "kl_sampled", "beta", "policy_loss", "value_loss", "entropy"):
        assert key in results["ppo_log"][0]
    assert results["ppo_log"][0]["kl"] == pytest.approx(0.0, abs=1e-4)  # policy == reference at step 0
    assert results["kl_final"] == results["ppo_log"][-1]["kl"]
    assert all(e["kl"] >= 0 for e in results["ppo_log"])  # the exact KL (the sampled estimate may be negative)
    for name in ("toxicity_before", "toxicity_after", "toxicity_after_dpo"):
        assert set(results[name]) == {"mean", "std", "share_above_0_5", "n"} and results[name]["n"] == 16
    assert results["trainable_params"]["trainable"] == results["trainable_params"]["lora"] + results["trainable_params"]["value_head"]
    table = pd.read_csv(out / "toxicity_eval.csv")
    assert list(table.columns) == ["id", "summary_before", "summary_after", "hate_before", "hate_after",
                                   "summary_after_dpo", "hate_after_dpo"]
    assert table.hate_after_dpo.mean() == pytest.approx(results["toxicity_after_dpo"]["mean"], rel=1e-5)
    assert [e["step"] for e in results["dpo_log"]] == [1, 2]
    assert results["dpo_log"][0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference at DPO's start
    assert results["toxicity_change_dpo"]["n"] == 16 and len(results["toxicity_change_dpo"]["ci"]) == 2
    assert set(results["ppo_vs_dpo"]) == {"before", "PPO", "DPO"}
    # the exact KL along the summaries, never negative (the sampled log-ratio's mean can be, on any machine)
    assert results["ppo_vs_dpo"]["DPO"]["kl"] >= 0 and results["ppo_vs_dpo"]["PPO"]["kl"] >= 0
    assert results["ppo_vs_dpo"]["before"]["kl"] == 0.0 and results["ppo_vs_dpo"]["PPO"]["seconds"] > 0
    assert set(results["facts"]) == {"before", "PPO", "DPO"}
    assert all(f["n_outputs"] == 16 and 0 <= f["invented_rate"] <= 1 for f in results["facts"].values())
    assert results["settings"]["dpo_steps"] == 2 and results["settings"]["dpo_prompts"] == 8
    assert table.hate_before.mean() == pytest.approx(results["toxicity_before"]["mean"], rel=1e-5)
    assert table.hate_after.mean() == pytest.approx(results["toxicity_after"]["mean"], rel=1e-5)
    for name in ("adapter_model.safetensors", "adapter_config.json", "value_head.safetensors"):
        assert (out / "ppo_adapter" / name).is_file(), name
    assert (out / "dpo_adapter" / "adapter_model.safetensors").is_file()
    # The exercises' reference answers agree with the artifacts they are graded against.
    best = max(results["ppo_log"], key=lambda e: e["reward_mean"])["step"]
    assert results["exercise_1"] == best
    before, after = results["toxicity_before"]["mean"], results["toxicity_after"]["mean"]
    # abs: the answer takes float32 means; when before ~ after (a short run) the difference amplifies their rounding
    assert results["exercise_2"] == pytest.approx(100 * (before - after) / before, rel=1e-5, abs=1e-3)
    flipped = ((table.hate_before > 0.5) & (table.hate_after <= 0.5)).mean()
    assert results["exercise_3"] == pytest.approx(flipped, abs=1e-9)
    pairs = pd.read_csv(out / "dpo_pairs.csv", keep_default_na=False)
    shorter = (pairs.chosen.str.split().str.len() < pairs.rejected.str.split().str.len()).mean()
    assert 0 < len(pairs) <= 8 and results["exercise_4"] == pytest.approx(shorter, abs=1e-9)


@pytest.mark.slow
def test_default_lab_lowers_toxicity_beyond_noise_with_bounded_kl_and_earns_full_marks(graded_default_run):
    results, _, _ = graded_default_run("lab3")
    before, after = results["toxicity_before"], results["toxicity_after"]
    assert after["mean"] < before["mean"]
    assert results["toxicity_change"]["beyond_noise"] and results["toxicity_change"]["ci"][1] < 0
    # Near its target: the KL per summary the controller steers (the sampled estimate) stays within three times
    # its target throughout; the exact KL reported beside it is never negative.
    target = results["settings"]["target_kl"]
    assert max(e["kl_sampled"] for e in results["ppo_log"]) < 3 * target, (target, results["ppo_log"])
    assert min(e["kl"] for e in results["ppo_log"]) >= 0
    # Detoxification, not collapse: the summaries keep their length and their words.
    q = results["detox_quality"]
    assert q["after"]["mean_words"] >= 0.7 * q["before"]["mean_words"], q
    assert q["before"]["rouge1"] >= 0.25, q
    assert q["after"]["rouge1"] >= q["before"]["rouge1"] - 0.03, q  # the summaries stayed summaries
    assert min(q["before"]["in_vocabulary_share"], q["after"]["in_vocabulary_share"]) >= 0.95, q
    # DPO, from the same start on the same prompts: beyond noise, and its summaries stay summaries.
    assert results["toxicity_change_dpo"]["beyond_noise"] and results["toxicity_change_dpo"]["ci"][1] < 0
    dpo_row = results["ppo_vs_dpo"]["DPO"]
    assert dpo_row["mean_words"] >= 0.7 * q["before"]["mean_words"] and dpo_row["in_vocabulary_share"] >= 0.95, dpo_row
