"""`labkit similarity`: planted copies rank first, the edition and common answers are discounted, the report
escapes what students wrote and no CSV cell is a formula. Fast: lab 1's notebook as JSON, no kernel."""
from __future__ import annotations

import copy
import csv
import json
import re
from pathlib import Path

import pytest

from labkit.cli import main
from labkit.grading import similarity as sim
from labkit.grading.similarity_report import CSV_COLUMNS
from labkit.notebooks import read_notebook
from labkit.labs import get

REFLECTIONS = [
    "The few-shot prompt helped most on the longer dialogues, where the model otherwise copied the first turn.",
    "I was surprised that the instruction alone changed the output so much; the interval crossed zero though.",
    "Zero-shot summaries were short and vague. Adding two worked examples made them name who did what.",
    "Token budgets matter: my third shot was cut, so the target dialogue lost its ending and the summary too.",
    "Bootstrap intervals told me the gain was real for ROUGE-1 but I would like to see a human judgement too.",
    "Next time I would pick shots by topic, since a restaurant example did not help a dialogue about housing.",
    "The model kept inventing dates, which ROUGE barely punishes; facts need their own check in my opinion.",
    "Most of the improvement came from the instruction and the format; more shots gave diminishing returns.",
]
FORMS = ["answer = max(scores, key=lambda s: scores[s].scores['rouge1'])",
         "ranked = sorted(scores, key=lambda s: scores[s].scores['rouge1'], reverse=True)\nanswer = ranked[0]"]
RARE = ("best_name, best_val = None, -1.0\nfor strategy_name in list(scores):\n    value = float(scores[strategy_name]"
        ".scores['rouge1'])\n    if value >= best_val:\n        best_name, best_val = strategy_name, value\nanswer = best_name")


def _text(c):
    return "".join(c["source"]) if isinstance(c["source"], list) else c["source"]


@pytest.fixture(scope="module")
def lab1():
    return json.loads(get("lab1").notebook.read_text(encoding="utf-8"))


def _student(nb, ex1: str, reflection: str, comment: str = ""):
    book = copy.deepcopy(nb)
    for c in book["cells"]:
        src = _text(c)
        m = re.search(r'labkit\.record\("(exercise_1|reflection)"', src)
        if m:
            body = f"reflection = {reflection!r}" if m.group(1) == "reflection" else (comment + ex1)
            c["source"] = re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION",
                                 lambda _m: f"### BEGIN SOLUTION\n{body}\n### END SOLUTION", src, flags=re.S)
    return book


def _put(root: Path, name: str, book) -> None:
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "submission.ipynb").write_text(json.dumps(book), encoding="utf-8")


def _rank(rows, a, b):
    return next(i for i, r in enumerate(rows) if {r["a"].lstrip("'"), r["b"].lstrip("'")} == {a, b})


def test_renames_comments_and_layout_do_not_change_code_fingerprints():
    a = "total = 0\nfor item in values:  # add them up\n    total += item * weight\nanswer = total"
    b = "# my own\nacc = 0\nfor x in values:\n    acc += x*weight\n\nanswer = acc   # done"
    assert sim.code_fingerprints(a).keys() == sim.code_fingerprints(b).keys() != set()
    assert sim.code_fingerprints(a).keys() != sim.code_fingerprints("answer = sorted(values)[-1] * weight + 0").keys()


def test_text_fingerprints_ignore_case_and_punctuation_and_map_back_to_the_text():
    raw = "The Interval, crossed ZERO -- so the gain may be luck!"
    prints = sim.text_fingerprints(raw)
    assert prints.keys() == sim.text_fingerprints("the interval crossed zero so the gain may be luck").keys()
    spans = [s for v in prints.values() for s in v]
    assert min(s for s, _ in spans) == 0 and max(e for _, e in spans) >= len(raw) - 1


def test_planted_copies_rank_first_and_common_answers_do_not(tmp_path, lab1):
    root = tmp_path / "class"
    for i, text in enumerate(REFLECTIONS):  # honest: two common forms of exercise 1, own names and comments
        _student_nb = _student(lab1, FORMS[i % 2].replace("ranked", f"r{i}"), text, f"# student {i} wrote this\n")
        _put(root, f"s{i}", _student_nb)
    _put(root, "rare", _student(lab1, RARE, "Copying is easier than thinking, as this reflection shows plainly."))
    renamed = RARE.replace("best_name", "top").replace("strategy_name", "k").replace("value", "v")
    _put(root, "copy_code", _student(lab1, "# I wrote this myself\n" + renamed,
                                     "A reflection of my own that shares nothing with the one I copied from."))
    _put(root, "copy_text", _student(lab1, FORMS[0], REFLECTIONS[2].replace("Zero-shot", "Zero shot")
                                     .replace("made", "got")))
    book = copy.deepcopy(_student(lab1, FORMS[1].replace("ranked", "r3"), REFLECTIONS[3]))
    ex = [i for i, c in enumerate(book["cells"]) if "record(\"exercise_" in _text(c)]
    cells = [book["cells"][i] for i in ex]
    for i, c in zip(ex, reversed(cells)):
        book["cells"][i] = c
    _put(root, "copy_reordered", book)
    (root / "broken").mkdir()
    (root / "broken" / "submission.ipynb").write_text("{not json", encoding="utf-8")

    res = sim.similarity(root, "lab1", tmp_path / "sim", progress=False)
    rows = list(csv.DictReader(open(res["csv"], encoding="utf-8")))
    assert list(rows[0]) == CSV_COLUMNS
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert len(rows) == 12 * 11 // 2  # every pair of the comparable submissions, the broken one named instead
    planted = [("rare", "copy_code"), ("s2", "copy_text"), ("s3", "copy_reordered")]
    assert max(_rank(rows, *p) for p in planted) == len(planted) - 1, rows[:5]
    by = {frozenset((r["a"], r["b"])): r for r in rows}
    assert "code" in by[frozenset(("rare", "copy_code"))]["matched"]
    assert "text" in by[frozenset(("s2", "copy_text"))]["matched"]
    # the honest students who wrote exercise 1 the same common way are not a pair
    assert float(by[frozenset(("s0", "s2"))]["score"]) < 0.25 < float(rows[len(planted) - 1]["score"])
    page = Path(res["html"]).read_text(encoding="utf-8")
    assert "never a penalty" in page and "<mark>" in page and "broken" in page


def test_the_released_edition_is_discounted(tmp_path):
    from labkit import release
    ed = release.release_notebook(read_notebook(get("lab1").notebook), "lab1")
    root = tmp_path / "class"
    for name in ("a", "b"):
        _put(root, name, json.loads(release.dumps(ed)))
    res = sim.similarity(root, "lab1", tmp_path / "sim", progress=False)
    assert res["pairs"][0]["score"] == 0.0
    assert all(not w.units for w in res["works"])  # untouched: nothing of the student's own


def test_report_escapes_student_text_and_csv_cells_are_not_formulas(tmp_path, lab1, capsys):
    root = tmp_path / "class"
    evil = "<script>alert('x')</script> and </pre><img src=x onerror=alert(1)> " + REFLECTIONS[0]
    _put(root, "=HYPERLINK(\"x\")", _student(lab1, RARE, evil))
    _put(root, "<i>bob", _student(lab1, RARE, evil))
    _put(root, "carol", _student(lab1, FORMS[0], REFLECTIONS[1]))
    assert main(["similarity", str(root), "--lab", "lab1", "--out", str(tmp_path / "sim")]) == 0
    assert "never a penalty" in capsys.readouterr().out
    page = (tmp_path / "sim" / "similarity.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<img" not in page and "<i>bob" not in page
    assert "alert(&#x27;x&#x27;)&lt;/script&gt;" in page and "&lt;i&gt;bob" in page
    raw = list(csv.reader(open(tmp_path / "sim" / "similarity.csv", encoding="utf-8")))
    cells = [c for r in raw[1:] for c in r]
    assert "'=HYPERLINK(\"x\")" in cells
    assert not any(c.startswith(("=", "+", "@")) or (c.startswith("-") and not re.fullmatch(r"-[\d.]+", c))
                   for c in cells)


def test_dask_scheduler_gives_the_same_pairs(tmp_path, lab1):
    distributed = pytest.importorskip("distributed")
    root = tmp_path / "class"
    for i, text in enumerate(REFLECTIONS[:3]):
        _put(root, f"s{i}", _student(lab1, FORMS[i % 2], text))
    _put(root, "copy", _student(lab1, RARE, REFLECTIONS[1]))
    here = sim.similarity(root, "lab1", tmp_path / "here", progress=False)["pairs"]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        there = sim.similarity(root, "lab1", tmp_path / "there", scheduler=c.scheduler_address, progress=False)["pairs"]
    assert [(p["a"], p["b"], p["score"]) for p in there] == [(p["a"], p["b"], p["score"]) for p in here]
    assert {here[0]["a"], here[0]["b"]} == {"s1", "copy"}


def test_answers_written_in_the_student_edition_are_found(tmp_path):
    """A real submission has no solution markers: what differs from the edition's cell is the student's."""
    from labkit import release
    ed = json.loads(release.dumps(release.release_notebook(read_notebook(get("lab1").notebook), "lab1")))

    def answered(reflection: str, code: str):
        book = copy.deepcopy(ed)
        for c in book["cells"]:
            src = _text(c)
            if 'record("reflection"' in src:
                c["source"] = src.replace("reflection = None", f"reflection = (\n    {reflection!r}\n)")
            elif 'record("exercise_1"' in src:
                c["source"] = src.replace("answer = None", code)
        return book
    root = tmp_path / "class"
    for i, text in enumerate(REFLECTIONS[:4]):
        _put(root, f"s{i}", answered(text, FORMS[i % 2]))
    _put(root, "copy", answered(REFLECTIONS[2], FORMS[1]))
    res = sim.similarity(root, "lab1", tmp_path / "sim", progress=False)
    top = res["pairs"][0]
    assert {top["a"], top["b"]} == {"s2", "copy"} and top["text"] > 0.8 and "reflection" in top["where"]
    units = {u.label: u for u in next(w for w in res["works"] if w.id == "s0").units}
    assert units["reflection"].kind == "text" and units["reflection"].raw == REFLECTIONS[0]
    assert units["exercise_1"].kind == "code" and "YOUR CODE HERE" not in units["exercise_1"].raw
