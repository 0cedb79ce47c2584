"""The offline profile's models: shipped with the project, installed in seconds, the same on every machine.

The offline profile stands in for the course's models with three small parts, pre-trained
once by the project from its own ``data/`` (:mod:`labkit.pretrain` holds the recipe, :mod:`labkit.pretrain_mixture`
its data and :mod:`labkit.pretrain_tokenizer` its tokenizer):

* a whole-word T5 tokenizer (T5's ``<pad>``, ``</s>``, ``<unk>`` at ids 0, 1, 2);
* the "original model", a tiny T5 that stands in for flan-t5-base;
* a tiny RoBERTa hate-speech classifier with ``id2label = {0: "nothate", 1: "hate"}``
  (the labels of facebook/roberta-hate-speech-dynabench-r4-target).

They are **shipped** in ``data/original-model/`` (weights stored as fp16 safetensors, a few MB,
with a manifest of every file's sha256 and the recipe). :func:`build` (``labkit fixtures``)
checks those hashes and installs the files into ``labkit_home()/fixtures`` with the weights
widened to fp32, the dtype the labs compute in. Widening fp16 to fp32 is exact, so every
learner, grader and CI machine loads bit-identical weights, whatever its CPU: pre-training on
each machine gave each CPU its own model (AVX-512 and AVX2 kernels sum in other orders) and so
its own lessons.

:func:`rebuild` (``labkit fixtures --rebuild``) pre-trains the parts again and writes them to
``data/original-model/`` for a maintainer to commit; it is deterministic on one machine (one
thread, deterministic algorithms). Both write into a scratch folder swapped in whole
(:func:`labkit.atomic.atomic_folder`), so an interrupted install never leaves half-written fixtures.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from labkit.atomic import atomic_folder
from labkit.config import LabkitError, data_dir, fixture_dir, torch_threads

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PARTS = ("tokenizer", "policy", "classifier")
SHIPPED_FOLDER = "original-model"
# One thread: float sums depend on how work is split across threads, and a rebuild must give
# the same bytes on the machine that made the shipped copy.
BUILD_THREADS = 1
WEIGHTS = "model.safetensors"


def shipped_dir() -> Path:
    """``data/original-model``: the pre-trained parts as the project ships them."""
    return data_dir() / SHIPPED_FOLDER


def manifest_path() -> Path:
    return fixture_dir() / MANIFEST


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_manifest() -> dict[str, Any] | None:
    """The manifest of the installed fixtures, or None when there are none."""
    return _read_json(manifest_path())


def read_shipped_manifest() -> dict[str, Any]:
    """The manifest of ``data/original-model``; a :class:`LabkitError` that says how to restore it when missing."""
    manifest = _read_json(shipped_dir() / MANIFEST)
    if not manifest or "files" not in manifest:
        raise LabkitError(
            f"The offline profile's shipped models are missing: {shipped_dir() / MANIFEST} is absent or unreadable. "
            "Restore them with 'git checkout -- data/original-model' (they are part of the repository), "
            "or pre-train them again with 'labkit fixtures --rebuild' (tens of minutes).")
    return manifest


def file_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` but the manifest (posix relative path -> hash)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != MANIFEST and not path.name.startswith("."):
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def weight_hashes(root: Path | None = None) -> dict[str, str]:
    """sha256 of the installed weight files (relative path -> hash)."""
    return {k: v for k, v in file_hashes(root or fixture_dir()).items() if k.endswith(".safetensors")}


def data_digest() -> str:
    """sha256 over the data files the parts are pre-trained from."""
    from labkit.pretrain_mixture import corpus_files

    h = hashlib.sha256()
    for path in corpus_files():
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def is_current(manifest: dict[str, Any] | None = None) -> bool:
    """Whether the installed fixtures are the shipped ones and intact (no torch import)."""
    manifest = manifest if manifest is not None else read_manifest()
    shipped = _read_json(shipped_dir() / MANIFEST)
    if not manifest or not shipped or manifest.get("shipped_files") != shipped.get("files"):
        return False
    weights = manifest.get("weights") or {}
    intact = bool(weights) and weight_hashes() == weights
    if not intact:
        log.warning("The offline fixtures in %s are incomplete or damaged; they will be installed again.", fixture_dir())
    return intact


def build(force: bool = False) -> dict[str, Any]:
    """Install the shipped parts if needed (seconds) and return the installed manifest.

    Returns at once (no torch import) when the installed copy is the shipped one and intact;
    ``force=True`` installs again. Safe against concurrent callers."""
    if not force:
        manifest = read_manifest()
        if is_current(manifest):
            return manifest  # type: ignore[return-value]
    from filelock import FileLock

    home = fixture_dir()
    home.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home.parent / "fixtures.lock")):
        if not force:
            manifest = read_manifest()
            if is_current(manifest):
                return manifest  # type: ignore[return-value]
        return _install_locked(home)


def ensure() -> dict[str, Any]:
    """Make sure the fixtures are installed (on first use); returns the manifest."""
    return build(force=False)


def verify_shipped() -> dict[str, Any]:
    """The shipped manifest, after checking every shipped file against its hash."""
    shipped = read_shipped_manifest()
    found = file_hashes(shipped_dir())
    wrong = sorted(k for k, v in shipped["files"].items() if found.get(k) != v)
    if wrong:
        raise LabkitError(
            f"The shipped models in {shipped_dir()} do not match their manifest: {', '.join(wrong)} "
            f"{'is' if len(wrong) == 1 else 'are'} missing or changed. Restore them with "
            "'git checkout -- data/original-model', or pre-train them again with 'labkit fixtures --rebuild'.")
    return shipped


def _install_locked(home: Path) -> dict[str, Any]:
    from safetensors.torch import load_file, save_file

    t0 = time.perf_counter()
    shipped = verify_shipped()
    if shipped.get("data_digest") and shipped["data_digest"] != data_digest():
        log.warning("data/ differs from the data the shipped original model was pre-trained on; the labs use the "
                    "shipped model. 'labkit fixtures --rebuild' pre-trains one from the current data.")
    with atomic_folder(home) as staging:
        for rel in shipped["files"]:
            src, dst = shipped_dir() / rel, staging / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.name == WEIGHTS:
                # fp16 -> fp32 is exact: every machine computes from the same numbers.
                tensors = {k: v.float() for k, v in load_file(str(src)).items()}
                save_file(tensors, str(dst), metadata={"format": "pt"})
            else:
                shutil.copyfile(src, dst)
        manifest = {k: v for k, v in shipped.items() if k != "files"}
        manifest.update(shipped_files=shipped["files"], weights=weight_hashes(staging),
                        installed_from=str(shipped_dir()), install_seconds=round(time.perf_counter() - t0, 2))
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    log.info("Offline models installed in %s in %.1f s.", home, manifest["install_seconds"])
    return manifest


def rebuild(out: Path | None = None, *, steps: int | None = None,
            callback: "Callable[[int, Any], None] | None" = None) -> dict[str, Any]:
    """Pre-train the tokenizer, the original model and the classifier from ``data/`` and write them,
    weights in fp16, with their manifest, to ``out`` (default: ``data/original-model``, to commit).

    Deterministic on one machine: one thread, torch's deterministic algorithms, fixed seeds.
    ``steps`` shortens the policy's schedule (the slow tests check a short one is reproducible);
    ``callback(step, model)`` watches the pre-training (:func:`labkit.pretrain.train_policy`)."""
    import torch
    from safetensors.torch import load_file, save_file

    from labkit import pretrain
    from labkit.pretrain_mixture import load_corpus
    from labkit.pretrain_tokenizer import train_tokenizer

    target = Path(out) if out is not None else shipped_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    previous = torch.are_deterministic_algorithms_enabled()
    try:
        with atomic_folder(target) as staging, torch_threads(BUILD_THREADS):
            torch.use_deterministic_algorithms(True)
            corpus = load_corpus()
            tokenizer = train_tokenizer(corpus, staging / "tokenizer")
            policy = pretrain.train_policy(corpus, tokenizer, staging / "policy",
                                           steps=pretrain.PRETRAIN_STEPS if steps is None else steps,
                                           callback=callback)
            classifier = pretrain.train_classifier(corpus, tokenizer, staging / "classifier")
            for part in ("policy", "classifier"):
                path = staging / part / WEIGHTS
                save_file({k: v.half().contiguous() for k, v in load_file(str(path)).items()}, str(path),
                          metadata={"format": "pt"})
            manifest = {"recipe_version": pretrain.RECIPE_VERSION, "seed": pretrain.SEED, "data_digest": data_digest(),
                        "vocab_size": len(tokenizer), "policy": policy, "classifier": classifier,
                        "build_seconds": round(time.perf_counter() - t0, 1), "build_threads": BUILD_THREADS,
                        "torch": torch.__version__, "stored_dtype": "float16", "files": file_hashes(staging)}
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    finally:
        torch.use_deterministic_algorithms(previous)
    log.info("Original model pre-trained into %s in %.1f s.", target, manifest["build_seconds"])
    return manifest


def main() -> None:  # pragma: no cover - thin CLI wrapper
    """Entry point for ``python -m labkit.fixtures``."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    manifest = build()
    print(json.dumps({k: manifest[k] for k in ("recipe_version", "policy", "classifier", "install_seconds")}, indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
