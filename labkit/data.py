"""Load DialogSum-format data from a Hub name, a local folder or a jsonl file.

Accepted sources (all return a ``datasets.DatasetDict`` with columns
``id, dialogue, summary, topic`` and, where the file had several references,
``references``):

* a Hub dataset name such as ``knkarthick/dialogsum`` (course profile);
* a folder with ``train.jsonl``/``validation.jsonl``/``test.jsonl`` (our data/)
  or the authors' ``dialogsum.train.jsonl``/``dialogsum.dev.jsonl``/``dialogsum.test.jsonl``;
* one jsonl file, in our format or the authors' (``fname``; multi-reference
  test files carry ``summary1..3`` and ``topic1..3``). Read alone it is the
  split its name says (``dialogsum.dev.jsonl``: validation). Given to a lab,
  it is the lab's whole data: it stands in for every split the lab reads
  (``splits``; see :func:`split_one_file`), so a lab runs on any one file,
  such as DialogSum's validation split.

Bad rows raise LabkitError naming the file, the line and the field. Every .jsonl file of the
project (DialogSum, the toxicity set, the pre-training corpus) is read through :func:`json_lines`.
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from labkit.config import PROFILE_NAMES, LabkitError, Profile, data_dir
from labkit.profiles import get_profile

if TYPE_CHECKING:  # pragma: no cover
    import datasets

log = logging.getLogger(__name__)

SPLIT_FILES = {
    "train": ("train.jsonl", "dialogsum.train.jsonl"),
    "validation": ("validation.jsonl", "dev.jsonl", "dialogsum.dev.jsonl"),
    "test": ("test.jsonl", "dialogsum.test.jsonl"),
}
REQUIRED = ("dialogue", "summary")


def _split_from_filename(path: Path) -> str:
    stem = path.name.lower()
    if "dev" in stem or "valid" in stem:
        return "validation"
    if "test" in stem:
        return "test"
    return "train"


def normalize_row(raw: Any, path: Path, lineno: int) -> dict[str, Any]:
    """Turn one parsed jsonl object into ``{id, dialogue, summary, topic[, references]}``.

    The authors' format names the id ``fname`` and gives test rows three
    references (``summary1..3``); the first becomes ``summary``.
    """
    where = f"{path}, line {lineno}"
    if not isinstance(raw, dict):
        raise LabkitError(f"{where}: expected a JSON object per line, got {type(raw).__name__}.")
    references = [raw[k] for k in ("summary1", "summary2", "summary3") if isinstance(raw.get(k), str) and raw[k].strip()]
    summary = raw.get("summary") if "summary" in raw else (references[0] if references else None)
    row: dict[str, Any] = {
        "id": str(raw.get("id", raw.get("fname", f"{path.stem}_{lineno}"))),
        "dialogue": raw.get("dialogue"),
        "summary": summary,
        "topic": raw.get("topic", raw.get("topic1", "")) or "",
    }
    for key in REQUIRED:
        value = row[key]
        if value is None:
            hint = " (or summary1..3)" if key == "summary" else ""
            raise LabkitError(
                f"{where}: missing field {key!r}{hint}. Each line needs 'dialogue' and 'summary' "
                "(and ideally 'id'/'fname' and 'topic')."
            )
        if not isinstance(value, str):
            raise LabkitError(f"{where}: field {key!r} must be a string, got {type(value).__name__}.")
        if not value.strip():
            raise LabkitError(f"{where}: field {key!r} is empty. Remove the row or fill it in.")
    if len(references) > 1:
        row["references"] = references
    return row


def json_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed value)`` of every non-blank line of a JSON-lines file, in order; a malformed line
    raises LabkitError naming the file, the line and the column. The one reader of the project's .jsonl files
    (the rows' fields are checked by whoever reads them)."""
    p = Path(path)
    with open(p, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as err:
                raise LabkitError(
                    f"{p}, line {lineno}: malformed JSON ({err.msg} at column {err.colno}). "
                    "Each line must be one complete JSON object."
                ) from None


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a DialogSum jsonl file into normalized rows (see ``normalize_row``)."""
    p = Path(path)
    if not p.is_file():
        raise LabkitError(f"Data file {p} does not exist. Check the path; the project's own data/ is restored with "
                          "'git checkout -- data' or regenerated with 'python -m labkit.datagen'.")
    rows = [normalize_row(raw, p, lineno) for lineno, raw in json_lines(p)]
    if not rows:
        raise LabkitError(f"{p} has no rows. Expected one JSON object per line.")
    return rows


def _rows_to_dataset(rows: list[dict[str, Any]]) -> "datasets.Dataset":
    import datasets

    columns = ["id", "dialogue", "summary", "topic"]
    if any("references" in r for r in rows):
        columns.append("references")
        for r in rows:
            r.setdefault("references", [r["summary"]])
    return datasets.Dataset.from_dict({c: [r[c] for r in rows] for c in columns})


def _find_split_files(folder: Path) -> dict[str, Path]:
    found = {}
    for split, names in SPLIT_FILES.items():
        for name in names:
            if (folder / name).is_file():
                found[split] = folder / name
                break
    return found


def _source_kind(text: str) -> tuple[str, Path]:
    """How a dataset source is read: ("folder" | "file" | "hub", its path)."""
    path = Path(text).expanduser()
    if path.is_dir():
        return "folder", path
    if text.endswith((".jsonl", ".json")) or path.suffix or text.startswith((".", "/", "~")):
        return "file", path
    return "hub", path


_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
_SOURCES_HELP = ("Expected a Hugging Face Hub dataset name (like knkarthick/dialogsum), a folder holding "
                 "train.jsonl / validation.jsonl / test.jsonl (or the authors' dialogsum.train/dev/test.jsonl), "
                 "or one DialogSum .jsonl file; or None for the profile's data.")


def check_dataset(source: str | os.PathLike[str], *, splits: Iterable[str] = (), what: str = "dataset") -> str:
    """``source`` as ``load_dialogsum`` will read it (a folder or file as an absolute path, a Hub name as is),
    after cheap checks that need neither the network nor reading the rows: the path exists, a folder holds split
    files, the ``splits`` a lab reads are there (a single file stands in for every split: see
    :func:`split_one_file`), a Hub name is well formed. LabkitError saying what was wrong and what is expected
    otherwise."""
    text = os.fspath(source).strip()
    if not text:
        raise LabkitError(f"{what} is empty. {_SOURCES_HELP}")
    kind, path = _source_kind(text)
    if kind == "hub":
        if not _HUB_NAME.fullmatch(text):
            raise LabkitError(f"{what} = {text!r} is neither an existing file or folder nor a Hub dataset name. "
                              f"{_SOURCES_HELP}")
        return text
    if kind == "folder":
        found = {split: f.name for split, f in _find_split_files(path).items()}
    elif not path.is_file():
        raise LabkitError(f"{what} = {text!r}: {path.resolve()} does not exist. {_SOURCES_HELP}")
    elif path.suffix not in (".jsonl", ".json"):
        raise LabkitError(f"{what} = {text!r} is a {path.suffix or 'suffix-less'} file, not a .jsonl file. {_SOURCES_HELP}")
    else:
        found = {split: path.name for split in (*splits, _split_from_filename(path))}  # one file is the lab's data
    missing = [s for s in splits if s not in found]
    if missing:
        have = ", ".join(f"{s} ({name})" for s, name in found.items()) or "no split files"
        raise LabkitError(f"{what} = {text!r} has {have}, but the lab reads the {' and '.join(missing)} split"
                          f"{'s' if len(missing) > 1 else ''}. Add " + ", ".join(f"{s}.jsonl" for s in missing)
                          + f" (a folder of split files can hold them all). {_SOURCES_HELP}")
    return str(path.resolve())


SPLIT_ORDER = ("train", "validation", "test")


def split_one_file(rows: list[dict[str, Any]], splits: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The rows of one file as the ``splits`` a lab reads: one split takes every row; several cut the rows, in
    file order, into that many consecutive parts of (nearly) equal size, disjoint, in the order train,
    validation, test (lab 2 on DialogSum's 500 validation dialogues: train = rows 1-250, test = rows 251-500)."""
    wanted = sorted(dict.fromkeys(splits), key=lambda s: SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER))
    if len(wanted) <= 1:
        return {wanted[0] if wanted else "train": list(rows)}
    if len(rows) < len(wanted):
        raise LabkitError(f"One file of {len(rows)} rows cannot be cut into the {len(wanted)} splits "
                          f"({', '.join(wanted)}) the lab reads. Use a file with at least {len(wanted)} rows, "
                          "or a folder holding a file per split.")
    bounds = [round(i * len(rows) / len(wanted)) for i in range(len(wanted) + 1)]
    return {split: rows[bounds[i]:bounds[i + 1]] for i, split in enumerate(wanted)}


def load_dialogsum(source: str | os.PathLike[str] | Profile | None = None, *,
                   splits: Iterable[str] | None = None) -> "datasets.DatasetDict":
    """Load DialogSum-format data as a DatasetDict (see the module docstring for sources).

    ``None`` means the default profile's dataset (data/dialogsum-mini); a profile
    name ("offline", "course") means that profile's dataset. ``splits``: the splits
    a single file stands in for (:func:`split_one_file`; a profile passes its
    ``dataset_splits``, which ``labkit.labs.with_settings`` sets to the lab's); without
    them one file is the split its name says. Folders and Hub names ignore it.
    """
    import datasets

    if isinstance(source, str) and source.strip().lower() in PROFILE_NAMES:
        source = get_profile(source)  # a profile name means that profile's dataset
    if source is None or isinstance(source, Profile):
        profile = source or get_profile()
        source = profile.dataset
        splits = profile.dataset_splits if splits is None else splits
    text = os.fspath(source)
    kind, path = _source_kind(text)
    if kind == "folder":
        files = _find_split_files(path)
        if not files:
            raise LabkitError(
                f"{path} has no DialogSum split files. Expected train.jsonl / validation.jsonl / test.jsonl "
                "(or dialogsum.train/dev/test.jsonl)."
            )
        return datasets.DatasetDict({split: _rows_to_dataset(read_jsonl(f)) for split, f in files.items()})
    if kind == "file":
        rows = read_jsonl(path)
        if not splits:
            return datasets.DatasetDict({_split_from_filename(path): _rows_to_dataset(rows)})
        parts = split_one_file(rows, splits)
        if len(parts) > 1:
            log.info("%s is one file of %d dialogues; the lab reads %s, so it is cut in file order: %s.", path.name,
                     len(rows), " and ".join(parts), ", ".join(f"{s} {len(r)}" for s, r in parts.items()))
        return datasets.DatasetDict({split: _rows_to_dataset(part) for split, part in parts.items()})
    # Anything else is a Hub dataset name (the course profile's path).
    try:
        return datasets.load_dataset(text)
    except Exception as err:  # the Hub raises many types; the user needs one message
        raise LabkitError(
            f"Could not load dataset {text!r} from the Hugging Face Hub ({type(err).__name__}: {err}). "
            "The course profile needs a network connection; use profile='offline' to run with data/."
        ) from err


def take(dataset: "datasets.Dataset", n: int | None, *, what: str = "n_eval") -> "datasets.Dataset":
    """The first ``n`` rows (all when None); a clear error when ``n`` is too large."""
    if n is None:
        return dataset
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise LabkitError(f"{what} must be a positive integer, got {n!r}.")
    if n > len(dataset):
        raise LabkitError(
            f"{what}={n} is larger than the split, which has {len(dataset)} rows. "
            f"Use {what} <= {len(dataset)}."
        )
    return dataset.select(range(n))


def load_toxicity(split: str = "train", folder: str | os.PathLike[str] | None = None) -> list[dict[str, str]]:
    """Rows ``{text, label}`` of the project's toxicity set (label 'hate' or 'nothate')."""
    path = Path(folder or data_dir() / "toxicity") / f"{split}.jsonl"
    if not path.is_file():
        raise LabkitError(f"Toxicity data {path} is missing. Regenerate it with 'python -m labkit.datagen'.")
    rows = []
    for lineno, row in json_lines(path):
        if not (isinstance(row, dict) and row.get("label") in ("hate", "nothate") and str(row.get("text", "")).strip()):
            raise LabkitError(f"{path}, line {lineno}: expected 'text' and a 'label' of 'hate' or 'nothate'.")
        rows.append({"text": row["text"], "label": row["label"]})
    return rows


def iter_texts(dataset_dict: "datasets.DatasetDict", fields: Iterable[str] = ("dialogue", "summary")) -> Iterable[str]:
    """Every text of the given fields across all splits (tokenizer training)."""
    for split in dataset_dict.values():
        for field_name in fields:
            yield from split[field_name]
