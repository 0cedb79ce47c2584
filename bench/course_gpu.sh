#!/usr/bin/env bash
# The GPU check of the course profile at full size: builds the course-shaped stand-in (random weights: shapes
# and memory only), then runs each lab's heavy part with the course's full settings on CUDA in bf16
# (bench/course_gpu.py: lab 1's five strategies on 40 dialogues, lab 2's full fine-tuning and LoRA r=32 on q,v
# at batch 8, lab 3's PPO at batch 16 with 100-400-token rollouts), one fresh process per lab, and prints time
# per step and peak memory per lab beside the course's rule of thumb. Takes about 5 minutes on an H200.
#
#   bash bench/course_gpu.sh            # on a machine with a CUDA GPU, from the project root
#   PYTHON=.venv/bin/python bash bench/course_gpu.sh --device cpu --quick   # check the script itself, no GPU
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
{
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
  t0=$(date +%s); "$PY" -m labkit fixtures --course-shaped "$MODELS" | tail -4; echo "stand-in built in $(( $(date +%s) - t0 )) s"
  for lab in lab1 lab2 lab3; do
    "$PY" bench/course_gpu.py "$lab" --models "$MODELS" --json "$OUTDIR/course_gpu_$lab.json" "${extra[@]}" > "$OUTDIR/$lab.out" 2> "$OUTDIR/$lab.err" \
      || { echo "$lab FAILED:"; tail -15 "$OUTDIR/$lab.err"; }
  done
  "$PY" - "$OUTDIR" <<'PY'
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
    print(f"| lab2 | {r['device']}, {r['dtype']} | full FT {f['seconds_per_step']:.3f} s, LoRA {l['seconds_per_step']:.3f} s "
          f"per step (batch 8) | lab {gb(r['peak_gb'])}; in a step: full {gb(f['peak_step_gb'])}, LoRA {gb(l['peak_step_gb'])} "
          f"| {r['rule_of_thumb']} |")
r = load("lab3")
if r:
    print(f"| lab3 | {r['device']}, {r['dtype']} | {r['seconds_per_step']:.2f} s per PPO step (batch {r['batch_size']}, "
          f"{r['new_tokens'][0]}-{r['new_tokens'][1]} new tokens); {r['seconds_worst_case_step']:.2f} s at "
          f"{r['new_tokens'][1]} | {gb(r['peak_gb'])} | {r['rule_of_thumb']} |")
print("(course-shaped stand-in: random weights, shapes and memory only)")
PY
} 2>&1 | tee "$OUTDIR/course_gpu.log"
