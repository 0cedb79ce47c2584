"""`labkit similarity` over a class of 300 lab 1 submissions (goal: under 60 s on this machine).

Builds a class like the acceptance's ``class2``, larger: every student writes each exercise in one of a few
common ways with their own names and a comment of their own, and a reflection of their own (two DialogSum
summaries); 6 planted pairs copy another student (verbatim, renamed variables, a reflection with a few words
changed, reordered cells). Times the whole command (``labkit similarity``, a fresh process: imports, reading
the notebooks, fingerprinting, every pair, the CSV and the HTML), then prints where the planted pairs rank.
Run: .venv/bin/python bench/similarity.py [--n 300]
Quick (``--quick``: a class of 24, the same planted pairs; seconds): checks the bench itself.
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORMS = {
    "exercise_1": ["answer = max(scores, key=lambda s: scores[s].scores['rouge1'])",
                   "best = None\nfor s, r in scores.items():\n    if best is None or r.scores['rouge1'] > "
                   "scores[best].scores['rouge1']:\n        best = s\nanswer = best",
                   "ranked = sorted(scores, key=lambda s: scores[s].scores['rouge1'], reverse=True)\nanswer = ranked[0]"],
    "exercise_2": ["d = scores['few_shot'].per_example['rouge1'] - scores['zero_shot'].per_example['rouge1']\n"
                   "answer = list(metrics.bootstrap_ci(d, seed=seed))",
                   "import numpy as np\ndiff = np.asarray(scores['few_shot'].per_example['rouge1']) - "
                   "np.asarray(scores['zero_shot'].per_example['rouge1'])\nlo, hi = metrics.bootstrap_ci(diff, "
                   "seed=seed)\nanswer = [lo, hi]"],
    "exercise_3": ["answer = max(0, prompts.count_tokens(tokenizer, prompts.make_prompt(shots, target['dialogue']))"
                   " - limit)",
                   "n = prompts.count_tokens(tokenizer, prompts.make_prompt(shots, target['dialogue']))\n"
                   "answer = n - limit if n > limit else 0"],
}
WORDS = "alpha beta gamma delta omega sigma kappa theta zeta lambda rho tau phi chi psi".split()


def texts() -> list[str]:
    found: list[str] = []
    for cand in (ROOT.parent / "shared/data/dialogsum/dialogsum.dev.jsonl", ROOT / "data/dialogsum-mini/train.jsonl"):
        if cand.is_file():  # the real DialogSum dev set where it is, then the project's own set
            found += [json.loads(line).get("summary") for line in cand.open(encoding="utf-8")]
    return list(dict.fromkeys(re.sub(r"#Person(\d)#", r"person \1", t) for t in found if t))


def build(folder: Path, n: int, rng: random.Random) -> list[tuple[str, str]]:
    nb = json.loads((ROOT / "labs/lab1_prompt_engineering.ipynb").read_text(encoding="utf-8"))
    pool = texts()
    rng.shuffle(pool)

    def student(i: int, reflection: str, forms: dict | None = None, names: dict | None = None) -> tuple:
        book = copy.deepcopy(nb)
        names = names or {k: f"{rng.choice(WORDS)}_{k}{i}" for k in ("d", "diff", "best", "ranked", "n")}
        forms = forms or {k: rng.randrange(len(v)) for k, v in FORMS.items()}
        for c in book["cells"]:
            src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            m = re.search(r"labkit\.record\(\"(exercise_\d|reflection)\"", src)
            if not m:
                continue
            if m.group(1) == "reflection":
                body = f"reflection = {reflection!r}"
            else:
                body = FORMS[m.group(1)][forms[m.group(1)]]
                for a, b in names.items():
                    body = re.sub(rf"\b{a}\b", b, body)
                body = f"# my answer, student {i}: {rng.choice(WORDS)} {rng.choice(WORDS)}\n" + body
            c["source"] = re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION",
                                 lambda _m: "### BEGIN SOLUTION\n" + body + "\n### END SOLUTION", src, flags=re.S)
        return book, forms, names

    def put(name: str, book: dict) -> None:
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / "submission.ipynb").write_text(json.dumps(book, indent=1), encoding="utf-8")

    honest = n - 6
    if len(pool) < 2 * honest:
        raise SystemExit(f"{len(pool)} summaries: too few for {honest} distinct reflections of two summaries")
    made = {}
    for i in range(honest):
        made[i] = student(i, pool[i] + " " + pool[i + honest])
        put(f"s{i:03d}", made[i][0])
    planted = []
    for j, src in enumerate((3, 40 % honest)):  # verbatim
        put(f"c{j}", copy.deepcopy(made[src][0]))
        planted.append((f"c{j}", f"s{src:03d}"))
    renamed = {k: v + "_x" for k, v in made[7][2].items()}  # renamed variables, same reflection
    put("c2", student(990, pool[7] + " " + pool[7 + honest], forms=made[7][1], names=renamed)[0])
    planted.append(("c2", "s007"))
    put("c3", student(991, pool[11].replace("the", "a", 2) + " " + pool[11 + honest])[0])  # a few words changed
    planted.append(("c3", "s011"))
    for j, src in ((4, 15), (5, 60 % honest)):  # cells reordered
        book = copy.deepcopy(made[src][0])
        ex = [i for i, c in enumerate(book["cells"]) if "exercise_" in "".join(c["source"])]
        cells = [book["cells"][i] for i in ex]
        for i, c in zip(ex, reversed(cells)):
            book["cells"][i] = c
        put(f"c{j}", book)
        planted.append((f"c{j}", f"s{src:03d}"))
    return planted


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="a class of 24: checks the bench in seconds")
    args = ap.parse_args()
    if args.quick:
        args.n = 24  # the smallest class that holds every planted pair (one copies student 15)
    with tempfile.TemporaryDirectory() as tmp:
        T = Path(tmp)
        planted = build(T / "class", args.n, random.Random(args.seed))
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "labkit", "similarity", str(T / "class"), "--lab", "lab1",
                               "--out", str(T / "sim")], capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if proc.returncode:
            print(proc.stdout[-2000:], proc.stderr[-2000:])
            return 1
        rows = list(csv.DictReader((T / "sim/similarity.csv").open(encoding="utf-8")))
        pos = {frozenset((r["a"], r["b"])): i for i, r in enumerate(rows)}
        ranks = sorted(pos[frozenset(p)] + 1 for p in planted)
        honest_above = sum(1 for r in rows[:max(ranks) - 1] if frozenset((r["a"], r["b"])) not in map(frozenset, planted))
        html_kb = (T / "sim/similarity.html").stat().st_size / 1024
    print(f"submissions: {args.n}; pairs: {len(rows)}")
    print(f"labkit similarity, whole command: {seconds:.1f} s (goal < 60 s: {'met' if seconds < 60 else 'NOT met'}); "
          f"{1000 * seconds / args.n:.0f} ms per submission")
    print(f"planted pairs ranked {ranks}; honest pairs above the last planted: {honest_above}; html {html_kb:.0f} KB")
    return 0 if seconds < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
