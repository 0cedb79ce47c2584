"""labkit: the helper library behind the genai-labs notebooks.

Importing ``labkit`` is cheap on purpose (no torch, no transformers): submodules
load on first use, so ``labkit.fixtures.build()`` on a warm cache and the
``labkit`` command line start in well under a second.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import Any

__version__ = "0.1.0"

# OpenMP threads that sleep when idle instead of spinning, set before torch loads
# its OpenMP runtime (it reads this once, at load). Training the tiny offline
# models on 2 such threads ran 1.5x faster than on one on an idle 2-core machine,
# and as fast as one when another busy process shared the cores; spinning threads
# ran 2.2x slower than one there (measured; see labkit.session.offline_threads).
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Whether torch's OpenMP threads sleep when idle (torch loaded after the line above,
# or the process was started with the setting).
OMP_PASSIVE = os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"

# Imported eagerly on purpose: importing the submodule labkit.record binds the
# package attribute ``record`` to the module, which would shadow the function a
# notebook calls as ``labkit.record(name, value)``. Binding the function here,
# after the submodule is loaded, keeps it the function for good (record.py is light).
from labkit.record import record  # noqa: E402

_SUBMODULES = {
    "config", "labs", "data", "datagen", "session", "fixtures", "models", "prompts",
    "generate", "metrics", "toxicity", "training", "finetune", "ppo", "plots", "widgets",
    "run", "grading", "release", "cli", "sandbox", "contain", "integrity", "rubrics", "selfcheck", "standin",
    "profiles", "lab_settings", "insults", "policy", "cached_summarizer", "finetune_report", "notebooks",
    "solutions", "facts", "precision", "pretrain", "atomic", "dpo",
}

# Short names a notebook uses most; resolved lazily like the submodules.
_EXPORTS = {
    "start_lab": ("labkit.session", "start_lab"),
    "LabkitError": ("labkit.config", "LabkitError"),
    "check": ("labkit.selfcheck", "check"),
}

__all__ = sorted(_SUBMODULES | set(_EXPORTS))


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attr)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"labkit.{name}")
    else:
        raise AttributeError(f"module 'labkit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
