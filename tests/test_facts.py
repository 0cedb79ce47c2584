"""labkit.facts: the fact tokens of a summary, the invented-fact rate against the dialogue, fact recall against
the reference, lab 1's echo share; the rubrics' facts checks; and agreement with the acceptance script that
defines them (``../shared/acceptance/faithful``)."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from labkit import facts
from labkit.config import LabkitError, repo_root

ACCEPTANCE = repo_root().parent / "shared" / "acceptance" / "faithful"


# ---------------------------------------------------------------- the definition


@pytest.mark.parametrize("text, expected", [
    # a capitalised word that starts a sentence is not a fact; one inside a sentence is
    ("Anna calls Bob. Then Carl arrives! Why did Dan leave? Eve knows.", ["bob", "carl", "dan"]),
    # the word after a title counts even though a '.' precedes it; the title itself counts mid-sentence
    ("Dr. Smith helps. #Person1# meets Ms. Taylor and Mr. Brown.", ["smith", "ms", "taylor", "mr", "brown"]),
    # #PersonN# tags are removed, so the word after one still starts its sentence
    ("#Person1# tells #Person2# the plan. #Person12# agrees with Paul.", ["paul"]),
    ("Tom's friend comes.", []),
    # days and months count in any case, also at a sentence start
    ("Friday is fine. they meet on monday in March.", ["friday", "monday", "march"]),
    # numbers: every run of digits, wherever it stands
    ("3 tickets cost 25 dollars at 7:30 on the 2nd.", ["3", "25", "7", "30", "2"]),
    ("", []),
    (None, []),
])
def test_fact_tokens_follow_the_definition(text, expected):
    assert facts.fact_tokens(text) == expected


def test_source_words_and_invented_facts_are_case_insensitive_and_keep_repeats():
    dialogue = "#Person1#: The WOLVES beat the falcons 2 to 1. #Person2#: Dan played well on Sunday."
    assert {"wolves", "falcons", "2", "1", "dan", "sunday", "person"} <= facts.source_words(dialogue)
    assert facts.invented_facts("#Person1# says the Wolves beat the Falcons 2 to 1 on Sunday.", dialogue) == []
    assert facts.invented_facts("The Sharks beat the Eagles 5 to 1 and Alex played well. Alex won.", dialogue) == \
        ["sharks", "eagles", "5", "alex"]  # the second 'Alex' starts a sentence
    assert facts.invented_column(["Paul and Anna came.", "Dan came."], [dialogue, dialogue]) == ["anna", ""]


# ---------------------------------------------------------------- rates on hand-made sets


DIALOGUES = ["Dan: The Wolves beat the Falcons 2 to 1.", "Mia: I fly to Seattle with Paul on Friday."]
REFERENCES = ["#Person1# says the Wolves beat the Falcons 2 to 1.", "Mia flies to Seattle with Paul on Friday."]


def test_invented_rate_share_and_counts_on_a_hand_made_set():
    outputs = ["#Person1# says the Sharks beat the Falcons 5 to 1.",  # facts sharks falcons 5 1: 2 invented
               "Mia flies to Vienna with Paul."]                      # facts vienna paul: 1 invented ('Mia' starts)
    result = facts.check(outputs, DIALOGUES, REFERENCES)
    assert (result.n_outputs, result.n_facts, result.n_invented) == (2, 6, 3)
    assert result.invented_rate == pytest.approx(3 / 6) and result.outputs_with_invented == 1.0
    # recall: reference facts wolves falcons 2 1 | seattle paul friday; stated: falcons 1 | paul
    assert result.n_reference_facts == 7 and result.recall == pytest.approx(3 / 7)
    human = facts.check(REFERENCES, DIALOGUES, REFERENCES)
    assert human.invented_rate == 0.0 and human.outputs_with_invented == 0.0 and human.recall == 1.0
    assert facts.check(["", "nothing here"], DIALOGUES).as_dict() == {
        "invented_rate": 0.0, "outputs_with_invented": 0.0, "n_outputs": 2, "n_facts": 0, "n_invented": 0}


def test_recall_counts_the_reference_facts_with_repeats_and_is_one_without_any():
    assert facts.stated_facts("Anna met Bob.", "Then Bob and Bob met Carl.") == (2, 3)
    assert facts.check(["x"], ["d"], ["no facts here"]).recall == 1.0


def test_bad_inputs_say_what_was_wrong():
    with pytest.raises(LabkitError, match="2 outputs but 1 sources"):
        facts.check(["a", "b"], ["d"])
    with pytest.raises(LabkitError, match="not single strings"):
        facts.check("a summary", "a dialogue")


def test_echo_share_counts_outputs_closer_to_a_worked_example_than_to_their_reference():
    example = "#Person1# tells #Person2# the meeting with Ms. Taylor is moved to Saturday."
    references = ["Anna buys two tickets for the concert.", "Tom repairs the bike on Monday."]
    outputs = ["#Person1# tells #Person2# the meeting with Ms. Taylor is moved to Saturday.",  # the example
               "Tom repairs the bike on Monday."]                                              # its own reference
    assert facts.echoes(outputs, references, [example]) == [True, False]
    assert facts.echo_share(outputs, references, ["unrelated words entirely", example]) == 0.5
    assert facts.echo_share(outputs, references, []) == 0.0
    assert facts.echoes(["same text"], ["same text"], ["same text"]) == [False]  # a tie is not an echo


def test_check_sets_records_every_set_the_human_mark_and_echo_where_asked():
    outputs = {"zero_shot": ["Mia flies."] * 2, "one_shot": list(REFERENCES)}
    checks = facts.check_sets(outputs, DIALOGUES, REFERENCES, human="human", examples=["Anna buys bread."],
                              echo_sets=["one_shot"])
    assert list(checks) == ["zero_shot", "one_shot", "human"]
    assert checks["human"].invented_rate == 0.0 and checks["one_shot"].echo_share == 0.0
    assert checks["zero_shot"].echo_share is None and "echo_share" not in checks["zero_shot"].as_dict()
    records = facts.as_records(checks)
    assert json.loads(json.dumps(records)) == records
    frame = facts.table(checks)
    assert list(frame.index) == ["zero_shot", "one_shot", "human"]
    assert list(frame.columns)[:4] == ["invented_rate", "outputs_with_invented", "recall", "echo_share"]
    assert facts.table(records).equals(frame)


def test_invented_example_picks_the_best_scored_invention_of_the_first_preferred_model_or_none():
    outputs = {"original": ["Anna came.", "Bob came."],
               "full_ft": ["#Person1# says the Sharks beat the Falcons 2 to 1.",  # invents 'sharks', high ROUGE
                           "Mia flies to Oslo."],                               # invents 'oslo', lower ROUGE
               "lora": list(REFERENCES)}
    found = facts.invented_example(outputs, DIALOGUES, REFERENCES, prefer=["lora", "full_ft", "original"])
    assert found is not None and (found.name, found.index, found.invented) == ("full_ft", 0, ["sharks"])
    text = found.describe()
    assert "sharks" in text and found.output in text and found.reference in text and f"{found.rouge1:.3f}" in text
    assert facts.invented_example(outputs, DIALOGUES, REFERENCES, prefer=["lora"]) is None


# ---------------------------------------------------------------- the rubrics' checks


def _grade_context(tmp_path: Path, lab: str):
    from labkit.rubrics.checks import GradeContext

    return GradeContext(lab=lab, status="ok", results={}, artifacts=tmp_path, params={})


def test_lab2_rubric_recomputes_the_invented_rate_from_summaries_csv(tmp_path):
    from labkit.data import load_dialogsum
    from labkit.rubrics import lab2

    test = load_dialogsum("offline")["test"].select(range(6))
    human = list(test["summary"])
    table = pd.DataFrame({"id": test["id"], "human_baseline_summaries": human, "instruct_model_summaries": human,
                          "peft_model_summaries": human})
    table.to_csv(tmp_path / "summaries.csv", index=False)
    outcome = lab2.lab2_facts_kept(_grade_context(tmp_path, "lab2"))
    assert outcome.fraction == 1.0, outcome.detail
    # LoRA's summaries invent a name in every row: half the credit, whatever was recorded
    table.assign(peft_model_summaries=[h + " They called Zyxwvut." for h in human]).to_csv(tmp_path / "summaries.csv",
                                                                                       index=False)
    outcome = lab2.lab2_facts_kept(_grade_context(tmp_path, "lab2"))
    assert outcome.fraction == 0.5 and "lora" in outcome.detail, outcome.detail
    table.assign(id=["nope"] * 6).to_csv(tmp_path / "summaries.csv", index=False)
    assert lab2.lab2_facts_kept(_grade_context(tmp_path, "lab2")).fraction == 0.0


def test_lab3_rubric_reads_dialogues_of_the_train_split(tmp_path):
    from labkit.data import load_dialogsum
    from labkit.rubrics import lab3

    train = load_dialogsum("offline")["train"].select(range(5))
    human = list(train["summary"])
    pd.DataFrame({"id": train["id"], "summary_before": human, "summary_after": human,
                  "summary_after_dpo": [h + " It was 98765 dollars." for h in human]}).to_csv(
        tmp_path / "toxicity_eval.csv", index=False)
    outcome = lab3.lab3_facts_kept(_grade_context(tmp_path, "lab3"), max_invented=0.15)
    assert outcome.fraction == pytest.approx(2 / 3) and "summary_after_dpo" in outcome.detail, outcome.detail


def test_lab1_rubric_checks_invented_facts_and_the_echo_of_worked_examples(tmp_path):
    from labkit import labs
    from labkit.data import load_dialogsum
    from labkit.rubrics import lab1

    test = load_dialogsum("offline")["test"]
    shots = set(labs.defaults("lab1", "offline")["shot_indices"])
    rows = [r for i, r in enumerate(test) if i not in shots][:5]
    example = test[sorted(shots)[0]]["summary"]
    frame = pd.DataFrame([{"id": r["id"], "strategy": s, "reference": r["summary"], "prediction": r["summary"]}
                          for s in ("zero_shot_flan", "one_shot", "few_shot") for r in rows])
    frame.to_csv(tmp_path / "generations.csv", index=False)
    outcome = lab1.lab1_facts_kept(_grade_context(tmp_path, "lab1"))
    assert outcome.fraction == 1.0, outcome.detail
    # few-shot writes the worked example's summary for every dialogue: it echoes it (and invents its facts)
    frame.loc[frame.strategy == "few_shot", "prediction"] = example
    frame.to_csv(tmp_path / "generations.csv", index=False)
    outcome = lab1.lab1_facts_kept(_grade_context(tmp_path, "lab1"))
    assert outcome.fraction < 1.0 and "few_shot: 100% of outputs closer to a worked example" in outcome.detail, \
        outcome.detail


# ---------------------------------------------------------------- agreement with the acceptance script


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.mark.skipif(not ACCEPTANCE.is_file(), reason=f"acceptance script not found at {ACCEPTANCE}")
@pytest.mark.skipif(not (repo_root() / ".venv" / "bin" / "papermill").is_file(), reason="no .venv (make install)")
def test_numbers_agree_with_the_acceptance_script_on_a_small_run(tmp_path):
    """A small hand-made run folder (the three labs' CSVs) read by ../shared/acceptance/faithful and by labkit.facts:
    every invented-fact rate, share of outputs with an invented fact, fact recall and echo share it prints is
    labkit's, to the digits it prints."""
    data, run = tmp_path / "data", tmp_path / "run"
    test = [{"id": "t0", "dialogue": "A: Ms. Taylor moved the meeting to Saturday at 9.",
             "summary": "#Person1# says Ms. Taylor moved the meeting to Saturday at 9.", "topic": "x"},
            {"id": "t1", "dialogue": "A: The Wolves beat the Falcons 2 to 1. Dan played well.",
             "summary": "The Wolves beat the Falcons 2 to 1 and Dan played well.", "topic": "x"},
            {"id": "t2", "dialogue": "A: I go to Seattle with Paul for 3 days by ferry.",
             "summary": "#Person1# goes to Seattle with Paul for 3 days by ferry.", "topic": "x"},
            {"id": "t3", "dialogue": "A: Can I book a table for 4 on Friday? B: Yes, Mr. Green.",
             "summary": "Mr. Green books a table for 4 on Friday.", "topic": "x"}]
    train = [{"id": "r0", "dialogue": "A: Lucy bought 2 apples on Monday.", "summary": "Lucy bought 2 apples.",
              "topic": "x"},
             {"id": "r1", "dialogue": "A: Sam lost his keys in Paris.", "summary": "Sam lost his keys in Paris.",
              "topic": "x"}]
    _write_jsonl(data / "dialogsum-mini" / "test.jsonl", test)
    _write_jsonl(data / "dialogsum-mini" / "train.jsonl", train)
    outputs1 = {"zero_shot_flan": ["The Sharks beat the Falcons 5 to 1.", "Anna goes to Seattle with Paul.",
                                   "Mr. Green books a table for 4 on Friday."],
                "one_shot": ["#Person1# says Ms. Taylor moved the meeting to Saturday at 9.",
                             "#Person1# goes to Seattle with Paul for 3 days.", "Green books a table."],
                "few_shot": ["Ms. Taylor moved the meeting to Saturday.", "It is 3 days by ferry, Paul says.",
                             "#Person1# says Ms. Taylor moved the table to Saturday at 9."]}
    gens = [{"id": t["id"], "strategy": s, "reference": t["summary"], "prediction": p}
            for s, preds in outputs1.items() for t, p in zip(test[1:], preds)]
    (run / "lab1").mkdir(parents=True)
    pd.DataFrame(gens).to_csv(run / "lab1" / "generations.csv", index=False)
    (run / "lab1" / "results.json").write_text(json.dumps({"settings": {"dataset": str(data / "dialogsum-mini"),
                                                                          "shot_indices": [0]}}))
    outputs2 = {"instruct_model_summaries": ["The Wolves beat the Eagles 2 to 1.", "Mia goes to Vienna by car.",
                                             "Mr. Green books a table for 4 on Friday."],
                "peft_model_summaries": [t["summary"] for t in test[1:]],
                "prompt_tuning_model_summaries": ["Dan played.", "Nothing.", "A table for 5 on Sunday."]}
    (run / "lab2").mkdir()
    pd.DataFrame({"id": [t["id"] for t in test[1:]], "human_baseline_summaries": [t["summary"] for t in test[1:]],
                  **outputs2}).to_csv(run / "lab2" / "summaries.csv", index=False)
    outputs3 = {"summary_before": ["Lucy bought 2 apples on Friday.", "Sam lost his keys in Rome."],
                "summary_after": ["Lucy bought apples.", "Sam lost his keys in Paris."],
                "summary_after_dpo": ["Lucy and Tom bought 7 pears.", "Sam lost keys."]}
    (run / "lab3").mkdir()
    pd.DataFrame({"id": ["r0", "r1"], **outputs3}).to_csv(run / "lab3" / "toxicity_eval.csv", index=False)

    env = {**os.environ, "FAITHFUL_OUT": str(run), "FAITHFUL_DATA": str(data)}
    proc = subprocess.run(["bash", str(ACCEPTANCE)], cwd=repo_root(), env=env, capture_output=True, text=True,
                          timeout=300)
    printed = proc.stdout
    assert "held: " in printed, (proc.returncode, printed, proc.stderr)

    def value(pattern: str) -> str:
        match = re.search(pattern, printed)
        assert match, (pattern, printed)
        return match.group(1)

    dialogue = {r["id"]: r["dialogue"] for r in test + train}
    compared = 0
    for lab, col, outs, ids, refs in (
            [("lab1", s, o, [t["id"] for t in test[1:]], [t["summary"] for t in test[1:]])
             for s, o in outputs1.items()]
            + [("lab2", c, o, [t["id"] for t in test[1:]], [t["summary"] for t in test[1:]])
               for c, o in outputs2.items()]
            + [("lab3", c, o, ["r0", "r1"], [t["summary"] for t in train]) for c, o in outputs3.items()]):
        mine = facts.check(outs, [dialogue[i] for i in ids], refs)
        name = re.escape(f"{lab} {col}")
        assert value(name + r": invented-fact rate ([\d.]+)") == f"{mine.invented_rate:.3f}", (lab, col)
        assert value(name + r": fact recall ([\d.]+)") == f"{mine.recall:.3f}", (lab, col)
        if lab == "lab2":
            assert value(name + r": summaries with an invented fact ([\d.]+)") == f"{mine.outputs_with_invented:.2f}"
        compared += 1
    for strategy in ("one_shot", "few_shot"):
        share = facts.echo_share(outputs1[strategy], [t["summary"] for t in test[1:]], [test[0]["summary"]])
        assert value(rf"lab1 {strategy}: outputs closer to a worked example than to their own reference ([\d.]+)") \
            == f"{share:.2f}"
        compared += 1
    assert compared == 11
