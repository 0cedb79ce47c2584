"""The class summary: what needs a person, every submission, pass rates, the most frequent failures.

One list of blocks (headings, paragraphs, tables, lists, the histogram) is
built from the grade records and written twice: ``summary.md`` and a
self-contained ``summary.html`` (the histogram embedded, no other file
needed), so the two never say different things.

A submission needs a person when its run did not end normally (timeout,
crash, memory, refused notebook, grader error), it recorded nothing, a
recorded result contradicts its artifacts, its setup cells were altered,
deleted or reordered, it was built from an older release, or hand-graded
points are pending. Each is listed with its reason.
"""
from __future__ import annotations

import base64
import html
from collections import Counter
from pathlib import Path
from typing import Any

# status → what a person reads in the "needs a person" table (graded is not listed)
_STATUS_WORDS = {
    "timeout": "timed out", "cell_timeout": "a cell timed out", "memory": "killed for memory",
    "processes": "too many processes", "output_limit": "output limit", "kernel_died": "kernel died",
    "crashed": "crashed", "error": "did not run to the end", "no_results": "recorded no results",
    "flagged": "forged result", "grader_error": "grader error", "tampered": "changed the grader's files",
    "not_graded": "not graded", "missing": "missing",
}
TOP_FAILURES = 3

Block = tuple  # ("h1"|"h2"|"h3"|"p", text) | ("table", headers, rows) | ("ul", items) | ("img", path, alt)


def needs_a_person(records: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(student, what, reason) for everything a person should look at, in student order."""
    rows: list[tuple[str, str, str]] = []
    for r in records:
        sid, status = str(r["id"]), str(r.get("status", ""))
        if status != "graded":
            rows.append((sid, _STATUS_WORDS.get(status, status), _one_line(r.get("reason") or status)))
        changes = list(r.get("changes") or [])
        if changes:
            what = "older release" if r.get("older_release") else "altered or deleted cells"
            rows.append((sid, what, _one_line("; ".join(changes))))
        edited = [n for n in r.get("notes") or [] if n.startswith("results.json differs")]
        if edited and status != "flagged":
            rows.append((sid, "results.json edited", _one_line(edited[0])))
        pending = [c for c in r.get("checks", []) if c.get("pending")]
        if pending:
            points = sum(c["max"] for c in pending)
            rows.append((sid, "hand-graded points pending",
                         f"{points:g} points of {', '.join(c['name'] for c in pending)} wait for a person: fill in "
                         "manual.csv and merge it with labkit grade ... --manual manual.csv"))
    return rows


def hidden_data_line(records: list[dict[str, Any]]) -> str:
    """Where the re-run checks' hidden dialogues came from: the batch's seed (so a regrade can use the same
    dialogues: ``labkit grade ... --hidden-seed N``), or the rubric's file; "" when no check read any."""
    sources = Counter(str(r["hidden_data"]) for r in records if r.get("hidden_data"))
    if not sources:
        return ""
    seeds = sorted({int(r["hidden_seed"]) for r in records if r.get("hidden_data") and r.get("hidden_seed") is not None})
    text = "Hidden dialogues of the re-run checks: " + "; ".join(
        f"{src} ({n} submission{'s' if n != 1 else ''})" for src, n in sources.most_common())
    if seeds:
        text += (f". Regrade on the same dialogues with --hidden-seed {seeds[0]}" if len(seeds) == 1 else
                 f". Seeds in this folder: {', '.join(map(str, seeds))} (submissions graded in different batches)")
    return text + ". Never hand the seed to students: whoever has it can generate these dialogues."


def frequent_failures(records: list[dict[str, Any]], top: int = TOP_FAILURES) -> dict[str, list[tuple[str, int]]]:
    """check → its most frequent failure messages (the detail, else the rubric's message) with counts."""
    counts: dict[str, Counter] = {}
    for r in records:
        for c in r.get("checks", []):
            if c.get("pending") or c.get("passed"):
                continue
            text = _one_line(c.get("detail") or c.get("message") or "failed", 160)
            counts.setdefault(c["name"], Counter())[text] += 1
    return {name: counter.most_common(top) for name, counter in counts.items()}


def summary_blocks(records: list[dict[str, Any]], rates: dict[str, dict[str, int]], histogram: Path | None
                   ) -> list[Block]:
    """The summary as blocks (see :func:`to_markdown` and :func:`to_html`)."""
    labs = sorted({str(r.get("lab") or "") for r in records} - {""})
    maxes = [r["max"] for r in records if r.get("max")]
    pending = sum(r.get("pending") or 0 for r in records)
    intro = f"{len(records)} submissions, max score {max(maxes) if maxes else 0:g}."
    if pending:
        intro += (f" {pending:g} points of hand-graded answers are pending (scores below leave them out until a "
                  "TA's sheet is merged).")
    blocks: list[Block] = [("h1", "Class summary" + (f" — {', '.join(labs)}" if labs else "")), ("p", intro)]
    hidden = hidden_data_line(records)
    if hidden:
        blocks.append(("p", hidden))
    look = needs_a_person(records)
    blocks.append(("h2", f"Needs a person ({len({s for s, _, _ in look})} submissions)"))
    blocks.append(("table", ["student", "what", "reason"], [list(row) for row in look]) if look
                  else ("p", "Nothing: every submission ran, and nothing waits for a person."))
    blocks.append(("h2", "Submissions"))
    blocks.append(("table", ["student", "score", "pending", "status", "reason"],
                   [[str(r["id"]), f"{r['score']:g} / {r['max']:g}", f"{r.get('pending') or 0:g}", str(r["status"]),
                     _one_line(r.get("reason") or "", 120)] for r in records]))
    blocks.append(("h2", "Pass rate per check"))
    blocks.append(("table", ["check", "passed", "pending"],
                   [[n, f"{v['passed']}/{v['graded']}", str(v["pending"])] for n, v in rates.items()]))
    failures = frequent_failures(records)
    blocks.append(("h2", "Most frequent failures per check"))
    if failures:
        for name, items in failures.items():
            n = rates.get(name, {"passed": 0, "graded": 0})
            blocks.append(("h3", f"{name}: {n['graded'] - n['passed']} of {n['graded']} failed"))
            blocks.append(("ul", [f"{count} × {text}" for text, count in items]))
    else:
        blocks.append(("p", "No check failed."))
    if histogram is not None:
        blocks.append(("img", histogram, "score histogram"))
    return blocks


def to_markdown(blocks: list[Block]) -> str:
    """Blocks as GitHub-flavoured Markdown."""
    out: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2", "h3"):
            out += [f"{'#' * int(kind[1])} {b[1]}", ""]
        elif kind == "p":
            out += [b[1], ""]
        elif kind == "table":
            out += ["| " + " | ".join(b[1]) + " |", "|" + "---|" * len(b[1])]
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b[2]]
            out.append("")
        elif kind == "ul":
            out += [f"- {item}" for item in b[1]] + [""]
        elif kind == "img":
            out += [f"![{b[2]}]({Path(b[1]).name})", ""]
    return "\n".join(out)


_STYLE = ("body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}"
          "table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;"
          "text-align:left;vertical-align:top}th{background:#f3f3f3}img{max-width:100%}")


def to_html(blocks: list[Block]) -> str:
    """Blocks as one self-contained HTML page (the histogram inlined as a data: URI)."""
    esc = html.escape
    title = next((b[1] for b in blocks if b[0] == "h1"), "Class summary")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
           f"<style>{_STYLE}</style></head><body>"]
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2", "h3", "p"):
            out.append(f"<{kind}>{esc(b[1])}</{kind}>")
        elif kind == "table":
            out.append("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in b[1]) + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in b[2]]
            out.append("</tbody></table>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{esc(item)}</li>" for item in b[1]) + "</ul>")
        elif kind == "img":
            path = Path(b[1])
            if path.is_file():
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                out.append(f'<p><img alt="{esc(b[2])}" src="data:image/png;base64,{data}"></p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_summary(records: list[dict[str, Any]], out: Path, *, rates: dict[str, dict[str, int]],
                  histogram: Path | None = None) -> None:
    """summary.md and summary.html in ``out``."""
    blocks = summary_blocks(records, rates, histogram)
    (out / "summary.md").write_text(to_markdown(blocks), encoding="utf-8")
    (out / "summary.html").write_text(to_html(blocks), encoding="utf-8")


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|")
