"""The generic side of the rubrics: the context every check reads, checks any lab can use, shared helpers.

Every check gets a :class:`GradeContext` (the run's status, its recorded
results, the artifacts folder, the effective parameters) and returns an
:class:`~labkit.rubrics.Outcome`. Checks never trust a recorded number on its
own: they recompute it from the saved artifacts against data the grader loads
itself, and mark a contradiction ``forged``. Expensive recomputations are
memoised in ``ctx.cache`` so several checks can share them.

Each lab's own checks live beside its rubric (``labkit/rubrics/lab1.py`` next
to ``lab1.yaml``) and build on the helpers here.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from labkit.config import DEFAULT_PROFILE, OFFLINE_PROFILE
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
    profile: str = DEFAULT_PROFILE
    run_message: str = ""
    cache: dict[str, Any] = field(default_factory=dict)
    dataset: str | None = None        # the data the run was graded on (None: the profile's)
    hidden_seed: int | None = None    # seed of the dialogues re-run checks generate (drawn once per batch)
    hidden_data: str | None = None    # an instructor's file of hidden dialogues (the rubric's hidden_data)
    hidden_source: str | None = None  # where the re-run checks' dialogues came from (set by hidden_dialogues)

    def setting(self, name: str) -> Any:
        """A setting of the run: its parameter, or the profile's value when that is None (as start_lab resolved it)."""
        value = self.params.get(name)
        if value is None:
            from labkit import labs
            if labs.find(self.lab) is not None:
                value = labs.defaults(self.lab, self.profile).get(name)
        return value


def lookup(data: Any, path: str) -> Any:
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


def number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(float(x)):
        return None
    return float(x)


def mean_of(block: Any, metric: str = "rouge1") -> float | None:
    v = lookup(block, metric)
    return number(v.get("mean")) if isinstance(v, dict) else number(v)


def close(a: float | None, b: float | None, tol: float) -> bool:
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
    v = number(lookup(ctx.results, key))
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
        return Outcome.not_answered(f"Exercise {number} was not answered")
    if not verify:
        return Outcome.ok(f"answered: {json.dumps(answer)[:80]}")
    spec = dict(verify)
    fn = VERIFIERS[spec.pop("type")]
    try:
        return fn(ctx, answer, **spec)
    except Exception as err:  # a verifier that cannot recompute must not crash the grade
        log.debug("verifier failed", exc_info=True)
        return Outcome.fail(f"could not verify the answer ({type(err).__name__}: {err})")


MAX_ANSWER_CHARS = 4000  # a hand-graded answer longer than this is cut for the TA's sheet


@check("manual")
def manual(ctx: GradeContext, record: str = "reflection") -> Outcome:
    """A question a person grades: the recorded text goes to the TA's sheet and its points stay pending;
    nothing (None, blank, not text) recorded under ``record`` earns 0 as not answered."""
    answer = ctx.results.get(record)
    if not isinstance(answer, str) or not answer.strip():
        return Outcome.not_answered(f"{record} was not answered" + (
            "" if answer is None or isinstance(answer, str) else f" (recorded a {type(answer).__name__}, not text)"))
    text = answer.strip()
    if len(text) > MAX_ANSWER_CHARS:
        text = text[:MAX_ANSWER_CHARS] + f" [cut: the answer has {len(answer):,} characters]"
    return Outcome.for_a_person(text)


@verifier("equals_result")
def equals_result(ctx: GradeContext, answer: Any, path: str) -> Outcome:
    """The answer equals a recorded value (path into the results)."""
    expected = lookup(ctx.results, path)
    return Outcome.ok() if answer == expected else Outcome.fail(f"expected the value of {path}")


@verifier("equals")
def equals(ctx: GradeContext, answer: Any, value: Any) -> Outcome:
    """The answer equals a constant."""
    return Outcome.ok() if answer == value else Outcome.fail(f"answer {json.dumps(answer)[:60]} is not correct")


@verifier("close_to_result")
def close_to_result(ctx: GradeContext, answer: Any, path: str, abs_tol: float = 1e-6, rel_tol: float = 1e-3) -> Outcome:
    """A number close to a recorded value."""
    a, e = number(answer), number(lookup(ctx.results, path))
    if a is None:
        return Outcome.fail(f"expected a number, got {json.dumps(answer)[:60]}")
    if e is None:
        return Outcome.fail(f"{path} was not recorded, so the answer cannot be checked")
    ok = math.isclose(a, e, rel_tol=rel_tol, abs_tol=abs_tol)
    return Outcome.ok() if ok else Outcome.fail(f"{a:.4g} is not the expected value")


def adapter_param_count(adapter_dir: Path) -> int:
    from safetensors import safe_open
    path = adapter_dir / "adapter_model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{adapter_dir.name}/adapter_model.safetensors was not saved")
    total = 0
    with safe_open(str(path), framework="pt") as fh:
        for key in fh.keys():
            if "lora_" in key or "modules_to_save" in key or key == "prompt_embeddings":  # LoRA or a soft prompt
                n = 1
                for d in fh.get_slice(key).get_shape():
                    n *= d
                total += n
    return total


@check("adapter_trainable_params")
def adapter_trainable_params(ctx: GradeContext, adapter: str = "peft_adapter", key: str = "trainable_params.lora.trainable") -> Outcome:
    """The recorded trainable-parameter count equals the parameters in the saved adapter."""
    recorded = lookup(ctx.results, key)
    try:
        counted = adapter_param_count(ctx.artifacts / adapter)
    except (FileNotFoundError, OSError, ValueError) as err:
        return Outcome.fail(str(err))
    if recorded == counted:
        return Outcome.ok(f"{counted:,} trainable parameters")
    return Outcome.fail(f"recorded {recorded}, the saved adapter has {counted:,}", forged=recorded is not None)


# ---------------------------------------------------------------- helpers of the labs' checks

def grader_profile(ctx: GradeContext) -> Any:
    """The profile the grader loads its own data and models from (with the run's dataset when one was given)."""
    from labkit.profiles import get_profile
    return get_profile(ctx.profile, **({"dataset": str(ctx.dataset)} if ctx.dataset else {}))


def grader_test_split(ctx: GradeContext) -> Any:
    if "test" not in ctx.cache:
        from labkit.data import load_dialogsum
        ctx.cache["test"] = load_dialogsum(grader_profile(ctx))["test"]
    return ctx.cache["test"]


def references(ctx: GradeContext) -> dict[str, str]:
    """id → reference summary, loaded by the grader itself."""
    if "refs" not in ctx.cache:
        test = grader_test_split(ctx)
        ctx.cache["refs"] = {str(i): s for i, s in zip(test["id"], test["summary"])}
    return ctx.cache["refs"]


def dialogues(ctx: GradeContext) -> dict[str, str]:
    """id → dialogue over every split of the grader's own data (lab 3's held-out prompts come from train)."""
    if "dialogues" not in ctx.cache:
        from labkit.data import load_dialogsum
        ctx.cache["dialogues"] = {str(i): d for split in load_dialogsum(grader_profile(ctx)).values()
                                  for i, d in zip(split["id"], split["dialogue"])}
    return ctx.cache["dialogues"]


def invented_rates(ctx: GradeContext, df: Any, columns: dict[str, str], max_rate: float) -> Outcome:
    """The facts check of saved outputs, recomputed from ``df`` (a saved CSV with an ``id`` column) against the
    grader's own dialogues: for each name → column, the invented-fact rate (``labkit.facts``) must be at most
    ``max_rate``; partial credit per column."""
    from labkit import facts
    source = dialogues(ctx)
    unknown = sorted({str(i) for i in df["id"] if str(i) not in source})
    if unknown:
        return Outcome.fail(f"ids that are not dialogues of the data: {', '.join(unknown[:3])}")
    held, parts = 0, []
    for name, column in columns.items():
        if column not in df.columns:
            parts.append(f"{name}: column {column} missing")
            continue
        result = facts.check([str(t) for t in df[column]], [source[str(i)] for i in df["id"]])
        held += result.invented_rate <= max_rate
        parts.append(f"{name} {result.invented_rate:.3f} of {result.n_facts} facts invented")
    return Outcome(held / len(columns) if columns else 1.0, "; ".join(parts) + f" (at most {max_rate:.2f})")


def read_csv(ctx: GradeContext, name: str, columns: list[str]) -> Any:
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


def rouge_of(preds: list[str], refs: list[str]) -> Any:
    from labkit.metrics import rouge
    return rouge([str(p) for p in preds], [str(r) for r in refs], n_resamples=100, seed=0)


def reference_mismatch(ctx: GradeContext, df: Any, ref_col: str) -> list[str]:
    refs = references(ctx)
    return [i for i, r in zip(df["id"], df[ref_col]) if refs.get(str(i)) != r]


def recorded_rouge_matches(ctx: GradeContext, key: str, recompute: Callable[[GradeContext], dict[str, Any]], *,
                           tolerance: float, what: str) -> Outcome:
    """The mean ROUGE-1 recorded under ``key`` (name → a RougeResult's dict: a strategy, a model) against
    ``recompute(ctx)`` (name → the RougeResult the grader recomputed from the saved outputs), entry by entry.

    Every entry of either side counts, and a missing one is never skipped: an entry recorded and recomputed
    within ``tolerance`` passes; one whose recorded mean differs or is not a number, or that was recorded but
    has no saved outputs to recompute it from, fails and marks the check forged (a recorded number the
    artifacts do not back); one recomputed from the saved outputs but missing from the record fails with that
    reason (nothing was claimed, so not forged). Partial credit: the share of entries that pass."""
    recorded = ctx.results.get(key)
    if not isinstance(recorded, dict) or not recorded:
        return Outcome.fail(f"{key} was not recorded")
    try:
        recomputed = recompute(ctx)
    except (FileNotFoundError, ValueError) as err:
        return Outcome.fail(str(err))
    good, bad, forged = [], [], False
    for name in [*recomputed, *(n for n in recorded if n not in recomputed)]:
        theirs, r = mean_of(recorded.get(name)), recomputed.get(name)
        mine = r.scores.get("rouge1") if r is not None else None
        if name not in recorded:
            bad.append(f"{name} (not recorded, recomputed {'-' if mine is None else f'{mine:.4f}'})")
        elif mine is None:
            bad.append(f"{name} (recorded {theirs}, nothing saved to recompute it from)")
            forged = True
        elif close(theirs, mine, tolerance):
            good.append(name)
        else:
            bad.append(f"{name} (recorded {theirs}, recomputed {mine:.4f})")
            forged = True
    detail = "mismatch: " + "; ".join(bad) if bad else f"all {len(good)} {what} match"
    return Outcome(len(good) / (len(good) + len(bad)), detail, forged=forged)


def draw_hidden_seed() -> int:
    """A fresh seed for a batch's hidden dialogues: unguessable, so no student can have generated them."""
    import secrets
    return secrets.randbelow(2**31 - 1) + 1


def _generated_dialogues(ctx: GradeContext, n: int, toxic_only: bool) -> list[dict]:
    """``n`` dialogues made now by labkit.datagen with the batch's seed (the same generator, hence the same
    kind of dialogue, as the lab's data), none of them a dialogue the lab's data holds; only rude ones when
    ``toxic_only``."""
    import math

    from labkit import datagen
    from labkit.data import load_dialogsum
    from labkit.insults import is_toxic_text
    if ctx.hidden_seed is None:
        ctx.hidden_seed = draw_hidden_seed()
    public = ctx.cache.get("public_dialogues")
    if public is None:
        splits = load_dialogsum(grader_profile(ctx))
        public = ctx.cache["public_dialogues"] = {str(d) for name in splits for d in splits[name]["dialogue"]}
    wanted = math.ceil(n / datagen.TOXIC_SHARE) if toxic_only else n
    size = wanted + max(8, wanted // 4)  # room for the rare dialogue that the lab's data holds too
    rows = datagen.generate_dialogsum(seed=int(ctx.hidden_seed), sizes={"hidden": size})["hidden"]
    rows = [r for r in rows if r["dialogue"] not in public]
    if toxic_only:
        rows = [r for r in rows if is_toxic_text(r["summary"])]
    return rows[:n]


def _hidden_file(ctx: GradeContext, n: int, toxic_only: bool) -> list[dict]:
    """Dialogues of the instructor's file named by the rubric's ``hidden_data`` (a DialogSum jsonl file)."""
    from labkit.config import LabkitError, data_dir
    path = Path(str(ctx.hidden_data))
    if not path.is_absolute():
        path = data_dir().parent / path
    if not path.is_file():
        raise LabkitError(f"the rubric's hidden_data {path} does not exist (expected a DialogSum .jsonl file the "
                          "student edition does not ship)")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                if isinstance(row, dict) and "dialogue" in row and "summary" in row:
                    rows.append(row)
    if toxic_only:
        from labkit.insults import is_toxic_text
        rows = [r for r in rows if is_toxic_text(r["summary"])] or rows
    return rows[:n]


def hidden_dialogues(ctx: GradeContext, n: int, toxic_only: bool = False) -> list[dict]:
    """Dialogues the learner cannot have had, for the checks that re-run a saved adapter.

    - the rubric's ``hidden_data`` (an instructor's DialogSum jsonl file, which the student edition does not
      ship and the sandbox masks) when it names one;
    - else, on the offline profile's own data: dialogues generated now by :mod:`labkit.datagen` with the
      batch's seed (``ctx.hidden_seed``, drawn by the grader per batch and recorded in the grades), leaving out
      any dialogue the lab's data holds;
    - else (the course profile, or another dataset): that data's validation split, which learners can have:
      give the rubric a ``hidden_data`` file there.

    ``toxic_only``: only dialogues with a rude turn. Where they came from is left in ``ctx.hidden_source``."""
    key = f"hidden:{n}:{toxic_only}"
    if key not in ctx.cache:
        if ctx.hidden_data:
            rows = _hidden_file(ctx, n, toxic_only)
            ctx.hidden_source = f"the rubric's hidden_data file {Path(str(ctx.hidden_data)).name}"
        elif ctx.profile == OFFLINE_PROFILE and not ctx.dataset:
            rows = _generated_dialogues(ctx, n, toxic_only)
            ctx.hidden_source = f"generated at grading time by labkit.datagen, seed {ctx.hidden_seed}"
        else:
            from labkit.data import load_dialogsum
            rows = list(load_dialogsum(grader_profile(ctx))["validation"])
            if toxic_only:
                from labkit.insults import is_toxic_text
                rows = [r for r in rows if is_toxic_text(r["summary"])] or rows
            rows = rows[:n]
            ctx.hidden_source = "the validation split (learners have it: name a hidden_data file in the rubric)"
        ctx.cache[key] = rows
    return ctx.cache[key]


def significant_gain(gains: Any, *, confidence: float = 0.95, min_gain: float = 0.0) -> tuple[bool, float, float]:
    """Is a paired per-dialogue gain beyond what noise on this many dialogues reaches? (passed, mean gain,
    one-sided lower confidence bound of the mean).

    The bound is the paired t bound, ``mean - t(confidence, n-1) * sd / sqrt(n)`` (scipy.stats.t): the
    dialogues are a random sample, and the bound is what their mean gain would still be, at ``confidence``,
    on another sample of as many. It passes when the bound lies above ``min_gain`` and above 0. A model that
    changed nothing has a gain of exactly 0 on every dialogue, a bound of 0, and never passes; a trained one
    passes wherever its gain is real, on any machine, whatever the exact numbers there."""
    import numpy as np
    from scipy import stats

    g = np.asarray(list(gains), dtype=float)
    g = g[np.isfinite(g)]
    if g.size == 0:
        return False, 0.0, 0.0
    mean = float(g.mean())
    if g.size == 1 or np.all(g == g[0]):
        low = mean if g.size > 1 else float("-inf")
    else:
        low = mean - float(stats.t.ppf(confidence, g.size - 1)) * float(g.std(ddof=1)) / float(np.sqrt(g.size))
    return bool(low > max(0.0, min_gain)), mean, float(low)


def close_answer(answer: Any, expected: float, *, rel_tol: float, abs_tol: float, what: str) -> Outcome:
    a = number(answer)
    if a is None:
        return Outcome.fail(f"expected a number, got {json.dumps(answer)[:60]}")
    if math.isclose(a, expected, rel_tol=rel_tol, abs_tol=abs_tol):
        return Outcome.ok()
    return Outcome.fail(f"{a:.4g} is not {what}")
