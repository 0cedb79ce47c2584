"""Solution regions in a lab's cells: finding the ``### BEGIN/END SOLUTION`` markers (and whole cells tagged
``solution``), and the stub a student edition shows in their place.

A code region becomes ``# YOUR CODE HERE`` plus ``<name> = None`` for every name the region assigns that is
needed after it, so an untouched student notebook still runs headless and records ``None`` ("not answered")
instead of raising; a region that leaves nothing behind becomes ``# YOUR CODE HERE`` (plus ``pass`` when it is
indented, to stay valid Python); a markdown region or ``solution`` markdown/raw cell becomes ``YOUR ANSWER
HERE``. The markers are those nbgrader and otter-grader use, so instructors already know them.
"""
from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from labkit.config import LabkitError

BEGIN_MARKER = "### BEGIN SOLUTION"
END_MARKER = "### END SOLUTION"
SOLUTION_TAG = "solution"
CODE_STUB = "# YOUR CODE HERE"
ANSWER_STUB = "YOUR ANSWER HERE"
MARKER_WORDS = re.compile(r"\b(BEGIN|END) SOLUTION\b")  # a line that mentions a marker must be one


@dataclass(frozen=True)
class Region:
    """A solution region: lines ``begin`` .. ``end`` (the marker lines, 0-based, inclusive)."""

    begin: int
    end: int
    indent: str


# --------------------------------------------------------------------------- regions

def _cell_label(notebook: str, index: int, cell: Mapping[str, Any]) -> str:
    return f"{notebook}: cell {index} (id {cell.get('id', '<none>')!r})"


def cell_source(cell: Mapping[str, Any]) -> str:
    """A cell's source as one string (nbformat allows a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def find_regions(source: str, *, where: str = "cell") -> list[Region]:
    """The solution regions of one cell's source, in order.

    Raises LabkitError naming ``where`` (notebook and cell) for an unclosed,
    nested or stray marker, or a line that mentions ``BEGIN/END SOLUTION`` but is
    not exactly a marker (it would leak into the student edition otherwise).
    """
    regions: list[Region] = []
    open_at: int | None = None
    indent = ""
    for number, line in enumerate(source.split("\n")):
        stripped = line.strip()
        if stripped == BEGIN_MARKER:
            if open_at is not None:
                raise LabkitError(
                    f"{where}: '{BEGIN_MARKER}' on line {number + 1} opens a region inside the one "
                    f"opened on line {open_at + 1}; regions cannot nest. Close the first with "
                    f"'{END_MARKER}' before opening another.")
            open_at, indent = number, line[: len(line) - len(line.lstrip())]
        elif stripped == END_MARKER:
            if open_at is None:
                raise LabkitError(
                    f"{where}: '{END_MARKER}' on line {number + 1} closes no region. Expected a "
                    f"'{BEGIN_MARKER}' line before it; add one or remove the stray marker.")
            regions.append(Region(open_at, number, indent))
            open_at = None
        elif MARKER_WORDS.search(line):
            raise LabkitError(
                f"{where}: line {number + 1} ({stripped[:60]!r}) mentions a solution marker but is not "
                f"one. A marker line must read exactly '{BEGIN_MARKER}' or '{END_MARKER}' "
                f"(indentation allowed); fix or reword it.")
    if open_at is not None:
        raise LabkitError(
            f"{where}: '{BEGIN_MARKER}' on line {open_at + 1} is never closed. Expected a matching "
            f"'{END_MARKER}' line after the solution; add it.")
    return regions


def is_solution_cell(cell: Mapping[str, Any]) -> bool:
    """True for a whole cell tagged ``solution``."""
    return SOLUTION_TAG in (cell.get("metadata", {}) or {}).get("tags", [])


def is_answer_cell(cell: Mapping[str, Any]) -> bool:
    """True for a cell the student edition changes: solution-tagged or holding a region.

    Such cells are expected to differ in a submission; every other cell is a
    "setup" cell whose source a learner should leave alone.
    """
    if is_solution_cell(cell):
        return True
    src = cell_source(cell)
    return BEGIN_MARKER in src


# --------------------------------------------------------------------------- stubs

def _parse_lenient(code: str) -> ast.AST | None:
    """Parse a fragment (maybe indented, maybe with IPython magics) or return None."""
    lines = [("pass  # " + ln) if ln.lstrip().startswith(("%", "!")) else ln for ln in code.split("\n")]
    try:
        return ast.parse(textwrap.dedent("\n".join(lines)))
    except SyntaxError:
        return None


def _stored_names(code: str) -> list[str]:
    """Names a fragment binds (assignments, for/with targets, defs, imports), in order."""
    tree = _parse_lenient(code)
    if tree is None:  # fall back to plain `name = ...` lines
        return list(dict.fromkeys(re.findall(r"^\s*([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)", code, re.M)))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.append(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.extend((a.asname or a.name).split(".")[0] for a in node.names)
    return list(dict.fromkeys(names))


def _used_names(code: str) -> set[str]:
    """Identifiers a fragment mentions (over-approximate: a stray `= None` is harmless)."""
    names: set[str] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.NAME:
                names.add(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        names |= set(re.findall(r"[A-Za-z_]\w*", code))
    return names


def _code_stub(indent: str, names: Iterable[str]) -> list[str]:
    names = list(names)
    lines = [f"{indent}{CODE_STUB}"] + [f"{indent}{n} = None" for n in names]
    if indent and not names:  # the region may be a whole block body
        lines.append(f"{indent}pass")
    return lines


def _later_code(cells: list[Any], index: int) -> str:
    return "\n".join(cell_source(c) for c in cells[index + 1:] if c.get("cell_type") == "code")


def _earlier_code(cells: list[Any], index: int) -> str:
    return "\n".join(cell_source(c) for c in cells[:index] if c.get("cell_type") == "code")


def _names_to_stub(region_code: str, after_in_cell: str, later: str, before: str) -> list[str]:
    """Which names the stub must set to None so the notebook keeps running.

    A name the same cell uses after the region (``labkit.record("exercise_1", answer)``)
    is always reset, so an untouched exercise records None even if an earlier
    exercise used the same name. A name only later cells use is reset unless the
    setup already defined it before the region (then that value carries on).
    """
    stored = _stored_names(region_code)
    used_here, used_later = _used_names(after_in_cell), _used_names(later)
    defined_before = set(_stored_names(before)) if before else set()
    return [n for n in stored
            if n in used_here or (n in used_later and n not in defined_before)]


def student_source(cells: list[Any], index: int, *, notebook: str = "notebook") -> str:
    """The student-edition source of ``cells[index]`` (unchanged when it holds no solution)."""
    cell = cells[index]
    where = _cell_label(notebook, index, cell)
    src = cell_source(cell)
    regions = find_regions(src, where=where)  # validates markers in every cell
    kind = cell.get("cell_type")
    if is_solution_cell(cell):
        if kind != "code":
            return ANSWER_STUB
        names = _names_to_stub(src, "", _later_code(cells, index), _earlier_code(cells, index))
        return "\n".join(_code_stub("", names))
    if not regions:
        return src
    lines = src.split("\n")
    out: list[str] = []
    last = 0
    for region in regions:
        out.extend(lines[last:region.begin])
        if kind == "code":
            body = "\n".join(lines[region.begin + 1:region.end])
            after = "\n".join(lines[region.end + 1:])
            before = _earlier_code(cells, index) + "\n" + "\n".join(lines[:region.begin])
            names = _names_to_stub(body, after, _later_code(cells, index), before)
            out.extend(_code_stub(region.indent, names))
        else:
            out.append(f"{region.indent}{ANSWER_STUB}")
        last = region.end + 1
    out.extend(lines[last:])
    return "\n".join(out)
