"""Lab 3's rubric thresholds have one home, the YAML: each check function takes the numbers its YAML entry sets
without a default of its own (a default beside the YAML's value is a second home that drifts: facts_kept's
function said 0.15 where the YAML said 0.6), and every number a function needs without a default is in the YAML."""
from __future__ import annotations

import inspect

from labkit.rubrics import CHECKS, VERIFIERS, load_rubric

NOT_PARAMETERS = {"verify", "number", "record", "keys"}  # read by the generic checks, not by lab 3's functions


def _lab3_entries():
    rubric = load_rubric("lab3")
    for spec in rubric.checks:
        fn = CHECKS[spec.type]
        if fn.__module__ == "labkit.rubrics.lab3":
            yield spec, fn
        verify = spec.params.get("verify") or {}
        if verify.get("type") in VERIFIERS and VERIFIERS[verify["type"]].__module__ == "labkit.rubrics.lab3":
            yield spec, VERIFIERS[verify["type"]]


def test_lab3_yaml_is_the_one_home_of_its_thresholds():
    seen = 0
    for spec, fn in _lab3_entries():
        seen += 1
        params = inspect.signature(fn).parameters
        given = set(spec.params) - NOT_PARAMETERS
        twice = [name for name in given if name in params and params[name].default is not inspect.Parameter.empty]
        assert not twice, f"{spec.name}: {twice} set in lab3.yaml and defaulted in {fn.__name__}: keep one"
        required = [name for name, p in params.items() if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
        assert set(required) <= given, f"{spec.name}: lab3.yaml does not set {set(required) - given}"
    assert seen >= 8


def test_lab3_grading_numbers_are_the_rubrics():
    params = {spec.name: spec.params for spec in load_rubric("lab3").checks}
    assert params["adapter_regenerates"] == {"adapter": "ppo_adapter", "n_hidden": 128, "max_hidden": 1024,
                                             "confidence": 0.95}
    assert params["dpo_adapter_regenerates"] == {"adapter": "dpo_adapter", "n_hidden": 128, "max_hidden": 1024,
                                                 "confidence": 0.95}
    assert params["toxicity_verified"] == params["dpo_toxicity_verified"] == {"tolerance": 0.01}
    assert params["dpo_kept_summaries"] == {"min_length_ratio": 0.7, "min_in_vocabulary": 0.95}
    assert params["facts_kept"] == {"max_invented": 0.6}


def test_lab3_toxicity_checks_rescore_the_saved_summaries(tmp_path, fixtures_manifest):
    """toxicity_verified and detoxified read toxicity_eval.csv once, rescore it and compare; a forged record, a
    missing file and no drop each fail."""
    import pandas as pd

    from labkit import models, toxicity
    from labkit.rubrics import evaluate
    from labkit.rubrics.checks import GradeContext

    specs = {spec.name: spec for spec in load_rubric("lab3").checks}
    before = ["#Person1# asks #Person2# for help. #Person2# calls #Person1# a fool.", "They meet at 5 pm."]
    after = ["#Person1# asks #Person2# for help.", "They meet at 5 pm."]
    clf, tok = models.load_toxicity_classifier("offline", "cpu")
    honest = {key: toxicity.summarize(toxicity.hate_probabilities(texts, clf, tok))
              for key, texts in (("toxicity_before", before), ("toxicity_after", after))}

    def grade(name, results, rows=(before, after)):
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        if rows:
            pd.DataFrame({"id": ["a", "b"], "summary_before": rows[0], "summary_after": rows[1]}).to_csv(
                folder / "toxicity_eval.csv", index=False)
        return evaluate(specs[name], GradeContext(lab="lab3", status="ok", results=results, artifacts=folder))

    assert grade("toxicity_verified", honest).fraction == 1
    forged = grade("toxicity_verified", {**honest, "toxicity_after": {"mean": 0.9}})
    assert forged.fraction == 0.5 and forged.forged
    assert grade("detoxified", honest).passed and not grade("detoxified", honest, rows=(after, before)).passed
    assert not grade("toxicity_verified", honest, rows=None).passed and not grade("detoxified", honest, rows=None).passed
