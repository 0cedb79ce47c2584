"""Foundation: profiles, paths, seeding, data loading and its error messages."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import labkit
from labkit.config import LabkitError, base_profile, choose_dtype, seed_everything
from labkit.data import load_dialogsum, load_toxicity, read_jsonl, take
from labkit.profiles import get_profile


def test_import_is_light():
    # `import labkit` must not pull torch: the cached fixtures check and the CLI stay fast.
    code = "import sys, labkit, labkit.config, labkit.record; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_every_name_labkit_lists_exists():
    # a name listed in labkit.__all__ but not shipped (a leftover) fails here, not in a learner's notebook
    code = "import importlib, labkit; [importlib.import_module(f'labkit.{n}') for n in labkit._SUBMODULES]; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr[-500:]
    assert {"labs", "grading", "training", "rubrics"} <= set(labkit.__all__) and "grade" not in labkit.__all__


def test_profiles_offline_default_and_course_settings():
    off = get_profile()
    assert off.name == "offline" and off.uses_fixtures
    course = get_profile("course")
    assert course.model == "google/flan-t5-base"
    assert course.dataset == "knkarthick/dialogsum"
    assert course.toxicity_model == "facebook/roberta-hate-speech-dynabench-r4-target"
    assert (course.lora.r, course.lora.alpha, course.lora.target_modules, course.lora.dropout) == (32, 32, ("q", "v"), 0.05)
    assert (course.ppo.learning_rate, course.ppo.batch_size, course.ppo.mini_batch_size) == (1.41e-5, 16, 4)
    assert (course.ppo.init_kl_coef, course.ppo.target_kl) == (0.2, 6.0)
    assert get_profile(" Course ").name == "course"


def test_unknown_profile_error_suggests():
    with pytest.raises(LabkitError) as err:
        get_profile("ofline")
    msg = str(err.value)
    assert "Unknown profile 'ofline'" in msg and "Did you mean 'offline'" in msg and "course" in msg


def test_profile_overrides_and_home(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    prof = get_profile("offline", lora_learning_rate=0.5)
    assert prof.lora_learning_rate == 0.5
    assert prof.model.startswith(str(tmp_path))
    with pytest.raises(LabkitError, match=r"get_profile got lora_rank, which is neither a field of a profile nor a "
                                          r"section of a registered lab's settings"):
        get_profile("offline", lora_rank=8)


def test_a_profile_without_the_labs_settings_says_where_they_come_from():
    base = base_profile("course")
    assert base.sections == {} and base.model == get_profile("course").model
    with pytest.raises(AttributeError, match=r"Profile 'course' has no 'ppo'.*labkit.profiles.get_profile"):
        base.ppo  # noqa: B018
    # a Profile given to get_profile is completed with the sections it lacks, and keeps its own
    own = base.with_sections(ppo="mine")
    assert get_profile(own).ppo == "mine" and get_profile(own).dpo == get_profile("course").dpo
    assert hash(get_profile("offline")) == hash(get_profile("offline"))  # still usable as a key


def test_dtype_is_fp32_on_cpu():
    import torch

    assert choose_dtype("cpu") == torch.float32


def test_seed_everything_repeats_and_rejects_bad_seed():
    import numpy as np
    import torch

    seed_everything(7)
    a = (torch.rand(3), np.random.rand(2))
    seed_everything(7)
    b = (torch.rand(3), np.random.rand(2))
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all()
    with pytest.raises(LabkitError, match="non-negative integer"):
        seed_everything(-1)


def test_load_project_data_splits():
    ds = load_dialogsum()
    assert set(ds) == {"train", "validation", "test"}
    assert ds["train"].column_names == ["id", "dialogue", "summary", "topic"]
    assert len(ds["train"]) >= 1000 and len(ds["test"]) >= 100


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_malformed_json_names_file_and_line(tmp_path):
    bad = _write(tmp_path / "bad.jsonl", [json.dumps({"dialogue": "#Person1#: hi", "summary": "s"}), "{not json"])
    with pytest.raises(LabkitError) as err:
        read_jsonl(bad)
    assert f"{bad}, line 2" in str(err.value) and "malformed JSON" in str(err.value)


def test_missing_field_names_field(tmp_path):
    bad = _write(tmp_path / "x.jsonl", [json.dumps({"id": "a", "dialogue": "#Person1#: hi"})])
    with pytest.raises(LabkitError, match=r"line 1: missing field 'summary'"):
        read_jsonl(bad)


def test_empty_dialogue_rejected(tmp_path):
    bad = _write(tmp_path / "x.jsonl", [json.dumps({"id": "a", "dialogue": "  ", "summary": "s"})])
    with pytest.raises(LabkitError, match=r"field 'dialogue' is empty"):
        read_jsonl(bad)


def test_non_string_field_rejected(tmp_path):
    bad = _write(tmp_path / "x.jsonl", [json.dumps({"dialogue": ["a"], "summary": "s"})])
    with pytest.raises(LabkitError, match=r"'dialogue' must be a string"):
        read_jsonl(bad)


def test_authors_multi_reference_format(tmp_path):
    row = {"fname": "test_1", "dialogue": "#Person1#: hi\n#Person2#: hello", "summary1": "A.", "summary2": "B.",
           "summary3": "C.", "topic1": "greeting"}
    path = _write(tmp_path / "dialogsum.test.jsonl", [json.dumps(row)])
    ds = load_dialogsum(path)
    assert list(ds) == ["test"]
    got = ds["test"][0]
    assert got["id"] == "test_1" and got["summary"] == "A." and got["references"] == ["A.", "B.", "C."]
    assert got["topic"] == "greeting"


def test_missing_data_file_error(tmp_path):
    with pytest.raises(LabkitError, match="does not exist"):
        load_dialogsum(tmp_path / "nope.jsonl")


def test_folder_without_splits_error(tmp_path):
    with pytest.raises(LabkitError, match="no DialogSum split files"):
        load_dialogsum(tmp_path)


def test_take_too_many_is_clear():
    ds = load_dialogsum()["test"]
    assert len(take(ds, 5)) == 5
    with pytest.raises(LabkitError, match=rf"n_eval=100000 is larger than the split, which has {len(ds)} rows"):
        take(ds, 100000)
    with pytest.raises(LabkitError, match="positive integer"):
        take(ds, 0)


def test_real_dialogsum_dev_loads(dialogsum_dev_path):
    ds = load_dialogsum(dialogsum_dev_path)
    assert list(ds) == ["validation"]
    dev = ds["validation"]
    assert len(dev) == 500
    assert dev[0]["id"] == "dev_0" and dev[0]["dialogue"].startswith("#Person1#:")


def test_toxicity_labels():
    rows = load_toxicity("train")
    assert {r["label"] for r in rows} == {"hate", "nothate"}


def test_lazy_submodules():
    assert labkit.config.base_profile is base_profile
    with pytest.raises(AttributeError):
        labkit.no_such_thing  # noqa: B018


def test_torch_threads_sets_and_restores_even_on_error():
    import torch

    from labkit.config import torch_threads

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
