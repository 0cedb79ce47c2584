"""The course-shaped stand-in: random-weight models of the course's exact shapes, in the ``LABKIT_MODELS`` layout.

``build(directory)`` (the command ``labkit fixtures --course-shaped DIR``) writes:

* ``DIR/google/flan-t5-base/``: a T5 with flan-t5-base's published configuration
  (247,577,856 parameters, ``lm_head`` separate from the shared embedding as in the
  real checkpoint) and a T5-style tokenizer (``<pad>``, ``</s>``, ``<unk>`` at ids 0-2,
  32,000 pieces and 100 ``<extra_id_N>``: 32,100 tokens, like the real one);
* ``DIR/facebook/roberta-hate-speech-dynabench-r4-target/``: a RoBERTa-base
  sequence classifier with the reward model's configuration and labels
  (``id2label = {0: "nothate", 1: "hate"}``) and a byte-level BPE tokenizer;
* ``DIR/peft-dialogue-summary-checkpoint/``: an untrained LoRA adapter with the
  course's settings (r 32, alpha 32, q and v, dropout 0.05) on that T5, in the place
  of the course's Lab 2 checkpoint that its Lab 3 started from.

The weights are random. **It is a stand-in for shapes and memory only**: what it
writes is word salad and what the classifier says is noise. Every folder carries
``STAND_IN_FILE``; :func:`labkit.models.marker` reads it, and labkit says "stand-in" wherever it
loads one (``check_setup``, the lab's log, ``run_info``).

The tokenizers are trained on the project's own ``data/``, which has only ~1,300
distinct words: the T5 tokenizer's learned pieces are therefore topped up with
filler pieces (joins of two learned pieces) that segmentation never chooses, so
every id a random model can emit decodes to text, and real dialogues take more
tokens than with flan-t5-base's tokenizer (measured on the DialogSum validation
split: about 2.1 tokens per word), which fills the 512-token budget sooner, the
heavier case for time and memory.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from labkit.config import (
    COURSE_MODEL,
    COURSE_SUMMARIZER_ADAPTER,
    COURSE_TOXICITY_MODEL,
    MAX_SOURCE_TOKENS,
    LabkitError,
    data_dir,
)
from labkit.lab_settings.lora import LoraSettings
from labkit.data import json_lines
from labkit.models import STAND_IN_FILE, build_flan_t5_base_shaped, is_stand_in, marker, untie_lm_head
from labkit.training.lora import lora_config
from labkit.training.params import count_parameters

log = logging.getLogger(__name__)

RECIPE_VERSION = "1"
MANIFEST = STAND_IN_FILE            # the same name at the top of DIR: the whole layout's record
SEED = 0
T5_VOCAB_PIECES = 32_000            # sentencepiece pieces of t5-base (then 100 <extra_id_N>)
T5_EXTRA_IDS = 100
ROBERTA_VOCAB = 50_265              # roberta-base's vocabulary (the model's embedding rows)
ROBERTA_POSITIONS = 514             # roberta-base's position rows; its ids start after the padding index (1)
NOTE = ("course-shaped stand-in: random weights, for shapes and memory only; its text is word salad and "
        "its scores are noise")
PARTS = {"summarizer": COURSE_MODEL, "reward_model": COURSE_TOXICITY_MODEL, "summarizer_adapter": COURSE_SUMMARIZER_ADAPTER}


# ----------------------------------------------------------------------------- reading


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of a stand-in layout, or None when ``directory`` holds none of this recipe."""
    record = marker(directory)
    if not record or record.get("recipe_version") != RECIPE_VERSION:
        return None
    if not all((Path(directory) / rel / STAND_IN_FILE).is_file() for rel in PARTS.values()):
        return None
    return record


# ----------------------------------------------------------------------------- building


def build(directory: str | os.PathLike[str], *, force: bool = False, t5_config: Any = None,
          roberta_config: Any = None, seed: int = SEED) -> dict[str, Any]:
    """Write the course-shaped stand-in under ``directory`` (see the module docstring) and return its manifest.

    A layout of this recipe already there is reused (``force=True`` rebuilds it). A model folder there that
    is *not* a stand-in (a real model an instructor saved) is never overwritten: LabkitError says so.
    ``t5_config`` / ``roberta_config`` replace the published configurations (tests build small ones).
    Takes about a minute and writes ~1.5 GB at the course's shapes.
    """
    root = Path(directory).expanduser().resolve()
    if not force and t5_config is None and roberta_config is None:
        manifest = read_manifest(root)
        if manifest is not None:
            log.info("course-shaped stand-in already in %s (recipe %s)", root, RECIPE_VERSION)
            return manifest
    for rel in PARTS.values():
        target = root / rel
        if target.exists() and not is_stand_in(target):
            raise LabkitError(
                f"{target} exists and is not a labkit stand-in (it has no {STAND_IN_FILE}): it may be a real model, "
                "so it is left alone. Build the stand-in into an empty folder, e.g. "
                "'labkit fixtures --course-shaped /tmp/course-shaped'.")
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    staging = Path(tempfile.mkdtemp(prefix=".stand-in-", dir=root))
    try:
        parts = _build_parts(staging, t5_config=t5_config, roberta_config=roberta_config, seed=seed)
        for rel in PARTS.values():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging / rel, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest = {"stand_in": True, "note": NOTE, "recipe_version": RECIPE_VERSION, "seed": seed,
                "built_by": "labkit fixtures --course-shaped", "parts": parts,
                "build_seconds": round(time.perf_counter() - t0, 1)}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log.info("course-shaped stand-in written to %s in %.0f s", root, manifest["build_seconds"])
    return manifest


def _build_parts(staging: Path, *, t5_config: Any, roberta_config: Any, seed: int) -> dict[str, Any]:
    import torch

    corpus = list(_corpus_texts())
    torch.manual_seed(seed)
    summarizer_dir = staging / COURSE_MODEL
    tokenizer = train_t5_tokenizer(corpus)
    model = build_t5(t5_config, seed=seed)
    model.save_pretrained(summarizer_dir)
    tokenizer.save_pretrained(summarizer_dir)
    summarizer = _write_marker(summarizer_dir, COURSE_MODEL, model, tokenizer)
    adapter = _save_adapter(model, staging / COURSE_SUMMARIZER_ADAPTER, seed=seed)
    del model
    reward_dir = staging / COURSE_TOXICITY_MODEL
    classifier = build_roberta_classifier(roberta_config, seed=seed)
    reward_tokenizer = train_roberta_tokenizer(corpus)
    classifier.save_pretrained(reward_dir)
    reward_tokenizer.save_pretrained(reward_dir)
    reward = _write_marker(reward_dir, COURSE_TOXICITY_MODEL, classifier, reward_tokenizer)
    return {"summarizer": summarizer, "reward_model": reward, "summarizer_adapter": adapter}


def _write_marker(folder: Path, of: str, model: Any, tokenizer: Any = None, **extra: Any) -> dict[str, Any]:
    record = {"stand_in": True, "of": of, "note": NOTE, "recipe_version": RECIPE_VERSION,
              "parameters": count_parameters(model).total, **extra}
    if tokenizer is not None:
        record["tokenizer_size"] = len(tokenizer)
    (folder / STAND_IN_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return {k: v for k, v in record.items() if k not in ("stand_in", "note", "recipe_version")}


def _corpus_texts() -> Iterator[str]:
    """The project's own dialogues, summaries and toxicity texts (the tokenizers' training text)."""
    root = data_dir()
    files = [root / "dialogsum-mini" / "train.jsonl", root / "toxicity" / "train.jsonl"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise LabkitError(f"The stand-in's tokenizers are trained on the project's data, but {', '.join(missing)} "
                          "is missing. Restore data/ or regenerate it with 'python -m labkit.datagen'.")
    for path in files:
        for _, row in json_lines(path):
            yield from (row[k] for k in ("dialogue", "summary", "text") if isinstance(row.get(k), str))


# ----------------------------------------------------------------------------- the summarizer


def build_t5(config: Any = None, *, seed: int = SEED) -> Any:
    """flan-t5-base's shape with random weights (``config``: another ``T5Config``), ``lm_head`` separate and
    initialised on its own, so ``save_pretrained`` + ``from_pretrained`` keeps it separate (a copy of the
    embedding would be tied again on loading)."""
    if config is None:
        return build_flan_t5_base_shaped(seed=seed)
    import torch
    from transformers import T5ForConditionalGeneration

    torch.manual_seed(seed)
    return untie_lm_head(T5ForConditionalGeneration(config))


def _filler_pieces(learned: list[str], wanted: int, taken: set[str]) -> Iterator[str]:
    """``wanted`` new pieces, each a learned word start joined to a learned word part, in a fixed order."""
    starts = [p for p in learned if p.startswith("▁") and len(p) > 1]
    tails = [p for p in learned if not p.startswith("▁")]
    made = 0
    for tail in tails:
        for start in starts:
            piece = start + tail
            if piece not in taken:
                taken.add(piece)
                yield piece
                made += 1
                if made == wanted:
                    return
    raise LabkitError(f"Could not make {wanted} filler pieces from {len(learned)} learned ones.")  # pragma: no cover


def train_t5_tokenizer(texts: list[str], pieces: int = T5_VOCAB_PIECES, extra_ids: int = T5_EXTRA_IDS) -> Any:
    """A T5 tokenizer (``<pad>``, ``</s>``, ``<unk>`` at 0, 1, 2; ``pieces`` pieces, then ``extra_ids``
    sentinels) from a sentencepiece-unigram model trained on ``texts``, topped up with filler pieces scored
    below any two learned ones, so they never change how text is split but every id decodes."""
    from tokenizers import SentencePieceUnigramTokenizer
    from transformers import T5Tokenizer

    specials = ["<pad>", "</s>", "<unk>"]
    spm = SentencePieceUnigramTokenizer()
    spm.train_from_iterator(iter(texts), vocab_size=pieces, show_progress=False, special_tokens=specials,
                            unk_token="<unk>")
    vocab = [(piece, round(float(score), 8)) for piece, score in json.loads(spm.to_str())["model"]["vocab"]]
    if len(vocab) < pieces:
        floor = 2 * min(score for _, score in vocab[len(specials):]) - 1.0
        fill = _filler_pieces([p for p, _ in vocab[len(specials):]], pieces - len(vocab), {p for p, _ in vocab})
        vocab += [(piece, floor) for piece in fill]
    tokenizer = T5Tokenizer(vocab=vocab[:pieces], extra_ids=extra_ids)
    tokenizer.model_max_length = MAX_SOURCE_TOKENS  # flan-t5-base's tokenizer says the encoder limit
    if tokenizer.convert_tokens_to_ids(specials) != [0, 1, 2]:
        raise RuntimeError("stand-in tokenizer: <pad>, </s>, <unk> are not at ids 0, 1, 2 as T5 expects")
    return tokenizer


def _save_adapter(model: Any, folder: Path, *, seed: int) -> dict[str, Any]:
    """The course's LoRA (untrained: B = 0) on ``model``, saved as an adapter folder; ``model`` is left as it was."""
    import torch
    from peft import get_peft_model

    torch.manual_seed(seed)
    config = lora_config(LoraSettings(), model)
    peft_model = get_peft_model(model, config)
    peft_model.peft_config["default"].base_model_name_or_path = COURSE_MODEL
    peft_model.save_pretrained(folder, save_embedding_layers=False)  # "auto" would look the base model up online
    trainable = count_parameters(peft_model).trainable
    peft_model.unload()  # take the LoRA layers out again
    record = {"stand_in": True, "of": "the course's Lab 2 LoRA checkpoint (peft-dialogue-summary-checkpoint)",
              "note": NOTE + "; this adapter is untrained (B = 0)", "recipe_version": RECIPE_VERSION,
              "lora": {"r": config.r, "alpha": config.lora_alpha, "target_modules": sorted(config.target_modules),
                       "dropout": config.lora_dropout}, "parameters": trainable}
    (folder / STAND_IN_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return {k: v for k, v in record.items() if k not in ("stand_in", "note", "recipe_version")}


# ----------------------------------------------------------------------------- the reward model


def roberta_classifier_config(vocab_size: int = ROBERTA_VOCAB) -> Any:
    """facebook/roberta-hate-speech-dynabench-r4-target's configuration (roberta-base, two labels)."""
    from transformers import RobertaConfig

    return RobertaConfig(
        vocab_size=vocab_size, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
        max_position_embeddings=ROBERTA_POSITIONS, type_vocab_size=1, initializer_range=0.02, layer_norm_eps=1e-5,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, id2label={0: "nothate", 1: "hate"},
        label2id={"nothate": 0, "hate": 1}, architectures=["RobertaForSequenceClassification"],
    )


def build_roberta_classifier(config: Any = None, *, seed: int = SEED) -> Any:
    """A randomly initialised RoBERTa sequence classifier with the reward model's shape and labels."""
    import torch
    from transformers import RobertaForSequenceClassification

    torch.manual_seed(seed)
    return RobertaForSequenceClassification(config or roberta_classifier_config()).eval()


def train_roberta_tokenizer(texts: list[str], vocab_size: int = ROBERTA_VOCAB) -> Any:
    """A RoBERTa tokenizer (byte-level BPE; ``<s>``, ``<pad>``, ``</s>``, ``<unk>`` at 0-3 as roberta-base,
    ``<mask>`` after them) trained on ``texts``; at most ``vocab_size`` tokens (fewer: the project's data
    hold fewer merges, and the classifier never has to decode)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(iter(texts), vocab_size=vocab_size, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tokenizer = RobertaTokenizer(vocab=model["vocab"], merges=merges)
    tokenizer.model_max_length = ROBERTA_POSITIONS - 2  # RoBERTa's positions start after the padding index
    if tokenizer.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>"]) != [0, 1, 2, 3]:
        raise RuntimeError("stand-in reward tokenizer: <s>, <pad>, </s>, <unk> are not at ids 0-3 as RoBERTa's")
    return tokenizer
