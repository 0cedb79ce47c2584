"""Training throughput of the offline "original model" (the tiny T5 of labkit.pretrain), ways side by side.

The one-off pre-training (``labkit fixtures --rebuild``) and the labs (<= 5 minutes) are what limits
how well the stand-in learns, so each second of training should do useful work.
All ways train the same fresh model (pretrain.tiny_t5_config) on the same pre-training
mixture (``labkit.pretrain`` recipe) for the same number of *examples*, fp32, AdamW:

1. course-style: batches of 16 in random order, padded to 512 tokens
   (the course's ``padding="max_length"``), SentencePiece-trained tokenizer, 1 thread;
2. random batches of 16 padded to their longest row, same tokenizer, 1 thread;
3. the same with the whole-word tokenizer (``pretrain_tokenizer.tokenizer_vocab``): shorter sequences;
4. + token-budget batches (``labkit.training.batching.token_budget_batches``: similar lengths, at most
   ``PRETRAIN_BATCH_TOKENS`` padded tokens each), 1 thread;
5. the same on 2 threads (labkit's sleeping OpenMP threads) -- what the labs do;
6. way 4 under bf16 autocast (fp32 master weights, as ``labkit.precision`` trains where bf16 is fast),
   so both dtypes are reported side by side, with the machine's measured bf16/fp32 matmul ratio.

Reported per way: real (non-padding) tokens per second, examples per second,
padding share, and achieved GFLOP/s (FLOPs of the steps counted by
``torch.utils.flop_counter``) against this machine's fp32 matmul peak measured in
the same run (a 1024^3 matmul on 1 and 2 threads).

Run (~3 min; the machine should be otherwise idle):  .venv/bin/python bench/train_throughput.py
Quick (``--quick``: the first 48 rows of each data file, batches of 2, one timed step per way, a 256^3
matmul; seconds, the figures mean nothing): checks the bench itself.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import labkit  # noqa: E402,F401  (sets OMP_WAIT_POLICY=PASSIVE before torch loads)
import torch  # noqa: E402

from labkit import pretrain, pretrain_mixture, pretrain_tokenizer  # noqa: E402
from labkit.config import MAX_SOURCE_TOKENS  # noqa: E402
from labkit.config import torch_threads  # noqa: E402
from labkit.training.batching import token_budget_batches  # noqa: E402


QUICK_ROWS, QUICK_BATCH, QUICK_EXAMPLES, QUICK_MATMUL = 48, 2, 2, 256
BATCH = 16  # the course's batches


def matmul_peak_gflops(threads: int, n: int = 1024, repeats: int = 10) -> float:
    """Best-of fp32 GEMM rate on ``threads`` threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    with torch_threads(threads):
        a @ b
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def sentencepiece_tokenizer(corpus, out: Path):
    """The tokenizer of fixture recipe 3 (SentencePiece's unigram trainer, 2,000 pieces asked)."""
    from tokenizers import SentencePieceUnigramTokenizer
    from transformers import T5Tokenizer

    spm = SentencePieceUnigramTokenizer()
    spm.train_from_iterator(pretrain_tokenizer.tokenizer_texts(corpus), vocab_size=2000, show_progress=False,
                            special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>")
    import json

    tok = T5Tokenizer(vocab=[tuple(p) for p in json.loads(spm.to_str())["model"]["vocab"]], extra_ids=0)
    tok.save_pretrained(out)
    return tok


def precision_line() -> str:
    """What labkit.precision measured on this machine (cached), for the bf16 line."""
    from labkit import precision

    choice = precision.choose("auto")
    return f"labkit.precision on this CPU: {choice.speeds()}; dtype='auto' picks {choice.dtype}"


def pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(map(len, rows))
    return torch.tensor([r + [value] * (width - len(r)) for r in rows])


def fixed_batches(n: int, size: int, rng: random.Random) -> list[list[int]]:
    order = list(range(n))
    rng.shuffle(order)
    return [order[i : i + size] for i in range(0, n, size)]


def run_way(name, tokenizer, pairs, batches, *, pad_to: int | None, threads: int, max_examples: int,
            bf16: bool = False) -> dict:
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import T5ForConditionalGeneration

    src = tokenizer([s for s, _ in pairs], truncation=True, max_length=MAX_SOURCE_TOKENS)["input_ids"]
    tgt = tokenizer([t for _, t in pairs], truncation=True, max_length=pretrain_mixture.MAX_TARGET_TOKENS)["input_ids"]
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(pretrain.tiny_t5_config(len(tokenizer))).train()
    opt = torch.optim.AdamW(model.parameters(), lr=pretrain.PRETRAIN_LR)
    examples = real = padded = flops = 0
    seconds = 0.0
    with torch_threads(threads):
        for step, batch in enumerate(batches):
            if examples >= max_examples:
                break
            rows = [src[i] for i in batch]
            if pad_to:
                rows = [r + [0] * (pad_to - len(r)) for r in rows]
            ids = pad(rows, tokenizer.pad_token_id)
            labels = pad([tgt[i] for i in batch], -100)
            counter = FlopCounterMode(display=False) if step == 1 else None
            autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
            t0 = time.perf_counter()
            with counter or contextlib.nullcontext(), autocast:
                loss = model(input_ids=ids, attention_mask=(ids != 0).long(), labels=labels).loss
            with counter or contextlib.nullcontext():
                loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            dt = time.perf_counter() - t0
            if step == 0:
                continue  # warm-up step (allocator, AdamW state) not timed
            if counter:
                # FLOPs per padded token of this step, applied to the padded tokens of every step
                flops_per_token = counter.get_total_flops() / (ids.numel() + labels.numel())
            seconds += dt
            examples += len(batch)
            real += int((ids != 0).sum()) + int((labels != -100).sum())
            padded += ids.numel() + labels.numel()
    flops = flops_per_token * padded
    return {"way": name, "threads": threads, "examples": examples, "seconds": seconds,
            "examples_per_s": examples / seconds, "real_tokens_per_s": real / seconds,
            "padding_share": 1 - real / padded, "gflops": flops / seconds / 1e9}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=480, help="examples trained per way (default 480)")
    ap.add_argument("--quick", action="store_true", help="48 rows, one timed step of 2 per way: checks the bench in seconds")
    args = ap.parse_args()
    corpus = pretrain_mixture.load_corpus()
    batch, budget_tokens, matmul_n = BATCH, pretrain_mixture.PRETRAIN_BATCH_TOKENS, 1024
    if args.quick:
        corpus = {name: rows[:QUICK_ROWS] for name, rows in corpus.items()}
        args.examples, batch, budget_tokens, matmul_n = QUICK_EXAMPLES, QUICK_BATCH, budget_tokens // 8, QUICK_MATMUL
        print(f"quick: {QUICK_ROWS} rows per data file, batches of {batch}, {args.examples} examples per way: "
              "the figures mean nothing")
    rows = corpus["train"]
    with tempfile.TemporaryDirectory() as tmp:
        old_tok = sentencepiece_tokenizer(corpus, Path(tmp) / "spm")
        new_tok = pretrain_tokenizer.train_tokenizer(corpus, Path(tmp) / "words")
    rng = random.Random(pretrain_mixture.SEED)
    # One draw of the mixture, the same pairs for every way.
    mixture = pretrain_mixture.Mixture(rows, new_tok, rng)
    pairs = [mixture.pair(r) for r in rows]
    words = sum(len(s.split()) for s, _ in pairs)
    for label, tok in (("sentencepiece", old_tok), ("whole-word", new_tok)):
        n = sum(len(ids) for ids in tok([s for s, _ in pairs])["input_ids"])
        print(f"{label:>13} tokenizer: {len(tok)} pieces, {n / words:.2f} tokens per word of input")
    peak = {t: matmul_peak_gflops(t, n=matmul_n) for t in (1, 2)}
    print(f"fp32 matmul peak ({matmul_n}^3): {peak[1]:.0f} GFLOP/s on 1 thread, {peak[2]:.0f} on 2")

    lengths = [len(ids) for ids in new_tok([s for s, _ in pairs], truncation=True, max_length=MAX_SOURCE_TOKENS)["input_ids"]]
    budget = token_budget_batches(lengths, budget_tokens, random.Random(1))
    ways = [
        (f"course-style: pad to {MAX_SOURCE_TOKENS}, SentencePiece", old_tok,
         fixed_batches(len(pairs), batch, random.Random(1)), MAX_SOURCE_TOKENS, 1),
        ("pad to longest, SentencePiece", old_tok, fixed_batches(len(pairs), batch, random.Random(1)), None, 1),
        ("pad to longest, whole-word", new_tok, fixed_batches(len(pairs), batch, random.Random(1)), None, 1),
        ("token-budget batches, whole-word", new_tok, budget, None, 1),
        ("token-budget batches, whole-word, 2 threads", new_tok, budget, None, 2),
    ]
    results = [run_way(name, tok, pairs, b, pad_to=p, threads=t, max_examples=args.examples) for name, tok, b, p, t in ways]
    fp32_way = results[3]
    results.append(run_way("token-budget batches, whole-word, bf16 autocast", new_tok, pairs, budget, pad_to=None, threads=1,
                           max_examples=args.examples, bf16=True))
    base = results[0]["examples_per_s"]
    print(f"\n{'way':<46} {'ex/s':>6} {'speed-up':>8} {'real tok/s':>10} {'padding':>8} {'GFLOP/s':>8} {'of peak':>7}")
    for r in results:
        print(f"{r['way']:<46} {r['examples_per_s']:6.1f} {r['examples_per_s'] / base:7.2f}x {r['real_tokens_per_s']:10.0f} "
              f"{r['padding_share']:8.1%} {r['gflops']:8.1f} {r['gflops'] / peak[r['threads']]:7.1%}")
    final = results[4]
    bf16_way = results[-1]
    print(f"bf16 autocast against fp32, the same batches on 1 thread: {bf16_way['examples_per_s'] / fp32_way['examples_per_s']:.2f}x "
          f"({precision_line()})")
    print(f"\nspeed-up of labkit fixtures' way over the course-style loop: {final['examples_per_s'] / base:.2f}x "
          f"(examples per second; {statistics.fmean([r['seconds'] for r in results]):.0f} s per way on average)")


if __name__ == "__main__":
    main()
