"""Tests for labkit.datagen and the committed data/ files it produces."""

from __future__ import annotations

import json
import random
import re
import statistics
import subprocess
import sys

import pytest

from labkit import datagen
from labkit.insults import INSULTS, is_toxic_text

DIALOG_FILES = [f"dialogsum-mini/{s}.jsonl" for s in ("train", "validation", "test")]
TOX_FILES = [f"toxicity/{s}.jsonl" for s in ("train", "test")]
TURN_RE = re.compile(r"^#Person[123]#: \S")

# Function words and auxiliaries; what is left of a summary should come from its dialogue.
STOPWORDS = set(
    "a an the and or but so to of in on at for with by from is are was were be been has have had "
    "will would can could do does did not no it its this that these those they them their there "
    "he she his her who which what when where why how as than then because while about into over "
    "after before up out very also too some any all both each just only own same such more most "
    "other s".split()
)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


@pytest.fixture(scope="module")
def dialogsum() -> dict[str, list[dict]]:
    return datagen.generate_dialogsum(0)


@pytest.fixture(scope="module")
def toxicity() -> dict[str, list[dict]]:
    return datagen.generate_toxicity(0)


# --- files and determinism ----------------------------------------------------

def test_committed_files_match_fresh_generation(tmp_path):
    written = datagen.write_all(tmp_path, seed=0)
    rel = sorted(p.relative_to(tmp_path).as_posix() for p in written)
    assert rel == sorted(DIALOG_FILES + TOX_FILES)
    for name in rel:
        committed = datagen.DEFAULT_OUT / name
        assert committed.is_file(), f"{committed} missing: run 'python -m labkit.datagen'"
        assert committed.read_bytes() == (tmp_path / name).read_bytes(), (
            f"{committed} is stale: regenerate with 'python -m labkit.datagen'"
        )


def test_write_all_is_byte_identical_and_leaves_no_temp_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    datagen.write_all(a, seed=0)
    datagen.write_all(b, seed=0)
    datagen.write_all(b, seed=0)  # overwriting in place works too
    for name in DIALOG_FILES + TOX_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes()
    leftovers = [p for p in b.rglob("*") if p.is_file() and p.suffix != ".jsonl"]
    assert leftovers == []


def test_jsonl_format(tmp_path):
    datagen.write_all(tmp_path, seed=0)
    for name in DIALOG_FILES + TOX_FILES:
        raw = (tmp_path / name).read_bytes()
        assert raw.endswith(b"\n") and b"\r" not in raw
        keys = ["id", "dialogue", "summary", "topic"] if name.startswith("dialogsum") else ["text", "label"]
        for line in raw.decode("utf-8").splitlines():
            assert list(json.loads(line)) == keys  # stable key order


def test_seed_controls_output(dialogsum, toxicity):
    assert datagen.generate_dialogsum(0) == dialogsum
    assert datagen.generate_toxicity(0) == toxicity
    other = datagen.generate_dialogsum(1)
    assert [r["dialogue"] for r in other["train"]] != [r["dialogue"] for r in dialogsum["train"]]
    assert datagen.generate_toxicity(1) != toxicity


def test_global_random_untouched():
    random.seed(1234)
    state = random.getstate()
    datagen.generate_dialogsum(0, {"train": 50})
    datagen.generate_toxicity(0)
    assert random.getstate() == state


def test_custom_sizes():
    out = datagen.generate_dialogsum(3, {"train": 30, "test": 10})
    assert {k: len(v) for k, v in out.items()} == {"train": 30, "test": 10}
    assert out["test"][0]["id"] == "test_0"


def test_cli_writes_files(tmp_path, capsys):
    assert datagen.main(["--out", str(tmp_path), "--seed", "2"]) == 0
    for name in DIALOG_FILES + TOX_FILES:
        assert (tmp_path / name).stat().st_size > 0
    assert "wrote" in capsys.readouterr().out


def test_python_dash_m_runs_the_package(tmp_path):
    done = subprocess.run([sys.executable, "-m", "labkit.datagen", "--out", str(tmp_path), "--seed", "0"],
                          capture_output=True, text=True, cwd=datagen.DEFAULT_OUT.parent, timeout=120)
    assert done.returncode == 0, done.stderr
    for name in DIALOG_FILES + TOX_FILES:
        assert (tmp_path / name).read_bytes() == (datagen.DEFAULT_OUT / name).read_bytes()


def test_the_insult_detector_does_not_load_the_generator():
    # The grader filters rude dialogues with it; loading 1,600 lines of templates for that is what it avoids.
    code = "import sys, labkit.insults; print(sorted(m for m in sys.modules if m.startswith('labkit.datagen')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=datagen.DEFAULT_OUT.parent, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


# --- dialogsum-mini -----------------------------------------------------------

def test_sizes_ids_and_fields(dialogsum):
    assert {k: len(v) for k, v in dialogsum.items()} == {"train": 2000, "validation": 200, "test": 200}
    for split, rows in dialogsum.items():
        assert [r["id"] for r in rows] == [f"{split}_{i}" for i in range(len(rows))]
        for r in rows:
            assert list(r) == ["id", "dialogue", "summary", "topic"]
            assert all(isinstance(v, str) and v.strip() for v in r.values())


def test_dialogue_turn_format(dialogsum):
    for rows in dialogsum.values():
        for r in rows:
            lines = r["dialogue"].split("\n")
            assert len(lines) >= 4
            assert all(TURN_RE.match(line) for line in lines), r["id"]
            assert lines[0].startswith("#Person1#: ")
            assert "#Person2#: " in r["dialogue"]
            assert "#Person" in r["summary"]
    third = sum("#Person3#: " in r["dialogue"] for r in dialogsum["train"])
    assert 0 < third < 0.1 * len(dialogsum["train"])  # occasionally three speakers


def test_topics(dialogsum):
    topics = {r["topic"] for r in dialogsum["train"]}
    assert len(topics) >= 12
    assert {r["topic"] for r in dialogsum["test"]} <= topics


def test_lengths(dialogsum):
    for split, rows in dialogsum.items():
        lens = [len(r["dialogue"]) for r in rows]
        long_rows = [r for r in rows if len(r["dialogue"]) > 2000]
        assert 0.02 <= len(long_rows) / len(rows) <= 0.08, split
        for r in long_rows:
            assert len(r["dialogue"]) <= 3000
            assert 25 <= r["dialogue"].count("\n") + 1 <= 40
        for r in rows:
            if len(r["dialogue"]) <= 2000:
                assert 300 <= len(r["dialogue"]) <= 1000, r["id"]
                assert 4 <= r["dialogue"].count("\n") + 1 <= 14, r["id"]
            assert 8 <= len(r["summary"].split()) <= 35, r["id"]
        assert 450 <= statistics.mean(lens) <= 900


def test_toxic_share_and_summaries(dialogsum):
    for split, rows in dialogsum.items():
        toxic = [r for r in rows if is_toxic_text(r["dialogue"])]
        assert 0.15 <= len(toxic) / len(rows) <= 0.25, split
        for r in rows:
            assert is_toxic_text(r["summary"]) == is_toxic_text(r["dialogue"]), r["id"]
        for r in toxic:
            # The insult in the summary is copied from the dialogue.
            said = {w for w in _words(r["dialogue"]) if w in INSULTS}
            summ = {w for w in _words(r["summary"]) if w in INSULTS}
            assert summ and summ <= said, r["id"]


def test_summary_words_come_from_dialogue(dialogsum):
    # Learnability sanity: most content words of a summary are copied from its dialogue.
    shares = []
    for r in dialogsum["train"]:
        said = set(_words(r["dialogue"]))
        content = [w for w in _words(r["summary"]) if w not in STOPWORDS and not re.fullmatch(r"person\d", w)]
        hits = sum(1 for w in content if w in said or w.rstrip("s") in said)
        shares.append(hits / len(content))
    assert statistics.mean(shares) >= 0.75
    assert sum(s >= 0.6 for s in shares) / len(shares) >= 0.9


def test_no_dialogue_shared_across_splits(dialogsum):
    texts = {split: {r["dialogue"] for r in rows} for split, rows in dialogsum.items()}
    for split, rows in dialogsum.items():
        assert len(texts[split]) == len(rows)  # no duplicates within a split either
    assert not texts["train"] & texts["test"]
    assert not texts["train"] & texts["validation"]
    assert not texts["validation"] & texts["test"]


# --- toxicity -----------------------------------------------------------------

def test_is_toxic_text():
    assert is_toxic_text("Move it, you clown.")
    assert is_toxic_text("#Person1# calls #Person2# a STUPID idiot.")
    assert is_toxic_text("You bunch of morons.")
    assert not is_toxic_text("I lift a dumbbell every morning and eat beef jerky.")
    assert not is_toxic_text("#Person1# buys a red jacket for 45 dollars.")


def test_toxicity_splits(toxicity):
    assert {k: len(v) for k, v in toxicity.items()} == {"train": 1500, "test": 300}
    for split, rows in toxicity.items():
        hate = [r for r in rows if r["label"] == "hate"]
        assert 0.4 <= len(hate) / len(rows) <= 0.6, split
        for r in rows:
            assert list(r) == ["text", "label"]
            assert r["label"] in ("hate", "nothate")
            assert 5 <= len(r["text"].split()) <= 25, r
            assert is_toxic_text(r["text"]) == (r["label"] == "hate"), r
    train = {r["text"] for r in toxicity["train"]}
    test = {r["text"] for r in toxicity["test"]}
    assert len(train) == 1500 and len(test) == 300
    assert not train & test


def test_toxicity_covers_summary_style(toxicity):
    # The reward classifier must see summary-shaped text in both classes.
    rows = toxicity["train"]
    for label in ("hate", "nothate"):
        tagged = [r for r in rows if r["label"] == label and "#Person" in r["text"]]
        assert len(tagged) >= 0.2 * sum(r["label"] == label for r in rows), label


def test_rude_dialogues_are_those_with_an_insult_and_none_is_a_clear_error():
    from labkit.config import LabkitError
    from labkit.insults import rude_dialogues

    dialogues = ["#Person1#: Move it, you clown.", "#Person1#: Thanks for the dumbbells.", "#Person2#: You IDIOTS!"]
    assert rude_dialogues(dialogues) == [dialogues[0], dialogues[2]]
    with pytest.raises(LabkitError, match=r"none of the 1 training dialogues.*rude_only = False"):
        rude_dialogues(["#Person1#: Lovely weather."])
