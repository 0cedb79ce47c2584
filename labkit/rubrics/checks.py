"""The Python side of the rubrics: checks that read recorded results and verify them from artifacts.

Every check gets a :class:`GradeContext` (the run's status, its recorded
results, the artifacts folder, the effective parameters) and returns an
:class:`~labkit.rubrics.Outcome`. Checks never trust a recorded number on its
own: they recompute it from the saved artifacts against data the grader loads
itself, and mark a contradiction ``forged``. Expensive recomputations are
memoised in ``ctx.cache`` so several checks can share them.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.rubrics import Outcome, check, verifier, VERIFIERS

log = logging.getLogger(__name__)

MAX_ARTIFACT_MB = 100  # artifacts larger than this are not read (a submission cannot exhaust the grader)


@dataclass
class GradeContext:
    """Everything a check may look at for one submission."""

    lab: str
    status: str                       # RunResult.status of the graded execution
    results: dict[str, Any]           # recorded results (results.json, else the notebook's outputs)
    artifacts: Path                   # the lab's output_dir in the scratch copy
    params: dict[str, Any] = field(default_factory=dict)   # effective parameters of the run
    profile: str = "offline"
    run_message: str = ""
    cache: dict[str, Any] = field(default_factory=dict)


def _get(data: Any, path: str) -> Any:
    """'rouge.lora.rouge1.mean' → nested value, or None."""
    cur = data
    for key in path.split(".") if path else []:
        if isinstance(cur, dict) and key in cur:
            cur = cur[key]
        elif isinstance(cur, list) and key.isdigit() and int(key) < len(cur):
            cur = cur[int(key)]
        else:
            return None
    return cur


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(float(x)):
        return None
    return float(x)


def _mean_of(block: Any, metric: str = "rouge1") -> float | None:
    v = _get(block, metric)
    return _num(v.get("mean")) if isinstance(v, dict) else _num(v)


def _close(a: float | None, b: float | None, tol: float) -> bool:
    return a is not None and b is not None and abs(a - b) <= tol


# ---------------------------------------------------------------- generic checks

@check("ran_to_completion")
def ran_to_completion(ctx: GradeContext) -> Outcome:
    """Every cell ran."""
    if ctx.status == "ok":
        return Outcome.ok()
    return Outcome.fail(ctx.run_message or f"the run ended with status {ctx.status}")


@check("results_recorded")
def results_recorded(ctx: GradeContext, keys: list[str]) -> Outcome:
    """Each key was recorded (partial credit per key)."""
    missing = [k for k in keys if ctx.results.get(k) is None]
    frac = (len(keys) - len(missing)) / len(keys) if keys else 1.0
    return Outcome(frac, f"missing: {', '.join(missing)}" if missing else f"all {len(keys)} results recorded")


@check("recorded_number")
def recorded_number(ctx: GradeContext, key: str, min: float | None = None, max: float | None = None) -> Outcome:  # noqa: A002
    """A recorded number lies in [min, max]."""
    v = _num(_get(ctx.results, key))
    if v is None:
        return Outcome.fail(f"{key} was not recorded as a number")
    if (min is not None and v < min) or (max is not None and v > max):
        return Outcome.fail(f"{key} = {v:.4g} is outside [{min}, {max}]")
    return Outcome.ok(f"{key} = {v:.4g}")


@check("artifact_exists")
def artifact_exists(ctx: GradeContext, paths: list[str]) -> Outcome:
    """Files/folders exist in the output folder (partial credit)."""
    missing = [p for p in paths if not (ctx.artifacts / p).exists()]
    return Outcome((len(paths) - len(missing)) / len(paths), f"missing: {', '.join(missing)}" if missing else "")


@check("exercise")
def exercise(ctx: GradeContext, number: int, verify: dict[str, Any] | None = None) -> Outcome:
    """An exercise: None/missing → not answered; otherwise its verifier decides."""
    answer = ctx.results.get(f"exercise_{number}")
    if answer is None:
        return Outcome.fail(f"Exercise {number} was not answered")
    if not verify:
        return Outcome.ok(f"answered: {json.dumps(answer)[:80]}")
    spec = dict(verify)
    fn = VERIFIERS[spec.pop("type")]
    try:
        return fn(ctx, answer, **spec)
    except Exception as err:  # a verifier that cannot recompute must not crash the grade
        log.debug("verifier failed", exc_info=True)
        return Outcome.fail(f"could not verify the answer ({type(err).__name__}: {err})")


@verifier("equals_result")
def equals_result(ctx: GradeContext, answer: Any, path: str) -> Outcome:
    """The answer equals a recorded value (path into the results)."""
    expected = _get(ctx.results, path)
    return Outcome.ok() if answer == expected else Outcome.fail(f"expected the value of {path}")


@verifier("equals")
def equals(ctx: GradeContext, answer: Any, value: Any) -> Outcome:
    """The answer equals a constant."""
    return Outcome.ok() if answer == value else Outcome.fail(f"answer {json.dumps(answer)[:60]} is not correct")


@verifier("close_to_result")
def close_to_result(ctx: GradeContext, answer: Any, path: str, abs_tol: float = 1e-6, rel_tol: float = 1e-3) -> Outcome:
    """A number close to a recorded value."""
    a, e = _num(answer), _num(_get(ctx.results, path))
    if a is None:
        return Outcome.fail(f"expected a number, got {json.dumps(answer)[:60]}")
    if e is None:
        return Outcome.fail(f"{path} was not recorded, so the answer cannot be checked")
    ok = math.isclose(a, e, rel_tol=rel_tol, abs_tol=abs_tol)
    return Outcome.ok() if ok else Outcome.fail(f"{a:.4g} is not the expected value")


# ---------------------------------------------------------------- shared recomputations

def _effective_params(ctx: GradeContext) -> dict[str, Any]:
    return ctx.params


def _profile(ctx: GradeContext) -> Any:
    from labkit.config import get_profile
    return get_profile(ctx.profile)


def _test_split(ctx: GradeContext) -> Any:
    if "test" not in ctx.cache:
        from labkit.data import load_dialogsum
        ctx.cache["test"] = load_dialogsum(_profile(ctx))["test"]
    return ctx.cache["test"]


def _references(ctx: GradeContext) -> dict[str, str]:
    """id → reference summary, loaded by the grader itself."""
    if "refs" not in ctx.cache:
        test = _test_split(ctx)
        ctx.cache["refs"] = {str(i): s for i, s in zip(test["id"], test["summary"])}
    return ctx.cache["refs"]


def _read_csv(ctx: GradeContext, name: str, columns: list[str]) -> Any:
    import pandas as pd
    path = ctx.artifacts / name
    if not path.is_file() or path.is_symlink():
        raise FileNotFoundError(f"{name} was not saved")
    if path.stat().st_size > MAX_ARTIFACT_MB * 2**20:
        raise ValueError(f"{name} is larger than {MAX_ARTIFACT_MB} MB")
    df = pd.read_csv(path, dtype={"id": str}, keep_default_na=False)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {', '.join(missing)}")
    return df


def _rouge(preds: list[str], refs: list[str]) -> Any:
    from labkit.metrics import rouge
    return rouge([str(p) for p in preds], [str(r) for r in refs], n_resamples=100, seed=0)


def _reference_mismatch(ctx: GradeContext, df: Any, ref_col: str) -> list[str]:
    refs = _references(ctx)
    return [i for i, r in zip(df["id"], df[ref_col]) if refs.get(str(i)) != r]


# ---------------------------------------------------------------- lab 1

def _lab1_recomputed(ctx: GradeContext) -> dict[str, Any]:
    """strategy → RougeResult recomputed from generations.csv against the grader's references."""
    if "lab1_rouge" not in ctx.cache:
        df = _read_csv(ctx, "generations.csv", ["id", "strategy", "reference", "prediction"])
        refs = _references(ctx)
        unknown = sorted({i for i in df["id"] if i not in refs})
        if unknown:
            raise ValueError(f"generations.csv has ids that are not test dialogues: {', '.join(unknown[:3])}")
        out = {}
        for strategy, part in df.groupby("strategy", sort=False):
            out[str(strategy)] = _rouge(list(part["prediction"]), [refs[i] for i in part["id"]])
            out[str(strategy)].ids = list(part["id"])
        ctx.cache["lab1_rouge"] = out
    return ctx.cache["lab1_rouge"]


@check("lab1_generations_csv")
def lab1_generations_csv(ctx: GradeContext, min_rows: int = 1) -> Outcome:
    """generations.csv exists, has the contract's columns, test ids, and the true references."""
    try:
        df = _read_csv(ctx, "generations.csv", ["id", "strategy", "reference", "prediction"])
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    if len(df) < min_rows:
        return Outcome.fail(f"only {len(df)} rows")
    bad = _reference_mismatch(ctx, df, "reference")
    if bad:
        # a few differing rows can be an older data release; most rows differing is an edited file
        return Outcome.fail(f"{len(bad)} of {len(df)} rows carry a reference that is not the test split's summary "
                            f"(e.g. id {bad[0]}): edited, or made with another version of data/",
                            forged=len(bad) > len(df) / 2)
    return Outcome.ok(f"{len(df)} generations over {df['strategy'].nunique()} strategies")


@check("lab1_rouge_recomputed")
def lab1_rouge_recomputed(ctx: GradeContext, tolerance: float = 0.005) -> Outcome:
    """Recorded ROUGE per strategy equals ROUGE recomputed from generations.csv (partial credit per strategy)."""
    recorded = ctx.results.get("rouge_by_strategy")
    if not isinstance(recorded, dict) or not recorded:
        return Outcome.fail("rouge_by_strategy was not recorded")
    try:
        recomputed = _lab1_recomputed(ctx)
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    good, bad = [], []
    for strategy, block in recorded.items():
        r = recomputed.get(strategy)
        mine = r.scores.get("rouge1") if r is not None else None
        (good if _close(_mean_of(block), mine, tolerance) else bad).append(
            f"{strategy} (recorded {_mean_of(block)}, recomputed {mine if mine is None else round(mine, 4)})")
    frac = len(good) / len(recorded)
    detail = "mismatch: " + "; ".join(bad) if bad else f"{len(good)} strategies match"
    return Outcome(frac, detail, forged=bool(bad))


@check("lab1_prompt_budget")
def lab1_prompt_budget(ctx: GradeContext) -> Outcome:
    """Every strategy's prompt fits the encoder's token limit."""
    pt = ctx.results.get("prompt_tokens")
    if not isinstance(pt, dict) or not pt:
        return Outcome.fail("prompt_tokens was not recorded")
    over = [s for s, v in pt.items() if not (isinstance(v, dict) and _num(v.get("tokens")) is not None
                                              and _num(v.get("limit")) and v["tokens"] <= v["limit"])]
    return Outcome.fail(f"over budget or malformed: {', '.join(over)}") if over else Outcome.ok()


@verifier("lab1_best_strategy")
def lab1_best_strategy(ctx: GradeContext, answer: Any) -> Outcome:
    """The strategy with the highest mean ROUGE-1, recomputed from generations.csv."""
    rec = _lab1_recomputed(ctx)
    best = max(rec, key=lambda s: rec[s].scores["rouge1"])
    top = rec[best].scores["rouge1"]
    tied = {s for s, r in rec.items() if abs(r.scores["rouge1"] - top) < 1e-9}
    return Outcome.ok() if answer in tied else Outcome.fail(f"{json.dumps(answer)} is not the best strategy")


@verifier("lab1_few_vs_zero_ci")
def lab1_few_vs_zero_ci(ctx: GradeContext, answer: Any, tolerance: float = 1e-3) -> Outcome:
    """[low, high] bootstrap CI of per-example ROUGE-1 (few_shot − zero_shot), recomputed."""
    from labkit.metrics import bootstrap_ci
    if not (isinstance(answer, list) and len(answer) == 2 and all(_num(x) is not None for x in answer)):
        return Outcome.fail("expected [low, high], two numbers")
    rec = _lab1_recomputed(ctx)
    few, zero = rec["few_shot"], rec["zero_shot"]
    if few.ids != zero.ids:
        return Outcome.fail("few_shot and zero_shot were not scored on the same dialogues")
    diff = few.per_example["rouge1"].to_numpy() - zero.per_example["rouge1"].to_numpy()
    seed = int(ctx.params.get("seed", _get(ctx.results, "run_info.seed") or 42))
    lo, hi = bootstrap_ci(diff, seed=seed)
    if _close(answer[0], lo, tolerance) and _close(answer[1], hi, tolerance):
        return Outcome.ok()
    # right idea, different resampling: half the points if it brackets the mean difference
    mean = float(diff.mean())
    if answer[0] <= mean <= answer[1]:
        return Outcome(0.5, f"your interval brackets the mean difference but is not [{lo:.4f}, {hi:.4f}]")
    return Outcome.fail("not the bootstrap interval of the per-example differences")


@verifier("lab1_shots_kept")
def lab1_shots_kept(ctx: GradeContext, answer: Any, max_source_tokens: int = 256) -> Outcome:
    """Number of shots that survive a smaller token budget, rebuilt by the grader."""
    from labkit import models, prompts
    params = _effective_params(ctx)
    test = _test_split(ctx)
    examples = prompts.rows_at(test, list(params.get("example_indices", [40, 150])), what="example_indices")
    shots = prompts.rows_at(test, list(params.get("shot_indices", [40, 80, 120])), what="shot_indices")
    tok = models.load_tokenizer(_profile(ctx))
    kept = prompts.build_prompt("few_shot", examples[-1]["dialogue"], tokenizer=tok, shots=shots,
                                max_source_tokens=max_source_tokens).shots_kept
    return Outcome.ok() if answer == kept else Outcome.fail(f"{json.dumps(answer)} worked examples is not right")


# ---------------------------------------------------------------- lab 2

_LAB2_COLUMNS = {"original": "original_model_summaries", "full_ft": "instruct_model_summaries",
                 "lora": "peft_model_summaries"}


def _lab2_recomputed(ctx: GradeContext) -> dict[str, Any]:
    if "lab2_rouge" not in ctx.cache:
        df = _read_csv(ctx, "summaries.csv", ["id", "human_baseline_summaries", *_LAB2_COLUMNS.values()])
        refs = _references(ctx)
        unknown = [i for i in df["id"] if i not in refs]
        if unknown:
            raise ValueError(f"summaries.csv has ids that are not test dialogues: {', '.join(unknown[:3])}")
        gold = [refs[i] for i in df["id"]]
        ctx.cache["lab2_df"] = df
        ctx.cache["lab2_rouge"] = {m: _rouge(list(df[col]), gold) for m, col in _LAB2_COLUMNS.items()}
    return ctx.cache["lab2_rouge"]


@check("lab2_summaries_csv")
def lab2_summaries_csv(ctx: GradeContext) -> Outcome:
    """summaries.csv exists with the contract's columns, test ids and the true human summaries."""
    try:
        df = _read_csv(ctx, "summaries.csv", ["id", "human_baseline_summaries", *_LAB2_COLUMNS.values()])
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    bad = _reference_mismatch(ctx, df, "human_baseline_summaries")
    if bad:
        return Outcome.fail(f"{len(bad)} of {len(df)} rows carry a human summary that is not the test split's "
                            f"(e.g. id {bad[0]}): edited, or made with another version of data/",
                            forged=len(bad) > len(df) / 2)
    return Outcome.ok(f"{len(df)} dialogues")


@check("lab2_rouge_recomputed")
def lab2_rouge_recomputed(ctx: GradeContext, tolerance: float = 0.005) -> Outcome:
    """Recorded ROUGE of each model equals ROUGE recomputed from summaries.csv (partial credit per model)."""
    recorded = ctx.results.get("rouge")
    if not isinstance(recorded, dict):
        return Outcome.fail("rouge was not recorded")
    try:
        rec = _lab2_recomputed(ctx)
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    good, bad = [], []
    for model, r in rec.items():
        mine, theirs = r.scores["rouge1"], _mean_of(recorded.get(model))
        (good if _close(mine, theirs, tolerance) else bad).append(f"{model} (recorded {theirs}, recomputed {mine:.4f})")
    return Outcome(len(good) / len(rec), "mismatch: " + "; ".join(bad) if bad else "all models match", forged=bool(bad))


@check("lab2_finetuning_helps")
def lab2_finetuning_helps(ctx: GradeContext, margin: float = 0.0) -> Outcome:
    """Recomputed ROUGE-1: full fine-tuning and LoRA each beat the original model (half credit each)."""
    try:
        rec = _lab2_recomputed(ctx)
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    base = rec["original"].scores["rouge1"]
    wins = [m for m in ("full_ft", "lora") if rec[m].scores["rouge1"] > base + margin]
    detail = ", ".join(f"{m} {rec[m].scores['rouge1']:.3f}" for m in ("original", "full_ft", "lora"))
    return Outcome(len(wins) / 2, detail)


def _adapter_param_count(adapter_dir: Path) -> int:
    from safetensors import safe_open
    path = adapter_dir / "adapter_model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{adapter_dir.name}/adapter_model.safetensors was not saved")
    total = 0
    with safe_open(str(path), framework="pt") as fh:
        for key in fh.keys():
            if "lora_" in key or "modules_to_save" in key:
                n = 1
                for d in fh.get_slice(key).get_shape():
                    n *= d
                total += n
    return total


@check("adapter_trainable_params")
def adapter_trainable_params(ctx: GradeContext, adapter: str = "peft_adapter", key: str = "trainable_params.lora.trainable") -> Outcome:
    """The recorded trainable-parameter count equals the parameters in the saved adapter."""
    recorded = _get(ctx.results, key)
    try:
        counted = _adapter_param_count(ctx.artifacts / adapter)
    except (FileNotFoundError, OSError, ValueError) as err:
        return Outcome.fail(str(err))
    if recorded == counted:
        return Outcome.ok(f"{counted:,} trainable parameters")
    return Outcome.fail(f"recorded {recorded}, the saved adapter has {counted:,}", forged=recorded is not None)


def _load_adapter_model(ctx: GradeContext, adapter: str) -> Any:
    """Base model of the profile with the submission's adapter (safetensors only; no pickles)."""
    from peft import PeftModel

    from labkit import models
    adir = ctx.artifacts / adapter
    if any(adir.glob("*.bin")) or any(adir.glob("*.pt")) or any(adir.glob("*.pkl")):
        raise ValueError(f"{adapter}/ holds pickle files; only safetensors adapters are loaded")
    if not (adir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter}/adapter_config.json was not saved")
    if sum(p.stat().st_size for p in adir.rglob("*") if p.is_file()) > MAX_ARTIFACT_MB * 2**20:
        raise ValueError(f"{adapter}/ is larger than {MAX_ARTIFACT_MB} MB")
    prof = _profile(ctx)
    import torch
    from safetensors import safe_open
    base = models.load_seq2seq(prof, torch.device("cpu"), torch.float32)
    # an adapter saved after resize_token_embeddings carries the embeddings: give the base the same size
    with safe_open(str(adir / "adapter_model.safetensors"), framework="pt") as fh:
        rows = {fh.get_slice(k).get_shape()[0] for k in fh.keys() if k.endswith(("shared.weight", "embed_tokens.weight"))}
    if len(rows) == 1 and next(iter(rows)) != base.get_input_embeddings().weight.shape[0]:
        base.resize_token_embeddings(next(iter(rows)))
    return PeftModel.from_pretrained(base, str(adir), is_trainable=False).eval(), base


def _hidden_dialogues(ctx: GradeContext, n: int, split: str = "validation", toxic_only: bool = False) -> list[dict]:
    """A few rows of a split the lab never shows (the grader's own held-out data)."""
    from labkit.data import load_dialogsum
    rows = list(load_dialogsum(_profile(ctx))[split])
    if toxic_only:
        from labkit.datagen import is_toxic_text
        rows = [r for r in rows if is_toxic_text(r["summary"])] or rows
    return rows[:n]


@check("lab2_adapter_regenerates")
def lab2_adapter_regenerates(ctx: GradeContext, n_hidden: int = 16, max_new_tokens: int = 50,
                             min_gain: float = -0.02, consistency: float = 0.5) -> Outcome:
    """Load peft_adapter on the base, summarise hidden dialogues: the adapter must not be worse than the
    base model (ROUGE-1), and regenerating a few of the saved test rows must reproduce summaries.csv."""
    from labkit import generate, models, prompts
    try:
        model, base = _load_adapter_model(ctx, "peft_adapter")
    except (FileNotFoundError, ValueError, OSError, RuntimeError) as err:
        return Outcome.fail(f"could not load the adapter: {err}")
    tok = models.load_tokenizer(_profile(ctx))
    hidden = _hidden_dialogues(ctx, n_hidden)
    ps = [prompts.summarize_prompt(r["dialogue"]) for r in hidden]
    cfg = generate.make_config("greedy", max_new_tokens=max_new_tokens)
    tuned = generate.generate(model, tok, ps, cfg, progress=False)
    with model.disable_adapter():
        plain = generate.generate(model, tok, ps, cfg, progress=False)
    gold = [r["summary"] for r in hidden]
    r_tuned, r_plain = _rouge(tuned, gold).scores["rouge1"], _rouge(plain, gold).scores["rouge1"]
    parts, frac = [f"hidden dialogues: adapter ROUGE-1 {r_tuned:.3f}, base {r_plain:.3f}"], 0.0
    if r_tuned >= r_plain + min_gain:
        frac += 0.5
    try:
        _lab2_recomputed(ctx)
        df = ctx.cache["lab2_df"].head(4)
        test = {str(i): d for i, d in zip(_test_split(ctx)["id"], _test_split(ctx)["dialogue"])}
        again = generate.generate(model, tok, [prompts.summarize_prompt(test[i]) for i in df["id"]], cfg, progress=False)
        agree = _rouge(again, list(df["peft_model_summaries"])).scores["rougeL"]
        parts.append(f"saved LoRA summaries reproduced (ROUGE-L {agree:.2f})")
        if agree >= consistency:
            frac += 0.5
        else:
            return Outcome(frac, "; ".join(parts) + ": summaries.csv was not produced by this adapter", forged=True)
    except (FileNotFoundError, ValueError, KeyError) as err:
        parts.append(f"cannot compare with summaries.csv ({err})")
    return Outcome(frac, "; ".join(parts))


# ---------------------------------------------------------------- lab 3

def _classifier(ctx: GradeContext) -> Any:
    if "clf" not in ctx.cache:
        from labkit import models
        ctx.cache["clf"] = models.load_toxicity_classifier(_profile(ctx), "cpu")
    return ctx.cache["clf"]


def _hate(ctx: GradeContext, texts: list[str]) -> Any:
    from labkit.toxicity import hate_probabilities
    clf, tok = _classifier(ctx)
    return hate_probabilities([str(t) for t in texts], clf, tok)


@check("lab3_toxicity_recomputed")
def lab3_toxicity_recomputed(ctx: GradeContext, tolerance: float = 0.01) -> Outcome:
    """Recorded mean toxicity before/after equals the classifier's scores of toxicity_eval.csv's summaries."""
    try:
        df = _read_csv(ctx, "toxicity_eval.csv", ["id", "summary_before", "summary_after"])
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    before, after = _hate(ctx, list(df["summary_before"])), _hate(ctx, list(df["summary_after"]))
    ctx.cache["lab3_tox"] = (float(before.mean()), float(after.mean()))
    good, bad = 0, []
    for key, mine in (("toxicity_before", before.mean()), ("toxicity_after", after.mean())):
        theirs = _num(_get(ctx.results, f"{key}.mean"))
        if _close(theirs, float(mine), tolerance):
            good += 1
        else:
            bad.append(f"{key} recorded {theirs}, recomputed {float(mine):.4f}")
    return Outcome(good / 2, "; ".join(bad) or f"before {before.mean():.3f}, after {after.mean():.3f}", forged=bool(bad))


@check("lab3_detoxified")
def lab3_detoxified(ctx: GradeContext) -> Outcome:
    """Recomputed mean toxicity after PPO is lower than before."""
    if "lab3_tox" not in ctx.cache:
        lab3_toxicity_recomputed(ctx)
    if "lab3_tox" not in ctx.cache:
        return Outcome.fail("toxicity_eval.csv could not be scored")
    before, after = ctx.cache["lab3_tox"]
    return Outcome.ok(f"{before:.3f} → {after:.3f}") if after < before else Outcome.fail(f"{before:.3f} → {after:.3f}")


@check("lab3_adapter_regenerates")
def lab3_adapter_regenerates(ctx: GradeContext, n_hidden: int = 16, max_new_tokens: int = 32, margin: float = 0.0,
                             seed: int = 0) -> Outcome:
    """Rebuild the PPO policy (LoRA summarizer merged + the saved ppo_adapter), sample summaries of hidden rude
    dialogues with the same seed with and without the adapter: the adapter's must be less toxic."""
    import torch
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    from labkit import finetune, models, ppo, prompts
    adir = ctx.artifacts / "ppo_adapter"
    if not (adir / "adapter_model.safetensors").is_file():
        return Outcome.fail("ppo_adapter/adapter_model.safetensors was not saved")
    prof = _profile(ctx)
    summarizer = finetune.lora_summarizer(prof, seed=0, device=torch.device("cpu"), progress=False)
    policy = ppo.policy_from_summarizer(summarizer, prof.lora, seed=0)
    try:
        result = set_peft_model_state_dict(policy.model, load_file(str(adir / "adapter_model.safetensors")))
    except (RuntimeError, ValueError, OSError) as err:
        return Outcome.fail(f"the saved adapter does not fit the policy: {err}")
    if getattr(result, "unexpected_keys", None):
        return Outcome.fail(f"the saved adapter has unexpected tensors ({len(result.unexpected_keys)})")
    tok = models.load_tokenizer(prof)
    hidden = _hidden_dialogues(ctx, n_hidden, toxic_only=True)
    ps = [prompts.summarize_prompt(r["dialogue"]) for r in hidden]
    after = ppo.sample_summaries(policy, tok, ps, max_new_tokens=max_new_tokens, seed=seed, progress=False)
    with policy.model.disable_adapter():
        before = ppo.sample_summaries(policy, tok, ps, max_new_tokens=max_new_tokens, seed=seed, progress=False)
    hb, ha = float(_hate(ctx, before).mean()), float(_hate(ctx, after).mean())
    detail = f"{len(ps)} hidden rude dialogues: mean P(hate) with your adapter {ha:.3f}, without {hb:.3f}"
    return Outcome.ok(detail) if ha <= hb - margin else Outcome.fail(detail)


# ---------------------------------------------------------------- exercise verifiers of labs 2 and 3

def _close_answer(answer: Any, expected: float, *, rel_tol: float, abs_tol: float, what: str) -> Outcome:
    a = _num(answer)
    if a is None:
        return Outcome.fail(f"expected a number, got {json.dumps(answer)[:60]}")
    if math.isclose(a, expected, rel_tol=rel_tol, abs_tol=abs_tol):
        return Outcome.ok()
    return Outcome.fail(f"{a:.4g} is not {what}")


@verifier("lab2_lora_gain_percent")
def lab2_lora_gain_percent(ctx: GradeContext, answer: Any, rel_tol: float = 1e-3, abs_tol: float = 0.05) -> Outcome:
    """100 * (LoRA − original) / original mean ROUGE-1, recomputed from summaries.csv."""
    rec = _lab2_recomputed(ctx)
    o, lo = rec["original"].scores["rouge1"], rec["lora"].scores["rouge1"]
    return _close_answer(answer, 100 * (lo - o) / o, rel_tol=rel_tol, abs_tol=abs_tol,
                         what="the relative ROUGE-1 gain of LoRA over the original model")


@verifier("lab2_checkpoint_ratio")
def lab2_checkpoint_ratio(ctx: GradeContext, answer: Any, rel_tol: float = 0.01) -> Outcome:
    """Size of full_model/model.safetensors over peft_adapter/adapter_model.safetensors, measured on the files."""
    full = ctx.artifacts / "full_model" / "model.safetensors"
    adapter = ctx.artifacts / "peft_adapter" / "adapter_model.safetensors"
    if not (full.is_file() and adapter.is_file()):
        return Outcome.fail("the saved full model or adapter is missing, so the ratio cannot be checked")
    return _close_answer(answer, full.stat().st_size / adapter.stat().st_size, rel_tol=rel_tol, abs_tol=0,
                         what="the size ratio of the saved weights")


@verifier("lab2_full_ft_memory_gb")
def lab2_full_ft_memory_gb(ctx: GradeContext, answer: Any, params: int = 247_577_856, rel_tol: float = 1e-3) -> Outcome:
    """The course's rule-of-thumb training memory of flan-t5-base, in GB (labkit.finetune.estimate_memory)."""
    from labkit.finetune import estimate_memory
    return _close_answer(answer, estimate_memory(params).training_bytes / 1e9, rel_tol=rel_tol, abs_tol=0,
                         what="the rule-of-thumb memory of full fine-tuning")


def _ppo_log(ctx: GradeContext) -> list[dict[str, Any]]:
    saved = ctx.artifacts / "ppo_adapter"
    for name in ("ppo_log.json", "log.json"):
        if (saved / name).is_file():
            try:
                data = json.loads((saved / name).read_text(encoding="utf-8"))
                if isinstance(data, list) and data:
                    return data
            except ValueError:
                pass
    log_ = ctx.results.get("ppo_log")
    return log_ if isinstance(log_, list) else []


@verifier("lab3_best_reward_step")
def lab3_best_reward_step(ctx: GradeContext, answer: Any) -> Outcome:
    """The PPO step with the highest mean reward (from the log saved beside the adapter, else the recorded one)."""
    entries = [e for e in _ppo_log(ctx) if isinstance(e, dict) and _num(e.get("reward_mean")) is not None]
    if not entries:
        return Outcome.fail("no PPO log to check the answer against")
    best = max(e["reward_mean"] for e in entries)
    steps = {int(e["step"]) for e in entries if e["reward_mean"] == best}
    return Outcome.ok() if answer in steps else Outcome.fail(f"step {json.dumps(answer)} did not have the highest reward")


def _lab3_hate_columns(ctx: GradeContext) -> tuple[Any, Any]:
    if "lab3_hate" not in ctx.cache:
        df = _read_csv(ctx, "toxicity_eval.csv", ["id", "summary_before", "summary_after"])
        ctx.cache["lab3_hate"] = (_hate(ctx, list(df["summary_before"])), _hate(ctx, list(df["summary_after"])))
    return ctx.cache["lab3_hate"]


@verifier("lab3_toxicity_drop_percent")
def lab3_toxicity_drop_percent(ctx: GradeContext, answer: Any, rel_tol: float = 0.01, abs_tol: float = 0.1) -> Outcome:
    """100 * (before − after) / before of the mean P(hate), rescored by the grader from toxicity_eval.csv."""
    before, after = _lab3_hate_columns(ctx)
    b, a = float(before.mean()), float(after.mean())
    return _close_answer(answer, 100 * (b - a) / b, rel_tol=rel_tol, abs_tol=abs_tol, what="the relative drop in toxicity")


@verifier("lab3_share_detoxified")
def lab3_share_detoxified(ctx: GradeContext, answer: Any, abs_tol: float = 0.0125) -> Outcome:
    """Share of prompts hateful before (P > 0.5) and not after, rescored by the grader."""
    before, after = _lab3_hate_columns(ctx)
    share = float(((before > 0.5) & (after <= 0.5)).mean())
    return _close_answer(answer, share, rel_tol=0, abs_tol=abs_tol, what="the share of summaries detoxified")


@verifier("lab1_tokens_cut")
def lab1_tokens_cut(ctx: GradeContext, answer: Any) -> Outcome:
    """Tokens the course's unbudgeted few-shot prompt (prompts.make_prompt) loses past the encoder limit."""
    from labkit import models, prompts
    params = _effective_params(ctx)
    test = _test_split(ctx)
    examples = prompts.rows_at(test, list(params.get("example_indices", [40, 150])), what="example_indices")
    shots = prompts.rows_at(test, list(params.get("shot_indices", [40, 80, 120])), what="shot_indices")
    prof = _profile(ctx)
    tok = models.load_tokenizer(prof)
    cut = max(0, prompts.count_tokens(tok, prompts.make_prompt(shots, examples[-1]["dialogue"])) - prof.max_source_tokens)
    if isinstance(answer, bool) or answer != cut:
        return Outcome.fail(f"{json.dumps(answer)} tokens is not right")
    return Outcome.ok()
