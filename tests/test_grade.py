"""labkit grade: hostile submissions, verified rubrics, reports, rerun/--force, Dask, the real labs (slow)."""
from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hostile.notebooks import toy_notebook, write_submissions  # noqa: E402

from labkit import grading as grademod  # noqa: E402
from labkit.config import LabkitError, repo_root  # noqa: E402
from labkit.sandbox import Limits, Sandbox, bwrap_works, clean_environment  # noqa: E402

HERE = Path(__file__).parent
TOY_RUBRIC = HERE / "hostile" / "toy_rubric.yaml"
LIMITS = Limits(memory_mb=1024, output_mb=4, max_processes=32)
# the strongest isolation this machine has: `auto` refuses without bubblewrap, rlimits must be asked for
BEST = "bwrap" if bwrap_works()[0] else "rlimits"


@pytest.fixture(scope="module")
def hostile_batch(tmp_path_factory):
    """Grade every hostile submission once (module-scoped: the suite's main cost)."""
    root = tmp_path_factory.mktemp("hostile")
    other = root / "elsewhere"
    other.mkdir()
    (other / "secret.txt").write_text("SECRET-OF-ANOTHER-STUDENT")
    secrets = [str(TOY_RUBRIC), str(repo_root() / "labkit" / "rubrics" / "lab1.yaml"), str(other / "secret.txt")]
    names = write_submissions(root / "subs", secrets, str(other / "pwned.txt"))
    t0 = time.monotonic()
    records = grademod.grade_batch(root / "subs", "lab1", root / "grades", rubric=str(TOY_RUBRIC), timeout=10,
                                   workers=3, limits=LIMITS, isolation=BEST, progress=False)
    return {"root": root, "records": {r["id"]: r for r in records}, "names": names,
            "seconds": time.monotonic() - t0, "other": other}


def test_every_hostile_submission_gets_a_score_or_reason(hostile_batch) -> None:
    recs = hostile_batch["records"]
    assert sorted(recs) == sorted(hostile_batch["names"]) and len(recs) >= 10
    for rid, r in recs.items():
        assert isinstance(r["score"], (int, float)), rid
        assert r["status"] == "graded" or r["reason"], f"{rid}: {r['status']} without a reason"
        assert r["status"] != "grader_error", f"{rid}: {r['reason']}"
    # bounded: 18 notebooks, one infinite loop and one fork storm, up to three at a time (one per usable CPU)
    assert hostile_batch["seconds"] < 150


def test_local_workers_never_outnumber_the_cpus(monkeypatch, caplog) -> None:
    """A submission's timeout is wall-clock time: runs sharing a CPU would time out because of each other (the
    hostile batch's 10 s runs took 8 s each, three on one CPU), so the pool runs at most one per usable CPU."""
    from labkit.grading import driver
    monkeypatch.setattr(driver.os, "sched_getaffinity", lambda pid: {1}, raising=False)
    with caplog.at_level("WARNING", logger="labkit.grading.driver"):
        assert driver.local_workers(3) == 1
    assert "--workers 3 asked, but this process may use 1 CPU" in caplog.text
    monkeypatch.setattr(driver.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    caplog.clear()
    assert driver.local_workers(2) == 2 and driver.local_workers(0) == 1 and not caplog.text


@pytest.mark.parametrize("rid,status,needle", [
    ("infinite_loop", "timeout", "timed out after 10 s while running cell 4"),
    ("os_exit", "kernel_died", "kernel died"),
    ("segfault", "kernel_died", "kernel died"),
    ("memory_hog", "memory", "killed for memory"),
    ("memory_creep", "memory", "killed for memory"),
    ("fork_storm", "processes", "more than 32 processes"),
    ("no_parameters", "error", "missing parameters cell"),
    ("invalid_json", "error", "invalid notebook JSON"),
    ("raising", "error", "RuntimeError: student bug"),
    ("no_results", "no_results", "no results recorded"),
    ("forged_record", "flagged", "forged result detected"),
    ("fake_csv", "flagged", "forged result detected"),
    ("symlink_artifact", "graded", ""),
])
def test_hostile_reasons(hostile_batch, rid: str, status: str, needle: str) -> None:
    r = hostile_batch["records"][rid]
    assert r["status"] == status, r
    assert needle in r["reason"]


def test_reasons_name_the_kept_notebook_never_the_scratch_folder(hostile_batch) -> None:
    reason = hostile_batch["records"]["infinite_loop"]["reason"]
    assert reason.endswith("; partial notebook: executed.ipynb") and "labkit-grade-" not in reason, reason


def test_symlinked_artifact_is_not_followed(hostile_batch) -> None:
    r = hostile_batch["records"]["symlink_artifact"]
    squares = next(c for c in r["checks"] if c["name"] == "squares_verified")
    assert squares["points"] == 0 and squares["detail"] == "squares.csv was not saved"
    assert any("symbolic links removed" in n for n in r["notes"])


def test_forgeries_earn_nothing_for_the_forged_check(hostile_batch) -> None:
    recs = hostile_batch["records"]
    for rid in ("forged_record", "fake_csv"):
        squares = next(c for c in recs[rid]["checks"] if c["name"] == "squares_verified")
        assert squares["points"] == 0 and squares["forged"]
    # a hand-written results.json does not override what the notebook recorded
    assert recs["forged_results_json"]["score"] == recs["good"]["score"]
    assert any("results.json differs" in n for n in recs["forged_results_json"]["notes"])


def test_good_and_unanswered(hostile_batch) -> None:
    recs = hostile_batch["records"]
    assert recs["good"]["score"] == recs["good"]["max"] == 5 and recs["good"]["status"] == "graded"
    huge = recs["huge_output"]
    # 100 MB of prints: kept output is capped; on a loaded machine pushing it through the kernel may
    # outlast the 10 s budget, which is then the stated reason
    assert (huge["score"] == 5 and any("truncated" in n for n in huge["notes"])) or huge["status"] == "timeout", huge
    kept = hostile_batch["root"] / "grades" / "huge_output" / "executed.ipynb"
    assert not kept.exists() or kept.stat().st_size < 5 * 2**20
    un = recs["unanswered"]
    assert un["score"] == 4
    ex = next(c for c in un["checks"] if c["name"] == "exercise_1")
    assert ex["points"] == 0 and ex["detail"] == "Exercise 1 was not answered"
    fb = (hostile_batch["root"] / "grades" / "unanswered" / "feedback.md").read_text()
    assert "Exercise 1 was not answered" in fb and "Isolation:" in fb and "Runtime:" in fb


def test_isolation_blocks_reads_and_writes_outside(hostile_batch) -> None:
    recs = hostile_batch["records"]
    if not bwrap_works()[0]:
        pytest.skip("bubblewrap unavailable: only rlimits + scratch folder isolate submissions here")
    assert recs["read_outside"]["isolation"].startswith("bubblewrap")
    nb = nbformat.read(hostile_batch["root"] / "grades" / "read_outside" / "executed.ipynb", as_version=4)
    from labkit.record import results_from_notebook
    assert results_from_notebook(nb)["leak"] == ["", "", ""]
    assert not (hostile_batch["other"] / "pwned.txt").exists()


def test_outputs_files(hostile_batch) -> None:
    out = hostile_batch["root"] / "grades"
    rows = list(csv.DictReader(open(out / "grades.csv")))
    assert list(rows[0]) == ["id", "score", "max", "pending", "status", "reason"] and len(rows) == len(hostile_batch["names"])
    gs = json.loads((out / "good" / "results.json").read_text())
    assert gs["score"] == 5 and {t["name"] for t in gs["tests"]} == {"ran_to_completion", "results_recorded",
                                                                       "squares_verified", "exercise_1"}
    assert all({"name", "score", "max_score", "output"} <= set(t) for t in gs["tests"])
    assert (out / "score_histogram.png").read_bytes()[:4] == b"\x89PNG"
    rates = {r["check"]: r for r in csv.DictReader(open(out / "check_pass_rates.csv"))}
    assert int(rates["ran_to_completion"]["graded"]) >= 10
    assert "Class summary" in (out / "summary.md").read_text()


def test_rerun_skips_graded(hostile_batch) -> None:
    root = hostile_batch["root"]
    t0 = time.monotonic()
    again = grademod.grade_batch(root / "subs", "lab1", root / "grades", rubric=str(TOY_RUBRIC), timeout=10,
                                 limits=LIMITS, isolation=BEST, progress=False)
    assert time.monotonic() - t0 < 5 and all(r.get("skipped") for r in again)
    assert {r["id"]: r["score"] for r in again} == {k: r["score"] for k, r in hostile_batch["records"].items()}


def test_folder_submission_and_rlimits_fallback(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    nbformat.write(toy_notebook(), subs / "alice" / "my work.ipynb")
    (subs / "alice" / "notes.txt").write_text("kept beside the notebook")
    (subs / "bob").mkdir()
    recs = grademod.grade_batch(subs, "lab1", tmp_path / "g", rubric=str(TOY_RUBRIC), timeout=30, limits=LIMITS,
                                isolation="rlimits", progress=False)
    by = {r["id"]: r for r in recs}
    assert by["alice"]["score"] == 5 and by["alice"]["isolation"].startswith("rlimits")
    assert by["bob"]["reason"] == "no notebook in the submission folder"
    # --force regrades what a plain rerun would skip
    forced = grademod.grade_batch(subs, "lab1", tmp_path / "g", rubric=str(TOY_RUBRIC), timeout=30, limits=LIMITS,
                                  isolation="rlimits", force=True, progress=False)
    assert not any(r.get("skipped") for r in forced) and {r["id"]: r["score"] for r in forced}["alice"] == 5


def test_clean_environment_drops_credentials() -> None:
    env = clean_environment({"HF_TOKEN": "x", "AWS_ACCESS_KEY_ID": "y", "MY_API_KEY": "z", "GITHUB_TOKEN": "t",
                             "DB_PASSWORD": "p", "PATH": "/usr/bin", "LANG": "C"}, LABKIT_HOME="/h")
    assert env["PATH"] == "/usr/bin" and env["LANG"] == "C" and env["LABKIT_HOME"] == "/h"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert not {"HF_TOKEN", "AWS_ACCESS_KEY_ID", "MY_API_KEY", "GITHUB_TOKEN", "DB_PASSWORD"} & set(env)


def test_bwrap_command_masks_rubrics(tmp_path: Path) -> None:
    if not bwrap_works()[0]:
        pytest.skip("bubblewrap unavailable here")
    sb = Sandbox(tmp_path, isolation="bwrap", readable=[repo_root() / "labkit"],
                 hidden=[repo_root() / "labkit" / "rubrics"])
    cmd = sb.command(["true"])
    assert "--unshare-all" in cmd and cmd[cmd.index("--bind") + 1] == str(tmp_path.resolve())
    assert str(repo_root() / "labkit" / "rubrics") in cmd


def test_bad_rubric_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text("lab: lab1\nchecks:\n  - {name: a, type: no_such_check, points: 1}\n")
    (tmp_path / "subs").mkdir()
    with pytest.raises(LabkitError, match="unknown type 'no_such_check'"):
        grademod.grade_batch(tmp_path / "subs", "lab1", tmp_path / "g", rubric=str(bad))


def test_default_rubrics_load() -> None:
    from labkit.rubrics import load_rubric
    for lab in ("lab1", "lab2", "lab3"):
        rub = load_rubric(lab)
        assert rub.max_points > 0 and any(c.type == "exercise" for c in rub.checks)


def test_dask_local_cluster_same_code_path(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    if not bwrap_works()[0]:  # rlimits on a cluster is refused (test_isolation.py)
        pytest.skip(f"grading on a Dask cluster needs bubblewrap: {bwrap_works()[1]}")
    subs = tmp_path / "subs"
    write_submissions(subs, [], str(tmp_path / "x"), ["good", "raising"])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        recs = grademod.grade_batch(subs, "lab1", tmp_path / "g", rubric=str(TOY_RUBRIC), timeout=30, limits=LIMITS,
                                    scheduler=cluster.scheduler_address, progress=False)
    by = {r["id"]: r for r in recs}
    assert by["good"]["score"] == 5 and by["raising"]["status"] == "error"
    assert (tmp_path / "g" / "grades.csv").is_file()


# The reference labs' full marks on their default runs: each lab's own slow test (tests/conftest.py's
# graded_default_run, the rubric as `make labs` applies it); the sandboxed path on the real labs: test_release.py.


# ---------------------------------------------------------------- real-lab checks on synthetic artifacts (fast)

def _ctx(tmp_path: Path, lab: str, results: dict):
    from labkit.rubrics.checks import GradeContext
    return GradeContext(lab=lab, status="ok", results=results, artifacts=tmp_path, params={"seed": 42})


def test_lab2_checks_recompute_rouge_and_catch_forgery(tmp_path: Path) -> None:
    import pandas as pd

    from labkit.profiles import get_profile
    from labkit.data import load_dialogsum
    from labkit.metrics import rouge
    from labkit.rubrics import CHECKS, VERIFIERS
    test = load_dialogsum(get_profile("offline"))["test"].select(range(12))
    refs = list(test["summary"])
    preds = {"original": [r.split(".")[0] for r in refs], "full_ft": refs, "lora": [r[: len(r) // 2] for r in refs],
             "prompt_tuning": [r[: len(r) // 3] for r in refs]}
    pd.DataFrame({"id": test["id"], "human_baseline_summaries": refs,
                  "original_model_summaries": preds["original"], "instruct_model_summaries": preds["full_ft"],
                  "peft_model_summaries": preds["lora"], "prompt_tuning_model_summaries": preds["prompt_tuning"],
                  }).to_csv(tmp_path / "summaries.csv", index=False)
    honest = {"rouge": {m: rouge(p, refs, n_resamples=50).as_dict() for m, p in preds.items()}}
    ctx = _ctx(tmp_path, "lab2", honest)
    assert CHECKS["lab2_summaries_csv"](ctx).fraction == 1
    assert CHECKS["lab2_rouge_recomputed"](ctx).fraction == 1
    o, lo = honest["rouge"]["original"]["rouge1"]["mean"], honest["rouge"]["lora"]["rouge1"]["mean"]
    assert VERIFIERS["lab2_lora_gain_percent"](ctx, 100 * (lo - o) / o).fraction == 1
    assert VERIFIERS["lab2_lora_gain_percent"](ctx, 12.5).fraction == 0
    forged = {"rouge": {**honest["rouge"], "lora": {"rouge1": {"mean": 0.95, "ci": [0.9, 1.0]}}}}
    out = CHECKS["lab2_rouge_recomputed"](_ctx(tmp_path, "lab2", forged))
    assert out.forged and out.fraction == pytest.approx(3 / 4)
    # a CSV whose "human" summaries are not the test split's is caught too
    df = pd.read_csv(tmp_path / "summaries.csv")
    df["human_baseline_summaries"] = df["instruct_model_summaries"].str.upper()
    df.to_csv(tmp_path / "summaries.csv", index=False)
    assert CHECKS["lab2_summaries_csv"](_ctx(tmp_path, "lab2", honest)).forged


def test_lab1_checks_on_synthetic_generations(tmp_path: Path) -> None:
    import pandas as pd

    from labkit.profiles import get_profile
    from labkit.data import load_dialogsum
    from labkit.metrics import bootstrap_ci, rouge
    from labkit.rubrics import CHECKS, VERIFIERS
    test = load_dialogsum(get_profile("offline"))["test"].select(range(10))
    refs = list(test["summary"])
    outs = {"zero_shot": [r[:20] for r in refs], "few_shot": refs}
    rows = [{"id": i, "strategy": s, "reference": r, "prediction": p}
            for s, ps in outs.items() for i, r, p in zip(test["id"], refs, ps)]
    pd.DataFrame(rows).to_csv(tmp_path / "generations.csv", index=False)
    scores = {s: rouge(ps, refs, n_resamples=50) for s, ps in outs.items()}
    ctx = _ctx(tmp_path, "lab1", {"rouge_by_strategy": {s: r.as_dict() for s, r in scores.items()}})
    assert CHECKS["lab1_generations_csv"](ctx).fraction == 1
    assert CHECKS["lab1_rouge_recomputed"](ctx).fraction == 1
    # a strategy saved in generations.csv but not recorded fails too (lab 2's rule: one check for both labs)
    only_zero = _ctx(tmp_path, "lab1", {"rouge_by_strategy": {"zero_shot": scores["zero_shot"].as_dict()}})
    partial = CHECKS["lab1_rouge_recomputed"](only_zero)
    assert partial.fraction == 0.5 and not partial.forged and "few_shot (not recorded" in partial.detail
    assert VERIFIERS["lab1_best_strategy"](ctx, "few_shot").fraction == 1
    assert VERIFIERS["lab1_best_strategy"](ctx, "zero_shot").fraction == 0
    diff = scores["few_shot"].per_example["rouge1"] - scores["zero_shot"].per_example["rouge1"]
    assert VERIFIERS["lab1_few_vs_zero_ci"](ctx, list(bootstrap_ci(diff, seed=42))).fraction == 1
    assert VERIFIERS["lab1_few_vs_zero_ci"](ctx, [-1.0, -0.5]).fraction == 0
    unanswered = CHECKS["exercise"](ctx, number=1, verify={"type": "lab1_best_strategy"})
    assert unanswered.fraction == 0 and unanswered.detail == "Exercise 1 was not answered"


def test_lab2_adapter_checks_regenerate_and_count(tmp_path: Path, fixtures_manifest) -> None:
    """The grader loads the saved adapter on the base, regenerates, and counts its parameters itself. Only an
    adapter that learned something earns the re-run's points: a LoRA adapter straight from make_lora_model
    (lora_B is zero: it changes nothing) earns none, even with a summaries.csv it did write; a trained one
    (the cached LoRA summarizer) earns all of them on two different batches' hidden dialogues, and the same
    adapter with its lora_B zeroed earns none again."""
    import pandas as pd
    import torch

    from labkit import cached_summarizer, data, finetune, generate, models, prompts
    from labkit.profiles import get_profile
    from labkit.rubrics import CHECKS
    p = get_profile("offline")
    tok = models.load_tokenizer(p)
    test = data.load_dialogsum(p)["test"].select(range(4))

    def save(model, folder: Path) -> dict:
        model.save_pretrained(folder / "peft_adapter")
        made = generate.generate(model, tok, [prompts.summarize_prompt(d) for d in test["dialogue"]], "greedy",
                                 progress=False)
        frame = {"id": test["id"], "human_baseline_summaries": test["summary"], "original_model_summaries": made,
                 "instruct_model_summaries": made, "peft_model_summaries": made, "prompt_tuning_model_summaries": made}
        pd.DataFrame(frame).to_csv(folder / "summaries.csv", index=False)
        return frame

    untrained = finetune.make_lora_model(models.load_seq2seq(p, torch.device("cpu"), torch.float32), p.lora, seed=0)
    (tmp_path / "untrained").mkdir()
    frame = save(untrained, tmp_path / "untrained")
    n = models.count_parameters(untrained).trainable
    ctx = _ctx(tmp_path / "untrained", "lab2", {"trainable_params": {"lora": {"trainable": n}}})
    assert CHECKS["adapter_trainable_params"](ctx).fraction == 1
    nothing = CHECKS["lab2_adapter_regenerates"](ctx, n_hidden=16)
    assert nothing.fraction == 0 and not nothing.forged and "learned nothing" in nothing.detail, nothing.detail
    assert "16 of 16 summaries are exactly the base model's" in nothing.detail
    ctx.results["trainable_params"]["lora"]["trainable"] = n * 10
    assert CHECKS["adapter_trainable_params"](ctx).forged
    # summaries.csv that this adapter did not write is caught by regenerating
    pd.DataFrame({**frame, "peft_model_summaries": ["#Person1# wins the lottery twice."] * 4}).to_csv(
        tmp_path / "untrained" / "summaries.csv", index=False)
    fake = CHECKS["lab2_adapter_regenerates"](_ctx(tmp_path / "untrained", "lab2", {}), n_hidden=16)
    assert fake.forged and fake.fraction == 0

    trained = cached_summarizer.lora_summarizer(p, progress=False)
    (tmp_path / "trained").mkdir()
    save(trained, tmp_path / "trained")
    for seed in (1, 2):
        ctx = _ctx(tmp_path / "trained", "lab2", {})
        ctx.hidden_seed = seed
        out = CHECKS["lab2_adapter_regenerates"](ctx)
        assert out.fraction == 1 and "32 hidden dialogues" in out.detail, out.detail
    with torch.no_grad():
        for name, param in trained.named_parameters():
            if "lora_B" in name:
                param.zero_()
    (tmp_path / "zeroed").mkdir()
    save(trained, tmp_path / "zeroed")
    zeroed = CHECKS["lab2_adapter_regenerates"](_ctx(tmp_path / "zeroed", "lab2", {}))
    assert zeroed.fraction == 0 and "learned nothing" in zeroed.detail
