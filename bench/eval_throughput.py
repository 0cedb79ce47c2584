"""Batched evaluation vs the course's per-example generate loop, measured side by side in one run.

Model: flan-t5-base's exact shape (labkit.models.build_flan_t5_base_shaped: random
weights, no download), fp32 on the CPU. Data: the first 32 real DialogSum
validation dialogues (../shared/data/dialogsum; skipped with a message when
absent), as the Lab 2/3 zero-shot prompt, tokenized with the offline tokenizer.
Every way generates exactly the same number of tokens (min_new_tokens =
max_new_tokens = 50, greedy), so they do identical work:

1. the course's loop: one ``model.generate`` per dialogue;
2. ``labkit.generate``: length-sorted batches of 16 under inference_mode, fp32,
   the encoder run in small length-packed chunks and the decoder on the whole batch;
3. ``labkit.generate(..., quantize="int8")``: the same with int8 dynamic
   quantization of the Linear layers (opt-in; the quantization time is counted);
4. ``labkit.generate(..., dtype="bf16")``: the same on a bf16 copy of the model
   (what a lab's ``dtype="auto"`` runs where the CPU has fast bf16; the copy's
   time is counted). Only where the CPU has fast bf16 (measured by
   ``labkit.precision``, or the avx512_bf16/amx_bf16 flags): elsewhere bf16 is
   several times slower than fp32, and the bench says so and skips it.

A faster numeric mode must not change the results: the bench reports how many
int8 (and bf16) outputs equal fp32's token for token on the flan-t5-base-shaped model, and
ROUGE against the human summaries of fp32 vs int8 (and bf16) on real dialogues with the
offline profile's trained summarizer (a random model's ROUGE says nothing).

Run (heavy: ~2-4 min, ~3 GB):  flock /tmp/bigjob.lock .venv/bin/python bench/eval_throughput.py
Quick (``--quick``: a tiny model of the same architecture, 4 dialogues of the project's own data when the real
split is absent, 4 new tokens, parity on 8; seconds, the ratios mean nothing): checks the bench itself.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import _tiny

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def course_loop(model, tokenizer, prompts, config, max_source_tokens):
    """The course's way: tokenize, generate and decode one dialogue at a time."""
    token_ids, texts = [], []
    for prompt in prompts:
        inputs = tokenizer(prompt, return_tensors="pt", truncation=True, max_length=max_source_tokens)
        ids = model.generate(inputs["input_ids"], generation_config=config)[0]
        texts.append(tokenizer.decode(ids, skip_special_tokens=True).strip())
        token_ids.append(ids.tolist()[1:])  # without the decoder start token, as labkit returns them
    return token_ids, texts


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=32, help="dialogues (default 32)")
    parser.add_argument("--new-tokens", type=int, default=50, help="forced new tokens per dialogue (default 50)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--parity-n", type=int, default=200, help="real dialogues for the ROUGE parity check")
    parser.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                        help="auto: bf16 where the CPU has fast bf16 (measured or flagged); on: always; off: never")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny model, 4 dialogues, 4 new tokens, parity on 8: checks the bench in seconds")
    args = parser.parse_args()
    if args.quick:
        args.n, args.new_tokens, args.batch_size, args.parity_n = 4, 4, 2, 8

    import torch

    from labkit import generate as lg
    from labkit import precision
    from labkit.config import MAX_SOURCE_TOKENS, data_dir, shared_dialogsum_path
    from labkit.data import read_jsonl
    from labkit.metrics import bootstrap_ci, rouge
    from labkit.models import load_seq2seq, load_tokenizer
    from labkit.prompts import summarize_prompt

    measured = precision.cached_measurement()
    flags = precision.cpu_bf16_flags()
    print(f"CPU: {precision.cpu_model()} ({', '.join(flags) or 'no avx512_bf16/amx_bf16'}; torch capability "
          f"{measured.key.get('capability')}); matmuls at the labs' shapes, one thread: fp32 {measured.fp32_gflops:.1f}, "
          f"bf16 {measured.bf16_gflops:.1f} GFLOP/s ({measured.speedup:.2f}x)")
    run_bf16 = args.bf16 == "on" or (args.bf16 == "auto" and (measured.fast_bf16 or bool(flags)))
    if not run_bf16:
        why = ("--bf16 off" if args.bf16 == "off" else
               f"this CPU has no fast bf16: bf16 matmuls ran {measured.speedup:.2f}x as fast as fp32 "
               f"(< {precision.FAST_BF16_RATIO}x) and it has neither avx512_bf16 nor amx_bf16, so labkit's dtype='auto' uses fp32")
        print(f"bf16 skipped: {why}")

    path = shared_dialogsum_path()
    if not path.is_file() and args.quick:
        path = data_dir() / "dialogsum-mini" / "train.jsonl"  # the project's own dialogues: enough to check the bench
    if not path.is_file():
        print(f"SKIP: the real DialogSum validation split is not at {path}; nothing to measure.")
        return 0
    rows = read_jsonl(path)
    tokenizer = load_tokenizer("offline")
    prompts = [summarize_prompt(r["dialogue"]) for r in rows[: args.n]]
    n_tokens = sum(len(x) for x in tokenizer(prompts, truncation=True, max_length=MAX_SOURCE_TOKENS)["input_ids"])
    config = lg.make_config({"do_sample": False, "min_new_tokens": args.new_tokens, "max_new_tokens": args.new_tokens})
    model = _tiny.flan_t5_base_shaped(args.quick, seed=0).eval()
    print(f"model: flan-t5-base {'architecture, tiny (quick)' if args.quick else 'shape'}, {sum(p.numel() for p in model.parameters()):,} parameters, fp32, "
          f"{torch.get_num_threads()} threads; {len(prompts)} real DialogSum dialogues ({n_tokens} input tokens), "
          f"{args.new_tokens} forced new tokens each")

    # Warm-up so neither side pays one-time costs (allocator, kernels).
    lg.generate(model, tokenizer, prompts[:2], {"max_new_tokens": 2}, progress=False)

    course, t_course = timed(lambda: course_loop(model, tokenizer, prompts, config, MAX_SOURCE_TOKENS))
    print(f"course loop (one dialogue per generate call): {t_course:6.1f} s")
    fp32_ids, t_fp32 = timed(lambda: lg.generate_ids(model, tokenizer, prompts, config, batch_size=args.batch_size, progress=False))
    print(f"labkit.generate fp32, batches of {args.batch_size}:      {t_fp32:6.1f} s  ratio {t_course / t_fp32:.2f}")
    int8_ids, t_int8 = timed(lambda: lg.generate_ids(model, tokenizer, prompts, config, batch_size=args.batch_size,
                                                     progress=False, quantize="int8"))
    print(f"labkit.generate int8, batches of {args.batch_size}:      {t_int8:6.1f} s  ratio {t_course / t_int8:.2f} "
          "(quantization time included)")
    bf16_ids = t_bf16 = None
    if run_bf16:
        bf16_ids, t_bf16 = timed(lambda: lg.generate_ids(model, tokenizer, prompts, config, batch_size=args.batch_size,
                                                         progress=False, dtype="bf16"))
        print(f"labkit.generate bf16, batches of {args.batch_size}:      {t_bf16:6.1f} s  ratio {t_course / t_bf16:.2f} "
              "(bf16 copy's time included)")

    same_fp32 = sum(a == b for a, b in zip(course[0], fp32_ids))
    same_int8 = sum(a == b for a, b in zip(fp32_ids, int8_ids))
    # Token ids, not text: a random model's ids mostly lie beyond the offline
    # tokenizer's 1,347 pieces and decode to (nearly) nothing.
    print(f"outputs: fp32 batched == course loop for {same_fp32}/{len(prompts)}; int8 == fp32 token for token for "
          f"{same_int8}/{len(prompts)}")
    if bf16_ids is not None:
        print(f"outputs: bf16 == fp32 token for token for {sum(a == b for a, b in zip(fp32_ids, bf16_ids))}/{len(prompts)}")
    del model

    # ROUGE parity of int8 vs fp32 on real text, with a model that summarizes (the offline profile's).
    small = load_seq2seq("offline", device="cpu", dtype=torch.float32)
    real = rows[: args.parity_n]
    real_prompts = [summarize_prompt(r["dialogue"]) for r in real]
    refs = [r["summary"] for r in real]
    a = lg.generate(small, tokenizer, real_prompts, "greedy", progress=False)
    b = lg.generate(small, tokenizer, real_prompts, "greedy", progress=False, quantize="int8")
    ra, rb = rouge(a, refs), rouge(b, refs)
    identical = sum(x == y for x, y in zip(a, b))
    worst = 0.0
    print(f"ROUGE parity on {len(real)} real DialogSum dialogues (offline summarizer; {identical}/{len(real)} outputs identical):")
    for m in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        diff = rb.per_example[m].to_numpy() - ra.per_example[m].to_numpy()
        lo, hi = bootstrap_ci(diff)
        worst = max(worst, abs(rb.scores[m] - ra.scores[m]))
        print(f"  {m:9s} fp32 {ra.scores[m]:.4f}  int8 {rb.scores[m]:.4f}  int8-fp32 {rb.scores[m] - ra.scores[m]:+.4f} "
              f"(95% CI of paired difference [{lo:+.4f}, {hi:+.4f}])")
    parity = worst <= 0.01
    print(f"parity (|ROUGE difference| <= 0.01 on every metric): {'ok' if parity else 'NOT MET'}")
    parity_bf16 = False
    if run_bf16:
        c = lg.generate(small, tokenizer, real_prompts, "greedy", progress=False, dtype="bf16")
        rc = rouge(c, refs)
        worst_bf16, zero_inside = 0.0, True
        print(f"bf16 ROUGE on the same {len(real)} dialogues ({sum(x == y for x, y in zip(a, c))}/{len(real)} outputs "
              "identical to fp32):")
        for m in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
            diff = rc.per_example[m].to_numpy() - ra.per_example[m].to_numpy()
            lo, hi = bootstrap_ci(diff)
            worst_bf16 = max(worst_bf16, abs(rc.scores[m] - ra.scores[m]))
            zero_inside = zero_inside and lo <= 0 <= hi
            print(f"  {m:9s} fp32 {ra.scores[m]:.4f}  bf16 {rc.scores[m]:.4f}  bf16-fp32 {rc.scores[m] - ra.scores[m]:+.4f} "
                  f"(95% CI of paired difference [{lo:+.4f}, {hi:+.4f}])")
        parity_bf16 = worst_bf16 <= 0.01 and zero_inside
        print(f"bf16 parity (|ROUGE difference| <= 0.01 on every metric, each paired CI including 0): "
              f"{'ok' if parity_bf16 else 'NOT MET'}")

    print(f"fp32 batched speed-up: {t_course / t_fp32:.2f}x; int8 batched speed-up: {t_course / t_int8:.2f}x")
    if t_bf16 is not None:
        print(f"bf16 batched speed-up: {t_course / t_bf16:.2f}x")
    else:
        print("bf16 batched speed-up: skipped (no fast bf16 on this CPU; see above)")
    # int8 and bf16 count only when they keep ROUGE parity, and only when faster.
    times = {"fp32": t_fp32, **({"int8": t_int8} if parity else {}),
             **({"bf16": t_bf16} if parity_bf16 and t_bf16 is not None else {})}
    mode = min(times, key=times.get)
    best = t_course / times[mode]
    print(f"labkit.generate ({mode}, batches of {args.batch_size}) vs the course's per-example loop")
    print(f"speed-up: {best:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
