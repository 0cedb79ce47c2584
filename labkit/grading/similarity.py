"""Pairs of submissions that share work: a list for a person to read, never a penalty.

``labkit similarity SUBMISSIONS --lab LAB --out DIR`` compares every pair of a class, offline:

* **What is compared.** The code each student wrote (the solution regions and solution-tagged cells of the
  release, found as the grader finds them: :mod:`labkit.solutions`; and every cell they added) and their
  hand-graded text (the string a ``manual`` check of the rubric reads, e.g. the reflection; markdown answers;
  comments and added markdown cells).
* **Normalized.** Code goes through copydetect's filter (pygments tokens; every identifier becomes ``V``,
  strings ``S``, comments and layout dropped), so renamed variables and new comments hide nothing; text is
  case-folded with punctuation dropped. Each region is fingerprinted on its own and a student's fingerprints
  are a set, so reordered cells hide nothing either.
* **Fingerprints.** k-grams winnowed as MOSS does (copydetect's ``winnow``), hashed with a stable hash
  (blake2b, so fingerprints made on Dask workers agree).
* **Discounted.** Fingerprints of the released edition (stubs, setup code, the lab's own text) are dropped;
  a fingerprint that ``n`` submissions share weighs ``1 / (n - 1)``: a short exercise has few natural
  answers, and code many students write the same way says nothing about a pair.
* **Score.** Per kind, the weighted shared fingerprints over the smaller submission's fingerprints (plus a
  small constant, so a few shared k-grams of a near-empty notebook do not make a pair); the pair's score
  ``1 - (1 - code)(1 - text)`` is in [0, 1].

Writes ``DIR/similarity.csv`` (every pair, best first) and ``DIR/similarity.html`` (self-contained; the
flagged pairs side by side, the shared passages highlighted, everything a student wrote escaped):
:mod:`.similarity_report`.
"""
from __future__ import annotations

import ast
import hashlib
import io
import json
import logging
import os
import re
import time
import tokenize
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labkit import solutions
from labkit.config import LabkitError
from labkit.grading.similarity_report import write_report

log = logging.getLogger(__name__)

CODE_K, CODE_WINDOW = 12, 4      # characters of filtered code per k-gram; winnowing window
TEXT_K, TEXT_WINDOW = 20, 4      # characters of normalized text per k-gram
SMOOTH = 3                       # added to the smaller fingerprint count
DF_POWER = 1                     # a fingerprint n submissions share weighs 1 / (n - 1) ** DF_POWER
MATCHED_AT = 0.1                 # a kind counts as "matched" from this sub-score
_RECORD = re.compile(r"""labkit\s*\.\s*record\(\s*["'](\w+)["']""")


# --------------------------------------------------------------------------- fingerprints

@dataclass
class Unit:
    """One passage of a student's work: a solution region, an added cell, a reflection."""

    label: str
    kind: str                                   # "code" | "text"
    raw: str
    spans: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # fingerprint → spans in raw


@dataclass
class Work:
    """What a submission contributes: its units (None notebook → ``problem`` says why it was not compared)."""

    id: str
    units: list[Unit]
    problem: str = ""

    def hashes(self, kind: str) -> set[int]:
        return {h for u in self.units if u.kind == kind for h in u.spans}


def _hash(gram: str) -> int:
    return int.from_bytes(hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def _winnowed(norm: str, to_raw: np.ndarray, raw_len: int, k: int, window: int) -> dict[int, list[tuple[int, int]]]:
    """Winnowed k-gram fingerprints of a normalized string → their spans in the raw text (``to_raw[i]``: where
    normalized character i starts in raw)."""
    from copydetect.utils import winnow
    if len(norm) < k:
        return {}
    grams = np.array([_hash(norm[i:i + k]) for i in range(len(norm) - k + 1)], dtype=np.int64)
    selected, idx = winnow(grams, window, remove_duplicates=False)
    ends = np.append(to_raw[1:], raw_len)
    out: dict[int, list[tuple[int, int]]] = {}
    for h, i in zip(selected.tolist(), idx.tolist()):
        out.setdefault(int(h), []).append((int(to_raw[i]), int(ends[i + k - 1])))
    return out


def code_fingerprints(raw: str) -> dict[int, list[tuple[int, int]]]:
    """Fingerprints of Python code, renames, comments and layout filtered out by copydetect."""
    from copydetect.utils import filter_code
    try:
        filtered, offsets = filter_code(raw, "cell.py", "python")
    except Exception:  # a lexer failure: compare nothing rather than stop the class
        return {}
    n = len(filtered)
    if len(offsets):  # copydetect's offsets: removed characters before each filtered position
        at = np.clip(np.searchsorted(offsets[:, 0], np.arange(n)), 0, len(offsets) - 1)
        to_raw = np.minimum(np.arange(n) + offsets[at, 1], len(raw))
    else:
        to_raw = np.arange(n)
    return _winnowed(filtered, to_raw.astype(np.int64), len(raw), CODE_K, CODE_WINDOW)


def normalize_text(raw: str) -> tuple[str, np.ndarray]:
    """Case-folded words separated by one space, and where each character came from in ``raw``."""
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(unicodedata.normalize("NFC", raw)):
        if ch.isalnum():
            for c in ch.casefold():
                chars.append(c)
                where.append(i)
        elif chars and chars[-1] != " ":
            chars.append(" ")
            where.append(i)
    norm = "".join(chars).rstrip()
    return norm, np.array(where[:len(norm)], dtype=np.int64)


def text_fingerprints(raw: str) -> dict[int, list[tuple[int, int]]]:
    """Fingerprints of free text (a reflection, a markdown answer, comments)."""
    raw = unicodedata.normalize("NFC", raw)
    norm, to_raw = normalize_text(raw)
    return _winnowed(norm, to_raw, len(raw), TEXT_K, TEXT_WINDOW)


# --------------------------------------------------------------------------- what each student wrote

@dataclass
class Edition:
    """What the released edition gives everyone, and where its answers are (built once per class)."""

    lab: str
    answer_ids: set[str]
    known_ids: set[str]
    cells: dict[str, str]               # id → the edition's source (for a region whose markers were broken)
    text_records: set[str]              # recorded names a person grades (the rubric's manual checks)
    boilerplate: set[int]


def edition_of(lab: str, *, labs_dir: str | os.PathLike[str] | None = None) -> Edition:
    """The student edition of ``lab`` as :mod:`labkit.release` writes it, its fingerprints, and the recorded
    names the rubric's hand-graded checks read."""
    from labkit import release
    from labkit.notebooks import read_notebook
    from labkit.rubrics import load_rubric
    path = release.lab_source_path(lab, labs_dir)
    ed = release.release_notebook(read_notebook(path), lab, name=str(path))
    meta = ed.metadata[release.METADATA_KEY]
    try:
        records = {c.trigger for c in load_rubric(lab).checks if c.manual and c.trigger}
    except LabkitError:
        records = {"reflection"}
    boiler: set[int] = set()
    for c in ed.cells:
        src = solutions.cell_source(c)
        boiler |= set(code_fingerprints(src)) if c.get("cell_type") == "code" else set()
        boiler |= set(text_fingerprints(_comments(src) if c.get("cell_type") == "code" else src))
    return Edition(lab=lab, answer_ids=set(meta["answer_cells"]), known_ids={c["id"] for c in ed.cells},
                   cells={c["id"]: solutions.cell_source(c) for c in ed.cells},
                   text_records=records or {"reflection"},
                   boilerplate=boiler)


def _comments(code: str) -> str:
    try:
        return "\n".join(t.string.lstrip("#").strip() for t in tokenize.generate_tokens(io.StringIO(code).readline)
                         if t.type == tokenize.COMMENT)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return "\n".join(m.group(1) for m in re.finditer(r"#(.*)$", code, re.M))


def _strings(code: str) -> str | None:
    """The text of the string literals a region assigns (a reflection written as code); None when it is no
    parseable Python or holds no string."""
    import textwrap
    try:
        tree = ast.parse(textwrap.dedent(code))
        parts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    except SyntaxError:  # a fragment (lines kept from a cell whose markers are gone): its string tokens
        parts = []
        try:
            for tok in tokenize.generate_tokens(io.StringIO(code).readline):
                if tok.type == tokenize.STRING:
                    try:
                        parts.append(str(ast.literal_eval(tok.string)))
                    except (ValueError, SyntaxError):
                        continue
        except (tokenize.TokenError, IndentationError, SyntaxError):
            pass
    return " ".join(parts) if parts else None


def _regions(src: str, edition_src: str | None) -> list[str]:
    """The bodies of a cell's solution regions; when the markers were broken, the lines the edition lacks."""
    try:
        regions = solutions.find_regions(src)
    except LabkitError:
        regions = None
    lines = src.split("\n")
    if regions:
        return ["\n".join(lines[r.begin + 1:r.end]) for r in regions]
    given = set((edition_src or "").split("\n"))
    return ["\n".join(ln for ln in lines if ln not in given and not solutions.MARKER_WORDS.search(ln))]


def units_of(nb: dict[str, Any], ed: Edition) -> list[tuple[str, str, str]]:
    """(label, kind, raw) of everything a student wrote in a notebook (JSON dict)."""
    found: list[tuple[str, str, str]] = []
    for index, cell in enumerate(nb.get("cells", [])):
        if not isinstance(cell, dict):
            continue
        meta = cell.get("metadata") or {}
        if "injected-parameters" in (meta.get("tags") or []):
            continue
        cid, kind, src = str(cell.get("id") or ""), cell.get("cell_type"), solutions.cell_source(cell)
        name = (_RECORD.findall(src) or [cid or f"cell {index + 1}"])[-1]
        whole = solutions.is_solution_cell(cell)
        if cid in ed.answer_ids or whole or solutions.BEGIN_MARKER in src:
            bodies = [src] if whole else _regions(src, ed.cells.get(cid))
        elif cid and cid in ed.known_ids:
            continue  # a setup cell: the edition's, altered or not
        else:
            bodies, name = [src], f"added cell {cid or index + 1}"
        for body in bodies:
            if not body.strip() or body.strip() in (solutions.CODE_STUB, solutions.ANSWER_STUB):
                continue
            if kind != "code":
                found.append((name, "text", body))
                continue
            text = _strings(body) if name in ed.text_records else None
            if text is not None:
                found.append((name, "text", text))
                continue
            found.append((name, "code", body))
            comments = _comments(body)
            if comments.strip():
                found.append((f"comments in {name}", "text", comments))
    return found


def fingerprint(sub_id: str, notebook: str | None, problem: str, ed: Edition) -> Work:
    """A submission's units with their fingerprints (the edition's dropped). Never raises: an unreadable
    notebook is a Work with a problem."""
    if notebook is None:
        return Work(sub_id, [], problem or "no notebook")
    try:
        nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
        if not isinstance(nb, dict):
            raise ValueError("not a notebook")
    except (OSError, ValueError) as err:
        return Work(sub_id, [], f"not a readable notebook ({type(err).__name__}: {str(err)[:120]})")
    units = []
    for label, kind, raw in units_of(nb, ed):
        prints = code_fingerprints(raw) if kind == "code" else text_fingerprints(raw)
        prints = {h: s for h, s in prints.items() if h not in ed.boilerplate}
        units.append(Unit(label, kind, raw, prints))
    return Work(sub_id, units)


# --------------------------------------------------------------------------- pairs

def _pair_scores(works: list[Work], kind: str) -> tuple[np.ndarray, dict[int, float]]:
    """(n × n scores of one kind, fingerprint → weight)."""
    from scipy import sparse
    sets = [w.hashes(kind) for w in works]
    vocab: dict[int, int] = {}
    rows, cols = [], []
    for r, s in enumerate(sets):
        for h in s:
            rows.append(r)
            cols.append(vocab.setdefault(h, len(vocab)))
    n = len(works)
    if not vocab:
        return np.zeros((n, n)), {}
    m = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, len(vocab)))
    df = np.asarray(m.sum(axis=0)).ravel()
    weight = np.where(df >= 2, 1.0 / np.maximum(df - 1, 1) ** DF_POWER, 0.0)
    shared = (m @ sparse.diags(weight) @ m.T).toarray()
    sizes = np.array([len(s) for s in sets], dtype=float)
    scores = shared / (np.minimum.outer(sizes, sizes) + SMOOTH)
    np.fill_diagonal(scores, 0.0)
    by_hash = {h: float(weight[c]) for h, c in vocab.items() if weight[c] > 0}
    return np.clip(scores, 0.0, 1.0), by_hash


def _where(a: Work, b: Work, weight: dict[int, float]) -> list[tuple[Unit, Unit, float]]:
    """The unit pairs two submissions share, most shared first."""
    found = []
    for ua in a.units:
        for ub in b.units:
            if ua.kind != ub.kind:
                continue
            common = ua.spans.keys() & ub.spans.keys()
            w = sum(weight.get(h, 0.0) for h in common)
            if w > 0 and w / (min(len(ua.spans), len(ub.spans)) + SMOOTH) >= 0.05:
                found.append((ua, ub, w))
    return sorted(found, key=lambda t: -t[2])


def compare(works: list[Work]) -> list[dict[str, Any]]:
    """Every pair of comparable submissions, best first: a, b, score, code, text, matched, where."""
    ok = [w for w in works if not w.problem]
    code, code_w = _pair_scores(ok, "code")
    text, text_w = _pair_scores(ok, "text")
    both = 1.0 - (1.0 - code) * (1.0 - text)
    weight = {**code_w, **text_w}
    iu, ju = np.triu_indices(len(ok), k=1)
    order = np.lexsort((ju, iu, -np.round(both[iu, ju], 6)))
    pairs = []
    for rank, o in enumerate(order):
        i, j = int(iu[o]), int(ju[o])
        c, t, s = float(code[i, j]), float(text[i, j]), float(both[i, j])
        matched = [k for k, v in (("code", c), ("text", t)) if v >= MATCHED_AT]
        where = _where(ok[i], ok[j], weight) if (rank < 200 and s >= 0.05) else []
        pairs.append({"a": ok[i].id, "b": ok[j].id, "score": round(s, 4), "code": round(c, 4), "text": round(t, 4),
                      "matched": ", ".join(matched),
                      "where": "; ".join(f"{ua.label} ~ {ub.label} ({ua.kind})" for ua, ub, _ in where[:6]),
                      "_units": where[:6]})
    return pairs


# --------------------------------------------------------------------------- the run and its reports

def similarity(submissions_dir: str | os.PathLike[str], lab: str, out: str | os.PathLike[str], *,
               scheduler: str | None = None, top: int = 20, progress: bool = True,
               labs_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Compare every pair of submissions of a class; write ``out/similarity.csv`` and ``out/similarity.html``.

    Submissions are found as the grader finds them (:func:`labkit.grading.discover`). Fingerprinting runs
    here, or one task per submission on a Dask cluster when ``scheduler`` is given (as ``labkit grade``
    does); the pairs are scored here. Returns {"pairs", "works", "csv", "html", "seconds"}."""
    from tqdm.auto import tqdm

    from labkit.grading.discover import discover
    t0 = time.perf_counter()
    subs = discover(submissions_dir)
    if len(subs) < 2:
        raise LabkitError(f"{submissions_dir} holds {len(subs)} submission(s): similarity compares pairs, so it "
                          "needs at least two (a notebook each, or a folder holding one).")
    ed = edition_of(lab, labs_dir=labs_dir)
    args = [(s.id, s.notebook, s.problem) for s in subs]
    with tqdm(total=len(args), desc=f"fingerprinting {lab}", disable=not progress) as bar:
        if scheduler:
            from labkit.grading.driver import _executor
            executor, client = _executor(1, scheduler)
            try:
                futures = [executor.submit(fingerprint, *a, ed) for a in args]
                works = []
                for a, fut in zip(args, futures):
                    try:
                        works.append(fut.result())
                    except Exception as err:  # a lost worker: the submission is named, not compared
                        works.append(Work(a[0], [], f"fingerprinting failed ({type(err).__name__}: {err})"))
                    bar.update(1)
            finally:
                executor.shutdown(wait=True)
                client.close()
        else:
            works = []
            for a in args:
                works.append(fingerprint(*a, ed))
                bar.update(1)
    pairs = compare(works)
    seconds = round(time.perf_counter() - t0, 2)
    csv_path, html_path = write_report(pairs, works, lab, Path(out), top=top, seconds=seconds)
    return {"pairs": pairs, "works": works, "csv": csv_path, "html": html_path, "seconds": seconds}
