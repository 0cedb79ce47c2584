"""CSV cells a spreadsheet cannot run: every CSV the grader writes goes through :func:`cell`.

A student names their own submission folder, writes their own reflection, and their code writes the text of
its exceptions, and all of that reaches ``grades.csv``, ``gradebook.csv``, ``manual.csv`` and
``check_pass_rates.csv``. Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-``
or ``@`` (and, in some versions, after a leading tab or carriage return) as a formula when the instructor
opens the file: CSV injection. As OWASP advises, such a cell is written with a leading ``'``, which
spreadsheets show as text. Numbers stay numbers (``-1``, ``4.5``: no formula can hide in them), and a text
that already starts with ``'`` gets one more, so :func:`uncell` gives back exactly what was written: the TA's
sheet merges on the exact student id.
"""
from __future__ import annotations

import csv
import re
from typing import IO, Any, Iterable, Mapping, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
_NUMBER = re.compile(r"[-+]?\d+(\.\d+)?")


def cell(value: Any) -> Any:
    """``value`` safe for a CSV cell: numbers as they are; a text starting like a formula (or with ``'``)
    prefixed with ``'``."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    if text.startswith(QUOTE) or (text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text)):
        return QUOTE + text
    return text


def uncell(text: str) -> str:
    """The text :func:`cell` was given (a cell read back from a sheet the grader wrote); a cell a person typed
    with a quote of their own (``'great'``) stays as it is."""
    rest = text[1:]
    if text.startswith(QUOTE) and rest.startswith((QUOTE, *FORMULA_STARTS)):
        return rest
    return text


def row(values: Iterable[Any]) -> list[Any]:
    """Every cell of a row made safe."""
    return [cell(v) for v in values]


class Writer:
    """``csv.writer`` whose every cell goes through :func:`cell`."""

    def __init__(self, fh: IO[str]) -> None:
        self._w = csv.writer(fh)

    def writerow(self, values: Sequence[Any]) -> None:
        self._w.writerow(row(values))

    def writerows(self, rows: Iterable[Sequence[Any]]) -> None:
        for r in rows:
            self.writerow(r)


class DictWriter:
    """``csv.DictWriter`` whose every cell goes through :func:`cell` (the header is the grader's own)."""

    def __init__(self, fh: IO[str], fieldnames: Sequence[str], **kwargs: Any) -> None:
        self._w = csv.DictWriter(fh, fieldnames=list(fieldnames), **kwargs)

    def writeheader(self) -> None:
        self._w.writeheader()

    def writerow(self, values: Mapping[str, Any]) -> None:
        self._w.writerow({k: cell(v) for k, v in values.items()})

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for r in rows:
            self.writerow(r)
