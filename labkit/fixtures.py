"""Build and cache the offline profile's tiny models, deterministically.

``build()`` trains, from the project's own ``data/``:

* a SentencePiece-unigram tokenizer wrapped as a T5 tokenizer (T5's ``<pad>``,
  ``</s>``, ``<unk>`` at ids 0, 1, 2);
* the "original model": a tiny T5 given a short generic pre-training (copy a
  dialogue's opening turn; answer the course's instructions with a vague
  "#Person1# and #Person2# talk about <topic>."), so it is weak at real
  summarization but not random;
* a tiny RoBERTa hate-speech classifier with ``id2label = {0: "nothate", 1: "hate"}``
  (the same labels as facebook/roberta-hate-speech-dynabench-r4-target).

Everything is saved with ``save_pretrained`` under ``labkit_home()/fixtures``
and loaded back only through ``from_pretrained``. A manifest records the recipe
version, a digest of the data and the weight hashes; ``build()`` returns at
once (no torch import) when they match, and rebuilds otherwise. The build
writes into a temporary folder and swaps it in, so an interrupted build never
leaves half-written fixtures.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from labkit.config import LabkitError, data_dir, fixture_dir, torch_threads

RECIPE_VERSION = "3"  # 3: the tokenizer is canonicalised (every build alike)
SEED = 1234
VOCAB_SIZE = 2000
MAX_INPUT_TOKENS = 256
MAX_TARGET_TOKENS = 48
PRETRAIN_STEPS = 220
PRETRAIN_BATCH = 32
CLASSIFIER_EPOCHS = 3
MANIFEST = "manifest.json"
PARTS = ("tokenizer", "policy", "classifier")

# The course's instructions; the pre-training teaches the tiny model to answer
# them vaguely, the way an instruction-tuned model that never saw DialogSum would.
SUMMARIZE_PROMPT = "Summarize the following conversation.\n\n{dialogue}\n\nSummary: "
WHAT_WAS_GOING_ON_PROMPT = "Dialogue:\n{dialogue}\n\nWhat was going on?"

log = logging.getLogger(__name__)


def _data_files() -> list[Path]:
    root = data_dir()
    files = sorted((root / "dialogsum-mini").glob("*.jsonl")) + sorted((root / "toxicity").glob("*.jsonl"))
    if not files:
        raise LabkitError(
            f"No project data found under {root}. Expected data/dialogsum-mini/*.jsonl and data/toxicity/*.jsonl; "
            "regenerate them with 'python -m labkit.datagen'."
        )
    return files


def data_digest() -> str:
    """sha256 over the data files the fixtures are trained from."""
    h = hashlib.sha256()
    for path in _data_files():
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def manifest_path() -> Path:
    return fixture_dir() / MANIFEST


def read_manifest() -> dict[str, Any] | None:
    """The manifest of the cached fixtures, or None when there are none."""
    try:
        return json.loads(manifest_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_current(manifest: dict[str, Any] | None = None) -> bool:
    """Whether cached fixtures exist for this recipe version and these data."""
    manifest = manifest if manifest is not None else read_manifest()
    if not manifest or manifest.get("recipe_version") != RECIPE_VERSION:
        return False
    if manifest.get("data_digest") != data_digest():
        return False
    return all((fixture_dir(part) / "config.json").exists() or part == "tokenizer" for part in PARTS) and all(
        fixture_dir(part).is_dir() for part in PARTS
    ) and _weights_intact(manifest)


def _weights_intact(manifest: dict[str, Any]) -> bool:
    # A deleted or half-copied weight file makes the cache stale, so ensure() rebuilds it
    # instead of the lab failing deep inside transformers. The files are small (~6 MB).
    weights = manifest.get("weights") or {}
    intact = bool(weights) and weight_hashes() == weights
    if not intact:
        log.warning("The offline fixtures in %s are incomplete or damaged; they will be rebuilt.", fixture_dir())
    return intact


def weight_hashes(root: Path | None = None) -> dict[str, str]:
    """sha256 of every weight file under the fixtures folder (relative path → hash)."""
    base = root or fixture_dir()
    out = {}
    for path in sorted(base.rglob("*")):
        if path.suffix in (".safetensors", ".bin") and path.is_file():
            out[str(path.relative_to(base))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def build(force: bool = False) -> dict[str, Any]:
    """Build the offline fixtures if needed and return their manifest.

    Reuses the cache when the recipe version and data digest match (fast: no
    torch import); ``force=True`` rebuilds. Safe against concurrent callers.
    """
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
        return _build_locked(home)


def ensure() -> dict[str, Any]:
    """Make sure fixtures exist (build on first use); returns the manifest."""
    return build(force=False)


def _build_locked(home: Path) -> dict[str, Any]:
    import torch

    t0 = time.perf_counter()
    log.info("Building offline fixtures in %s (one-off, about a minute or two) ...", home)
    staging = Path(tempfile.mkdtemp(prefix=".fixtures-", dir=home.parent))
    previous_det = torch.are_deterministic_algorithms_enabled()
    try:
        # Float sums depend on how work is split across threads: one fixed thread count
        # makes the weights the same whoever calls build().
        with torch_threads(1):
            torch.use_deterministic_algorithms(True)
            corpus = _load_corpus()
            tokenizer = _train_tokenizer(corpus, staging / "tokenizer")
            policy_stats = _train_policy(corpus, tokenizer, staging / "policy")
            classifier_stats = _train_classifier(corpus, tokenizer, staging / "classifier")
        manifest = {
            "recipe_version": RECIPE_VERSION,
            "seed": SEED,
            "data_digest": data_digest(),
            "vocab_size": len(tokenizer),
            "policy": policy_stats,
            "classifier": classifier_stats,
            "weights": weight_hashes(staging),
            "build_seconds": round(time.perf_counter() - t0, 1),
            "torch": torch.__version__,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if home.exists():
            trash = home.parent / f".fixtures-old-{os.getpid()}"
            os.replace(home, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(staging, home)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        torch.use_deterministic_algorithms(previous_det)
    log.info("Fixtures built in %.1f s.", manifest["build_seconds"])
    return manifest


# ----------------------------------------------------------------------------- corpus


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _load_corpus() -> dict[str, list[dict[str, Any]]]:
    root = data_dir()
    files = {
        "train": root / "dialogsum-mini" / "train.jsonl",
        "toxicity_train": root / "toxicity" / "train.jsonl",
        "toxicity_test": root / "toxicity" / "test.jsonl",
    }
    missing = [path.relative_to(root).as_posix() for path in files.values() if not path.is_file()]
    if missing:
        raise LabkitError(
            f"The offline models are trained from the project's data, but {root} lacks {', '.join(missing)}. "
            "Restore data/ (git checkout -- data) or regenerate it with 'python -m labkit.datagen', "
            "then re-run this cell."
        )
    return {name: _read_jsonl(path) for name, path in files.items()}


# ----------------------------------------------------------------------------- tokenizer


def _tokenizer_texts(corpus: dict[str, list[dict[str, Any]]]) -> Iterator[str]:
    yield SUMMARIZE_PROMPT.format(dialogue="")
    yield WHAT_WAS_GOING_ON_PROMPT.format(dialogue="")
    for row in corpus["train"]:
        yield row["dialogue"]
        yield row["summary"]
    for row in corpus["toxicity_train"]:
        yield row["text"]


# The unigram trainer appends characters it had to keep with scores that step down
# by this much, in hash order; see _canonical_vocab.
_FALLBACK_SCORE_STEP = 1e-4
_SCORE_DECIMALS = 8


def _canonical_vocab(vocab: list[tuple[str, float]], n_special: int) -> list[tuple[str, float]]:
    """The trainer's vocabulary made the same for every build.

    Two things vary from build to build in the ``tokenizers`` unigram trainer, even
    with ``TOKENIZERS_PARALLELISM=false``. First, all scores shift together in their
    last bits (~1e-15); that flipped near-tied segmentations of 104 of 500 real
    dialogues. Second, the trailing run of fallback characters (scores
    ``_FALLBACK_SCORE_STEP`` or 0 apart) comes out in hash order, which permutes
    their ids. So scores are rounded and that run is sorted by piece, each position
    keeping its score. The learned pieces keep the trainer's order, which the
    common shift leaves alone (and with it the ids earlier builds gave them).
    """
    rounded = [(piece, round(float(score), _SCORE_DECIMALS)) for piece, score in vocab]
    head = len(rounded) - 1
    while head - 1 >= n_special and round(rounded[head - 1][1] - rounded[head][1], _SCORE_DECIMALS) in (0.0, _FALLBACK_SCORE_STEP):
        head -= 1
    fallback = [(piece, score) for piece, (_, score) in zip(sorted(p for p, _ in rounded[head:]), rounded[head:])]
    return rounded[:head] + fallback


def _train_tokenizer(corpus: dict[str, list[dict[str, Any]]], out: Path) -> Any:
    from tokenizers import SentencePieceUnigramTokenizer
    from transformers import T5Tokenizer

    spm = SentencePieceUnigramTokenizer()
    spm.train_from_iterator(
        _tokenizer_texts(corpus), vocab_size=VOCAB_SIZE, show_progress=False,
        special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>",
    )
    vocab = json.loads(spm.to_str())["model"]["vocab"]
    tokenizer = T5Tokenizer(vocab=_canonical_vocab(vocab, n_special=3), extra_ids=0)
    tokenizer.model_max_length = 512
    if tokenizer.convert_tokens_to_ids(["<pad>", "</s>", "<unk>"]) != [0, 1, 2]:
        raise RuntimeError("tokenizer special tokens are not at ids 0, 1, 2 as T5 expects")
    tokenizer.save_pretrained(out)
    return tokenizer


# ----------------------------------------------------------------------------- policy


def _opening_turn(dialogue: str) -> str:
    first = dialogue.split("\n", 1)[0]
    return first.split(":", 1)[1].strip() if ":" in first else first


def _pretraining_pairs(rows: list[dict[str, Any]], rng: random.Random) -> list[tuple[str, str]]:
    pairs = []
    for row in rows:
        topic = row.get("topic") or "everyday life"
        task = rng.random()
        if task < 0.4:
            pairs.append((SUMMARIZE_PROMPT.format(dialogue=row["dialogue"]), f"#Person1# and #Person2# talk about {topic}."))
        elif task < 0.7:
            pairs.append((WHAT_WAS_GOING_ON_PROMPT.format(dialogue=row["dialogue"]), f"#Person1# and #Person2# are talking about {topic}."))
        else:
            pairs.append((row["dialogue"], _opening_turn(row["dialogue"])))
    return pairs


def _tiny_t5_config(vocab_size: int) -> Any:
    from transformers import T5Config

    return T5Config(
        vocab_size=vocab_size, d_model=128, d_kv=32, d_ff=512, num_layers=2, num_decoder_layers=2, num_heads=4,
        relative_attention_num_buckets=32, relative_attention_max_distance=128, dropout_rate=0.1,
        feed_forward_proj="gated-gelu", tie_word_embeddings=True,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )


def _length_bucketed_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    # Batches of similar length waste little compute on padding (no fixed 512).
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def _train_policy(corpus: dict[str, list[dict[str, Any]]], tokenizer: Any, out: Path) -> dict[str, Any]:
    import torch
    from tqdm.auto import tqdm
    from transformers import T5ForConditionalGeneration, get_linear_schedule_with_warmup

    rng = random.Random(SEED)
    torch.manual_seed(SEED)
    pairs = _pretraining_pairs(corpus["train"], rng)
    sources = tokenizer([s for s, _ in pairs], truncation=True, max_length=MAX_INPUT_TOKENS)["input_ids"]
    targets = tokenizer([t for _, t in pairs], truncation=True, max_length=MAX_TARGET_TOKENS)["input_ids"]
    model = T5ForConditionalGeneration(_tiny_t5_config(len(tokenizer)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, 20, PRETRAIN_STEPS)
    batches: list[list[int]] = []
    model.train()
    losses = []
    for _ in tqdm(range(PRETRAIN_STEPS), desc="pre-training tiny T5", mininterval=2):
        if not batches:
            batches = _length_bucketed_batches([len(s) for s in sources], PRETRAIN_BATCH, rng)
        idx = batches.pop()
        enc = tokenizer.pad({"input_ids": [sources[i] for i in idx]}, return_tensors="pt")
        lab = tokenizer.pad({"input_ids": [targets[i] for i in idx]}, return_tensors="pt")["input_ids"]
        lab[lab == tokenizer.pad_token_id] = -100
        loss = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=lab).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    model.generation_config.max_new_tokens = MAX_TARGET_TOKENS
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    return {"parameters": n_params, "steps": PRETRAIN_STEPS, "final_loss": round(sum(losses[-20:]) / 20, 4)}


# ----------------------------------------------------------------------------- classifier


def _train_classifier(corpus: dict[str, list[dict[str, Any]]], tokenizer: Any, out: Path) -> dict[str, Any]:
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    label2id = {"nothate": 0, "hate": 1}
    config = RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=MAX_INPUT_TOKENS + 2, type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        id2label={0: "nothate", 1: "hate"}, label2id=label2id,
    )
    model = RobertaForSequenceClassification(config)
    train = corpus["toxicity_train"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    model.train()
    for _ in range(CLASSIFIER_EPOCHS):
        order = list(range(len(train)))
        rng.shuffle(order)
        for start in range(0, len(order), 32):
            rows = [train[i] for i in order[start : start + 32]]
            enc = tokenizer([r["text"] for r in rows], padding=True, truncation=True, max_length=MAX_INPUT_TOKENS, return_tensors="pt")
            labels = torch.tensor([label2id[r["label"]] for r in rows])
            loss = model(**enc, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    model.eval()
    test = corpus["toxicity_test"]
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(test), 64):
            rows = test[start : start + 64]
            enc = tokenizer([r["text"] for r in rows], padding=True, truncation=True, max_length=MAX_INPUT_TOKENS, return_tensors="pt")
            pred = model(**enc).logits.argmax(-1).tolist()
            correct += sum(int(p == label2id[r["label"]]) for p, r in zip(pred, rows))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    accuracy = correct / len(test)
    if accuracy < 0.85:
        log.warning("toxicity classifier test accuracy is only %.3f", accuracy)
    return {"parameters": sum(p.numel() for p in model.parameters()), "test_accuracy": round(accuracy, 4)}


def main() -> None:  # pragma: no cover - thin CLI wrapper
    """Entry point for ``python -m labkit.fixtures``."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    manifest = build()
    print(json.dumps({k: manifest[k] for k in ("recipe_version", "policy", "classifier", "build_seconds")}, indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
