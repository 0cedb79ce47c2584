"""Runs the generator's command line, so ``python -m labkit.datagen`` writes ``data/``."""

from labkit.datagen.cli import main

raise SystemExit(main())
