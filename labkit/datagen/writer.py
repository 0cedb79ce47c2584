"""Writes every generated dataset under a folder as JSONL files, atomically and the same bytes for the same seed."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from labkit.datagen.dialogue import generate_dialogsum
from labkit.datagen.toxicity_set import generate_toxicity

# The committed datasets: <repo>/data/.
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "data"


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    # Temp file in the same directory + os.replace: readers never see a half file.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; data files should be world-readable
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_all(out_dir: Path, seed: int = 0) -> list[Path]:
    """Write all datasets under ``out_dir`` and return the written paths.

    Layout: ``dialogsum-mini/{train,validation,test}.jsonl`` and
    ``toxicity/{train,test}.jsonl``.  Output is byte-identical for the same seed.
    """
    out_dir = Path(out_dir)
    written: list[Path] = []
    for name, splits in (("dialogsum-mini", generate_dialogsum(seed)), ("toxicity", generate_toxicity(seed))):
        for split, rows in splits.items():
            path = out_dir / name / f"{split}.jsonl"
            _write_jsonl(path, rows)
            written.append(path)
    return written
