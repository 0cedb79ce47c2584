"""The similarity report of a class: ``similarity.csv`` (every pair, best first) and a self-contained
``similarity.html`` (the notice, the ranking, the top pairs side by side with the shared passages marked; all
student text escaped)."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Iterable

from labkit.grading import csvsafe

CSV_NAME, HTML_NAME = "similarity.csv", "similarity.html"
CSV_COLUMNS = ["a", "b", "score", "code", "text", "matched", "where"]

NOTICE = ("This is a list for a person to read, never a penalty. Similar work has innocent explanations (a "
          "study group the course allows, a common answer to a short exercise, the same public source, the "
          "instructor's example): read the passages side by side and talk to the students before concluding "
          "anything. The score orders pairs for reading; it is not a probability and not evidence by itself.")


def _marked(raw: str, spans: Iterable[tuple[int, int]]) -> str:
    """``raw`` escaped, the spans (merged) wrapped in <mark>."""
    merged: list[list[int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out, last = [], 0
    for s, e in merged:
        out += [html.escape(raw[last:s]), "<mark>", html.escape(raw[s:e]), "</mark>"]
        last = e
    out.append(html.escape(raw[last:]))
    return "".join(out)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:90em;color:#222}
.notice{background:#fff6d6;border:1px solid #e0c060;padding:.8em 1em;border-radius:4px}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
.pair{margin:2em 0;border-top:2px solid #888;padding-top:.5em}.side{display:flex;gap:1em}
.side>div{flex:1;min-width:0}pre{white-space:pre-wrap;word-break:break-word;background:#f6f6f6;padding:.6em;
border-radius:4px;font-size:90%}mark{background:#ffd24d}.muted{color:#666}"""


def render_html(pairs: list[dict[str, Any]], works: list[Any], lab: str, *, top: int = 20,
                seconds: float | None = None) -> str:
    """The self-contained report: the notice, the ranking, the top pairs side by side (all student text
    escaped)."""
    e = html.escape
    shown = [p for p in pairs[:max(0, top)] if p["score"] > 0]
    skipped = [w for w in works if w.problem]
    h = [f"<!doctype html><html><head><meta charset='utf-8'><title>Similarity: {e(lab)}</title>"
         f"<style>{_CSS}</style></head><body>",
         f"<h1>Pairs of submissions that share work: {e(lab)}</h1>",
         f"<p class='notice'><strong>{e(NOTICE)}</strong></p>",
         f"<p class='muted'>{len(works) - len(skipped)} submissions compared, {len(pairs)} pairs"
         + (f", in {seconds:g} s" if seconds is not None else "") + ". Compared: the code of the solution regions "
         "and of added cells (identifiers, comments, layout and cell order do not matter) and the hand-graded "
         "text. Discounted: everything the released edition gives, and what many students share (a fingerprint "
         "shared by n submissions weighs 1/(n-1)). Score = 1 - (1 - code)(1 - text). Every pair is in "
         f"{CSV_NAME}.</p>"]
    if skipped:
        h.append("<p>Not compared: " + "; ".join(f"{e(w.id)} ({e(w.problem)})" for w in skipped) + "</p>")
    h.append("<table><tr><th>#</th><th>a</th><th>b</th><th>score</th><th>code</th><th>text</th>"
             "<th>matched</th></tr>")
    for n, p in enumerate(shown, 1):
        h.append(f"<tr><td><a href='#pair-{n}'>{n}</a></td><td>{e(p['a'])}</td><td>{e(p['b'])}</td>"
                 f"<td>{p['score']:.3f}</td><td>{p['code']:.3f}</td><td>{p['text']:.3f}</td>"
                 f"<td>{e(p['matched'])}</td></tr>")
    h.append("</table>")
    for n, p in enumerate(shown, 1):
        h.append(f"<div class='pair' id='pair-{n}'><h2>{n}. {e(p['a'])} and {e(p['b'])}: {p['score']:.3f}</h2>"
                 f"<p class='muted'>code {p['code']:.3f}, text {p['text']:.3f}</p>")
        units = p.get("_units") or []
        if not units:
            h.append("<p class='muted'>No passage shares enough to show.</p>")
        for ua, ub, _w in units:
            common = ua.spans.keys() & ub.spans.keys()
            h.append("<div class='side'>")
            for who, u in ((p["a"], ua), (p["b"], ub)):
                spans = [s for k in common for s in u.spans[k]]
                h.append(f"<div><h3>{e(who)}: {e(u.label)} <span class='muted'>({u.kind})</span></h3>"
                         f"<pre>{_marked(u.raw, spans)}</pre></div>")
            h.append("</div>")
        h.append("</div>")
    h.append(f"<p class='notice'>{e(NOTICE)}</p></body></html>")
    return "\n".join(h)


def write_report(pairs: list[dict[str, Any]], works: list[Any], lab: str, out: Path, *, top: int = 20,
                 seconds: float | None = None) -> tuple[Path, Path]:
    """Write ``out/similarity.csv`` (every pair; each cell neutralized against formulas) and
    ``out/similarity.html``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, html_path = out / CSV_NAME, out / HTML_NAME
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csvsafe.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(pairs)
    html_path.write_text(render_html(pairs, works, lab, top=top, seconds=seconds), encoding="utf-8")
    return csv_path, html_path
