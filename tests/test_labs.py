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
    assert labs.lab_of_notebook("lab1_copy.ipynb") == "lab1"
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
    from labkit.profiles import get_profile

    prof = labs.with_settings("lab3", get_profile("offline"), {"batch_size": 4, "ppo_steps": 2, "dataset": "/d"})
    assert prof.ppo.batch_size == 4 and prof.detox.ppo_steps == 2 and prof.dataset == "/d"
    assert prof.ppo.learning_rate == get_profile("offline").ppo.learning_rate
    lab2 = labs.with_settings("lab2", get_profile("course"), {"target_modules": ["q", "k", "v"]})
    assert lab2.fine_tuning.target_modules == ("q", "k", "v")
    assert lab2.ppo == get_profile("course").ppo  # another lab's sections stay as they were


@pytest.mark.parametrize("profile", ["offline", "course"])
def test_each_value_has_one_home(profile):
    """Lab 3 starts from lab 2's LoRA summarizer: its adapter and learning rate are lab 2's, not a copy."""
    from labkit.lab_settings.lora import LoraSettings
    from labkit.profiles import get_profile

    lab2, prof = labs.defaults("lab2", profile), get_profile(profile)
    assert prof.lora == LoraSettings(r=lab2["lora_r"], alpha=lab2["lora_alpha"], dropout=lab2["lora_dropout"],
                                     target_modules=tuple(lab2["target_modules"]))
    assert prof.lora_learning_rate == lab2["learning_rate_lora"]
    assert labs.sections(profile) == prof.sections and {"prompting", "fine_tuning", "ppo", "lora"} <= set(prof.sections)


def test_every_built_in_lab_declares_its_settings_beside_it():
    """Each built-in lab's sections come from its own module of labkit.lab_settings; config names no knob."""
    import inspect

    from labkit import config

    modules = {lab.id: {type(s.course).__module__ for s in lab.settings if s.knobs} for lab in labs.all_labs()[:3]}
    assert modules == {"lab1": {"labkit.lab_settings.prompting"}, "lab2": {"labkit.lab_settings.fine_tuning"},
                       "lab3": {"labkit.lab_settings.detox"}}
    source = inspect.getsource(config)
    for knob in ("lora_r", "init_kl_coef", "dpo_beta", "shot_indices", "max_target_tokens"):
        assert knob not in source, knob


# ---------------------------------------------------------------- parameters cells and profiles agree

def _parameters_cell(lab) -> dict:
    import ast

    import nbformat

    nb = nbformat.read(lab.notebook, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body
            if isinstance(node, ast.Assign)}


@pytest.mark.parametrize("lab_id", ["lab1", "lab2", "lab3"])
def test_parameters_cells_leave_every_setting_to_the_profile(lab_id):
    lab = labs.get(lab_id)
    cell = _parameters_cell(lab)
    offline, course = labs.defaults(lab_id, "offline"), labs.defaults(lab_id, "course")
    assert list(offline) == list(course)  # both profiles hold every setting
    assert set(offline) <= set(cell), f"{lab.notebook.name} lacks {set(offline) - set(cell)}"
    for name in offline:
        assert cell[name] is None, f"{lab_id}: {name} = {cell[name]!r} restates a profile's value"
        assert type(offline[name]) is type(course[name]), name


def test_course_profile_resolves_the_course_settings(tmp_path):
    from labkit.ppo import PPOConfig
    from labkit.session import start_lab

    cell = _parameters_cell(labs.get("lab2"))
    ctx = start_lab("lab2", profile="course", device="cpu", allow_cpu_course=True, output_dir=tmp_path / "2",
                    namespace=cell)
    want = {"lora_r": 32, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": ["q", "v"],
            "learning_rate_full": 1e-5, "learning_rate_lora": 1e-3, "batch_size": 8}
    assert {k: cell[k] for k in want} == want == {k: ctx.settings[k] for k in want}  # what the lab's cells read
    assert ctx.profile.fine_tuning.lora_r == 32 and ctx.profile.dataset == "knkarthick/dialogsum"
    cell = _parameters_cell(labs.get("lab3"))
    ctx = start_lab("lab3", profile="course", device="cpu", allow_cpu_course=True, output_dir=tmp_path / "3",
                    namespace=cell)
    config = PPOConfig.from_settings(ctx.profile.ppo, seed=0)  # as the lab's setup cell builds it
    assert (config.learning_rate, config.batch_size, config.mini_batch_size, config.ppo_epochs) == (1.41e-5, 16, 4, 1)
    assert (config.init_kl_coef, config.target_kl, config.adaptive_kl) == (0.2, 6.0, True)
    import json
    assert json.loads((tmp_path / "3" / "results.json").read_text())["settings"]["init_kl_coef"] == 0.2


def test_lab_cells_train_with_the_resolved_settings():
    """The training cells read the settings start_lab resolved, never a number of their own."""
    import nbformat

    lab2 = "\n".join(c.source for c in nbformat.read(labs.get("lab2").notebook, as_version=4).cells)
    for piece in ("learning_rate=learning_rate_full", "learning_rate=learning_rate_lora", "batch_size=batch_size",
                  "LoraSettings(r=lora_r, alpha=lora_alpha, dropout=lora_dropout", "max_steps=max_steps",
                  "learning_rate=learning_rate_prompt", "max_steps=min(prompt_tuning_steps, max_steps)",
                  "make_prompt_tuning_model(original_model, virtual_tokens"):
        assert piece in lab2, piece
    assert lab2.count("max_target_tokens=max_target_tokens") == 3 and "max_target_tokens=64" not in lab2
    lab3 = "\n".join(c.source for c in nbformat.read(labs.get("lab3").notebook, as_version=4).cells)
    assert "PPOConfig.from_settings(ctx.profile.ppo, seed=seed)" in lab3 and "steps=ppo_steps" in lab3


def test_start_lab_refuses_wrong_types_and_unknown_settings(tmp_path):
    from labkit.session import start_lab

    with pytest.raises(LabkitError, match=r"lora_r = '16' in lab2's parameters cell is not an integer.*or to None"):
        start_lab("lab2", output_dir=tmp_path, namespace={"lora_r": "16"})
    with pytest.raises(LabkitError, match=r"start_lab got lora_rank, which lab2 does not have"):
        start_lab("lab2", output_dir=tmp_path, lora_rank=8)
    ns = {"learning_rate_lora": 1, "temperatures": None}
    ctx = start_lab("lab2", output_dir=tmp_path, namespace=ns)
    assert ns["learning_rate_lora"] == 1.0 and isinstance(ns["learning_rate_lora"], float)
    assert ctx.settings["lora_r"] == labs.defaults("lab2")["lora_r"] == ns["lora_r"]


# ---------------------------------------------------------------- the dataset parameter

def _no_kernel(monkeypatch) -> None:
    from labkit import run as runmod

    def boom(*a, **k):
        raise AssertionError("a kernel was started for an invalid dataset")
    monkeypatch.setattr(runmod, "_run_child", boom)


@pytest.mark.parametrize("lab_id", ["lab1", "lab2", "lab3"])
def test_every_lab_takes_a_dataset_parameter(lab_id):
    from labkit.run_params import inspect_parameters

    assert inspect_parameters(labs.get(lab_id).notebook)["dataset"]["default"] == "None"


def test_bad_dataset_is_refused_before_a_kernel_starts(tmp_path, monkeypatch):
    from labkit import run as runmod
    from labkit.cli import main

    _no_kernel(monkeypatch)
    (tmp_path / "only-test").mkdir()
    (tmp_path / "only-test" / "test.jsonl").write_text('{"id": "a", "dialogue": "d", "summary": "s"}\n')
    cases = {str(tmp_path / "missing.jsonl"): "does not exist",
             "not a dataset name": "neither an existing file or folder nor a Hub dataset name",
             str(tmp_path / "only-test"): "has test (test.jsonl), but the lab reads the train split"}
    for dataset, why in cases.items():
        with pytest.raises(LabkitError) as err:
            runmod.execute(labs.get("lab2").notebook, tmp_path / "out", {"dataset": dataset})
        assert "Parameter 'dataset' of lab2_fine_tuning.ipynb" in str(err.value) and why in str(err.value)
        assert "folder holding train.jsonl" in str(err.value)  # and what would do
    assert main(["run", "lab3", "--out", str(tmp_path / "o"), "-p", f"dataset={tmp_path / 'only-test'}"]) == 2


def test_a_lab_runs_on_a_learners_own_data(tmp_path, fixtures_manifest, monkeypatch):
    """Lab 1 pointed at a folder holding one DialogSum file in the authors' format, without editing the notebook."""
    import json

    from labkit.data import load_dialogsum
    from labkit.run import execute

    rows = list(load_dialogsum("offline")["test"])[100:130]
    own = tmp_path / "my-dialogues"
    own.mkdir()
    with open(own / "dialogsum.test.jsonl", "w") as fh:
        for i, r in enumerate(rows):
            fh.write(json.dumps({"fname": f"mine_{i}", "dialogue": r["dialogue"], "summary1": r["summary"],
                                 "summary2": r["summary"], "topic1": r["topic"]}) + "\n")
    monkeypatch.chdir(tmp_path)  # a relative path is the caller's; the kernel runs in labs/ and gets it absolute
    res = execute(labs.get("lab1").notebook, tmp_path / "out", {"dataset": "my-dialogues", "n_eval": 4,
                  "example_indices": [0, 10], "shot_indices": [1, 2, 3]}, timeout=600)
    assert res.ok, res.message
    assert res.results["settings"]["dataset"] == str(own)
    import pandas as pd
    ids = set(pd.read_csv(res.output_dir / "generations.csv")["id"])
    assert ids and all(i.startswith("mine_") for i in ids)


_LAB7 = "labs: [{id: lab7, notebook: x.ipynb, title: t, settings: %s}]"


def test_extra_labs_file_errors_say_what_is_wrong(tmp_path, monkeypatch):
    bad = tmp_path / "labs.yaml"
    for text, why in (("labs: []", "has no 'labs' list"), ("labs: [{id: lab7, notebook: x.ipynb}]", "needs id, notebook"),
                      ("labs: [{id: Lab-7, notebook: x.ipynb, title: t}]", "lower-case letters and digits"),
                      ("labs: [{id: lab1, notebook: x.ipynb, title: t}]", "already registered"),
                      # its settings: each knob's course value, another profile's with the reason, of one kind
                      (_LAB7 % "[prompting]", r"expected a mapping of each knob to its values"),
                      (_LAB7 % "{n_eval: {offline: 12}}", r"setting 'n_eval' has \['offline'\]; expected course"),
                      (_LAB7 % "{n_eval: {course: 100, ofline: 12}}", r"expected course .* optionally offline, why"),
                      (_LAB7 % "{n_eval: {course: 100, offline: 12}}", r"in offline but says not why; add why:"),
                      (_LAB7 % "{n_eval: {course: 100, offline: 1.5, why: w}}", r"offline value is 1.5, not an integer"),
                      (_LAB7 % "{n_eval: null}", r"None is not a value"),
                      (_LAB7 % "{seed: 3}", r"'seed' is one of the names every lab's parameters cell already has"),
                      (_LAB7 % "{N-eval: 3}", r"'N-eval' is not a usable name"),
                      ("labs: [{id: ppo, notebook: x.ipynb, title: t, settings: {k: 1}}]",
                       r"section 'ppo' is already a section of lab3")):
        bad.write_text(text)
        monkeypatch.setenv(labs.EXTRA_LABS_ENV, str(bad))
        with pytest.raises(LabkitError, match=why):
            labs.ids()
        monkeypatch.delenv(labs.EXTRA_LABS_ENV)
        labs.ids()  # forgets the file again
    monkeypatch.setenv(labs.EXTRA_LABS_ENV, str(tmp_path / "missing.yaml"))
    with pytest.raises(LabkitError, match="does not exist"):
        labs.get("lab1")
