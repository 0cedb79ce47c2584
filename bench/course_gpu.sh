#!/usr/bin/env bash
# The GPU check of the course profile at full size: builds the course-shaped stand-in (random weights: shapes
# and memory only), then runs each lab's heavy part with the course's full settings on CUDA in bf16
# (bench/course_gpu.py: lab 1's five strategies on 40 dialogues, lab 2's full fine-tuning, LoRA r=32 on q,v and
# prompt tuning with 20 virtual tokens at batch 8, lab 2's QLoRA (NF4, double quantization, bf16 compute, via
# bitsandbytes) beside plain LoRA each alone in memory, lab 3's PPO at batch 16 with 100-400-token rollouts), one
# fresh process per part, and prints time per step and peak memory beside the course's rule of thumb. Takes
# about 5 minutes on an H200. QLoRA needs bitsandbytes (pip install bitsandbytes); without it, or where its 4-bit
# layers do not work on the device, its row says why.
#
#   bash bench/course_gpu.sh            # on a machine with a CUDA GPU, from the project root
#   PYTHON=.venv/bin/python bash bench/course_gpu.sh --device cpu --quick   # check the script itself, no GPU
#
# --quick: tiny sizes on a tiny stand-in (the course's layout and tokenizers, width 32; built once into
# $LABKIT_HOME/course-shaped-tiny unless COURSE_MODELS names a stand-in), every part in one process: seconds, the
# figures mean nothing. Exits non-zero when a part failed.
#
# Needs torch, transformers, peft, tokenizers, safetensors, numpy, tqdm, filelock (no papermill, no datasets).
# Figures go to $OUT (or /tmp/course_gpu) as course_gpu_<lab>.json and course_gpu.log.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUTDIR=${OUT:-/tmp/course_gpu}; mkdir -p "$OUTDIR"
MODELS=${COURSE_MODELS:-/tmp/course-shaped}
DATASET=${DIALOGSUM:-../shared/data/dialogsum/dialogsum.dev.jsonl}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
extra=("$@"); [ -f "$DATASET" ] && extra+=(--dataset "$DATASET") || echo "no $DATASET here: data/dialogsum-mini, dialogues joined to fill 512 tokens"
quick=0; for arg in "$@"; do [ "$arg" = --quick ] && quick=1; done
{
  status=0
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
  if [ "$quick" = 1 ]; then
    models=(); [ -n "${COURSE_MODELS:-}" ] && models=(--models "$COURSE_MODELS")  # else course_gpu.py's tiny one
    "$PY" bench/course_gpu.py all "${models[@]}" --json-dir "$OUTDIR" "${extra[@]}" > "$OUTDIR/quick.out" 2> "$OUTDIR/quick.err" \
      || { status=1; echo "quick run FAILED:"; tail -15 "$OUTDIR/quick.err"; }
  else
    t0=$(date +%s); "$PY" -m labkit fixtures --course-shaped "$MODELS" | tail -4; echo "stand-in built in $(( $(date +%s) - t0 )) s"
    for lab in lab1 lab2 qlora lab3; do
      "$PY" bench/course_gpu.py "$lab" --models "$MODELS" --json "$OUTDIR/course_gpu_$lab.json" "${extra[@]}" > "$OUTDIR/$lab.out" 2> "$OUTDIR/$lab.err" \
        || { status=1; echo "$lab FAILED:"; tail -15 "$OUTDIR/$lab.err"; }
    done
  fi
  "$PY" - "$OUTDIR" <<'PY' || status=1
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def load(lab):
    p = out / f"course_gpu_{lab}.json"
    return json.loads(p.read_text()) if p.is_file() else None
gb = lambda x: f"{x:.2f} GB" if isinstance(x, (int, float)) else "-"
print("\n| lab | device, dtype | time per step | peak memory (max_memory_allocated) | course rule of thumb |")
print("|---|---|---|---|---|")
r = load("lab1")
if r:
    s = r["seconds_per_summary"]
    print(f"| lab1 | {r['device']}, {r['dtype']} | {min(s.values()):.3f}-{max(s.values()):.3f} s per summary "
          f"(5 strategies, batches of 16, 50 new tokens) | {gb(r['peak_gb'])} | {r['rule_of_thumb']} |")
r = load("lab2")
if r:
    f, l = r["full_ft"], r["lora"]
    pt = r["prompt_tuning"]
    print(f"| lab2 | {r['device']}, {r['dtype']} | full FT {f['seconds_per_step']:.3f} s, LoRA {l['seconds_per_step']:.3f} s, "
          f"prompt tuning {pt['seconds_per_step']:.3f} s per step (batch 8) | lab {gb(r['peak_gb'])}; in a step: full "
          f"{gb(f['peak_step_gb'])}, LoRA {gb(l['peak_step_gb'])}, prompt tuning {gb(pt['peak_step_gb'])} | {r['rule_of_thumb']} |")
r = load("qlora")
if r and "qlora" in r:
    l, q = r["lora"], r["qlora"]
    print(f"| lab2 QLoRA | {r['device']}, {r['dtype']} | LoRA {l['seconds_per_step']:.3f} s, QLoRA {q['seconds_per_step']:.3f} s "
          f"per step (batch 8) | LoRA {gb(l['peak_gb'])} (weights {gb(l['weights_gb'])}), QLoRA {gb(q['peak_gb'])} "
          f"(weights {gb(q['weights_gb'])}) | {r['rule_of_thumb']} |")
elif r:
    print(f"| lab2 QLoRA | {r['device']} | skipped: {r['support'].get('skipped')} | - | - |")
r = load("lab3")
if r:
    print(f"| lab3 | {r['device']}, {r['dtype']} | {r['seconds_per_step']:.2f} s per PPO step (batch {r['batch_size']}, "
          f"{r['new_tokens'][0]}-{r['new_tokens'][1]} new tokens); {r['seconds_worst_case_step']:.2f} s at "
          f"{r['new_tokens'][1]} | {gb(r['peak_gb'])} | {r['rule_of_thumb']} |")
print("(course-shaped stand-in: random weights, shapes and memory only)")
PY
  exit "$status"
} 2>&1 | tee "$OUTDIR/course_gpu.log"
