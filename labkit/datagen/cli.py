"""The generator's command line: ``python -m labkit.datagen [--out DIR] [--seed N]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from labkit.datagen.writer import DEFAULT_OUT, write_all

DESCRIPTION = "Seeded, stdlib-only generator of the small synthetic datasets shipped in ``data/``."


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: ``python -m labkit.datagen [--out DIR] [--seed N]``."""
    ap = argparse.ArgumentParser(prog="python -m labkit.datagen", description=DESCRIPTION)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = ap.parse_args(argv)
    for path in write_all(args.out, args.seed):
        n = sum(1 for _ in path.open(encoding="utf-8"))
        print(f"wrote {path} ({n} rows)")
    return 0
