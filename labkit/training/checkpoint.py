"""Checkpoint folders: written atomically, with the RNG state a bit-exact resume needs.

A lesson fills a scratch folder inside ``with atomic_folder(final) as tmp:``
(:func:`labkit.atomic.atomic_folder`); when the block ends the scratch folder
takes ``final``'s place whole, and when it raises the scratch folder is removed.
Either way no half-written checkpoint is ever where resume looks. The training
state (optimizer, scheduler, counters) goes into one file with
:func:`save_state`, which adds every global RNG's state; :func:`load_state`
reads it back without unpickling code (``torch.load(weights_only=True)``) and
restores the RNGs.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

from labkit.config import LabkitError
from labkit.training.memory import MB


def rng_state() -> dict[str, Any]:
    """The state of Python's, NumPy's and torch's global RNGs (CUDA too when present), in plain types."""
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put the global RNGs back where :func:`rng_state` found them."""
    import numpy as np
    import torch

    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write a training state (tensors, numbers, lists, dicts) with the global RNG state added as ``rng``."""
    import torch

    torch.save({**state, "rng": rng_state()}, path)


def load_state(path: str | os.PathLike[str], *, restore_rng: bool = True) -> dict[str, Any]:
    """Read what :func:`save_state` wrote (no pickled code is run) and, by default, restore the RNGs."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several kinds for a damaged or foreign file
        raise LabkitError(f"Cannot read the training state {path} ({type(err).__name__}: {str(err)[:200]}). "
                          "It is damaged or was not written by labkit; start over without resume.") from err
    if restore_rng:
        restore_rng_state(state["rng"])
    return state


def directory_size_mb(path: str | os.PathLike[str]) -> float:
    """Total size of the files under ``path`` in MiB (a checkpoint's size on disk)."""
    root = Path(path)
    if not root.exists():
        raise LabkitError(f"{root} does not exist; save the model there first (save_pretrained).")
    files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / MB
