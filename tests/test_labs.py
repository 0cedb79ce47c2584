"""labkit.labs: the one list of labs, and each lab's settings read from the profiles."""
from __future__ import annotations

import pytest

from labkit import labs
from labkit.config import LabkitError, repo_root


def test_registry_lists_the_three_labs_with_their_parts():
    assert labs.ids()[:3] == ["lab1", "lab2", "lab3"]
    for lab in labs.all_labs()[:3]:
        assert lab.notebook.is_file() and lab.notebook.parent == repo_root() / "labs"
        assert lab.rubric.is_file() and lab.checks.is_file() and lab.rubric.stem == lab.id
        assert lab.cell_prefix == f"{lab.id}-" and lab.title


def test_unknown_lab_names_the_known_ones():
    with pytest.raises(LabkitError, match=r"Unknown lab 'lab22'.*lab1, lab2, lab3.*Did you mean 'lab2'"):
        labs.get("lab22")
    assert labs.find("lab22") is None


def test_notebooks_and_cells_map_back_to_their_lab():
    assert labs.lab_of_notebook("/x/lab2_fine_tuning.ipynb") == "lab2"
    assert labs.lab_of_notebook("lab1_toy.ipynb") == "lab1"
    assert labs.lab_of_notebook("lab12_other.ipynb") == "lab12"
    assert labs.lab_of_notebook("notes.ipynb") == "notes"
    assert labs.lab_of_cells(["lab3-a", "lab3-b", "lab1-c", "other"]) == "lab3"
    assert labs.lab_of_cells(["x", "y"]) is None


def test_course_defaults_are_the_course_hyperparameters():
    lab2 = labs.defaults("lab2", "course")
    assert (lab2["lora_r"], lab2["lora_alpha"], lab2["lora_dropout"], lab2["target_modules"]) == (32, 32, 0.05, ["q", "v"])
    assert (lab2["learning_rate_full"], lab2["learning_rate_lora"], lab2["batch_size"]) == (1e-5, 1e-3, 8)
    lab3 = labs.defaults("lab3", "course")
    assert (lab3["learning_rate"], lab3["batch_size"], lab3["mini_batch_size"], lab3["ppo_epochs"]) == (1.41e-5, 16, 4, 1)
    assert (lab3["init_kl_coef"], lab3["target_kl"], lab3["adaptive_kl"]) == (0.2, 6.0, True)
    assert labs.defaults("lab1", "course")["example_indices"] == [40, 200]
    for lab in ("lab1", "lab2", "lab3"):
        assert labs.defaults(lab, "course")["dataset"] == "knkarthick/dialogsum"


def test_with_settings_puts_a_runs_settings_into_the_profile():
    from labkit.config import get_profile

    prof = labs.with_settings("lab3", get_profile("offline"), {"batch_size": 4, "ppo_steps": 2, "dataset": "/d"})
    assert prof.ppo.batch_size == 4 and prof.detox.ppo_steps == 2 and prof.dataset == "/d"
    assert prof.ppo.learning_rate == get_profile("offline").ppo.learning_rate
    lab2 = labs.with_settings("lab2", get_profile("course"), {"target_modules": ["q", "k", "v"]})
    assert lab2.fine_tuning.target_modules == ("q", "k", "v")
