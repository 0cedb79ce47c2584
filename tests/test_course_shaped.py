"""All three labs with profile="course" at flan-t5-base size, on this CPU: the course-shaped stand-in in
LABKIT_MODELS, the real DialogSum validation split as the dataset, the course's settings with only the sizes
turned down (as ../shared/acceptance/course-shaped does). About 10 minutes and 16 GB of memory at peak (lab 2):
run with ``make test-course``. Random weights: the assertions are about shapes, settings and that every cell
runs at full size, never about quality.
"""
from __future__ import annotations

import pytest

from labkit import labs, standin
from labkit.config import labkit_home

pytestmark = [pytest.mark.slow, pytest.mark.course_shaped]

SIZES = {  # the acceptance bar's turned-down sizes
    "lab1": {"n_eval": 4},
    "lab2": {"n_eval": 4, "max_steps": 2, "train_size": 16},
    "lab3": {"n_eval": 4, "ppo_steps": 1, "batch_size": 4, "mini_batch_size": 2, "min_new_tokens": 8,
             "max_new_tokens": 16, "dpo_steps": 1, "dpo_batch_size": 2, "dpo_prompts": 4},
}


@pytest.fixture(scope="module")
def course_models(monkeypatch_module) -> str:
    """The stand-in, built once into LABKIT_HOME/course-shaped (about 20 s, 1.5 GB) and named by LABKIT_MODELS."""
    root = labkit_home() / "course-shaped"
    standin.build(root)
    monkeypatch_module.setenv("LABKIT_MODELS", str(root))
    return str(root)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.mark.parametrize("lab_id", ["lab1", "lab2", "lab3"])
def test_lab_runs_with_the_course_profile_at_full_size(lab_id, course_models, dialogsum_dev_path, tmp_path):
    from labkit.run import execute

    res = execute(labs.get(lab_id).notebook, tmp_path, {"dataset": str(dialogsum_dev_path), **SIZES[lab_id]},
                  profile="course", cell_timeout=1800, timeout=1800)
    assert res.ok, f"{res.status}: {res.message}"
    results = res.results
    assert results["run_info"]["profile"] == "course" and results["run_info"]["models"].startswith("course-shaped")
    settings, course = results["settings"], labs.defaults(lab_id, "course")
    for name, value in settings.items():  # the course's value for everything not turned down
        want = str(dialogsum_dev_path) if name == "dataset" else SIZES[lab_id].get(name, course[name])
        assert value == pytest.approx(want) if isinstance(want, float) else value == want, name
    if lab_id == "lab1":
        tokens = results["prompt_tokens"]
        assert set(tokens) == {"no_prompt", "zero_shot", "zero_shot_flan", "one_shot", "few_shot"}
        assert all(t["tokens"] <= t["limit"] == 512 for t in tokens.values())
        assert tokens["few_shot"]["tokens_before"] > 512  # the course's overflow, caught by the budget
    if lab_id == "lab2":
        counts = results["trainable_params"]
        assert (counts["full_ft"]["trainable"], counts["lora"]["trainable"]) == (247_577_856, 3_538_944)
        assert counts["prompt_tuning"]["trainable"] == 2 * 20 * 768  # 20 virtual tokens for encoder and decoder
        assert results["checkpoint_mb"]["full_ft"] > 900 and results["checkpoint_mb"]["lora"] < 20
    if lab_id == "lab3":
        assert results["trainable_params"]["trainable"] == 3_539_713  # the course's LoRA + value head
        assert results["ppo_log"][0]["beta"] == pytest.approx(0.2)
