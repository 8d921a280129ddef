#!/usr/bin/env bash
# The GPU figures of training throughput (docs/benchmarks.md, "Speed and memory") in one call on a
# rented GPU machine that cannot reach the internet (one H100 or H200).
#
# On this machine first:   bash scripts/prepare_device.sh        (pairs + wheels into .device/)
# Then on the GPU machine: bash benchmarks/gpu_training_check.sh   (the device tool: carry [".device"])
#
# It installs the carried wheels into /tmp/site, then runs benchmarks/train_throughput.py with the
# shipped c2llm-0.5b config on a random model of Qwen2.5-Coder-0.5B's shape (the same arithmetic as the
# real weights; nothing to download): 'now', 'packed' (pack_sequences: true) and the ordering check
# 'unsorted' for $STEPS steps, the slow 'previous' settings for $PREVIOUS_STEPS, then encode throughput,
# then the $EXTRAS: a run again for
# $EXTRA_STEPS steps with one setting changed, each its own config written from the shipped one:
# 'now' with checkpointing (gradient checkpointing on) or workers0 (no loader workers); 'packed' (what a GPU
# trains) with compile (each layer compiled in place with $COMPILE_BACKEND, the first steps compiling),
# cudagraphs (compile with inductor's reduce-overhead mode: CUDA graphs, one recorded per layer function and
# input shape, counted, the packed shapes rounded up to 8 rows x 128 tokens as packed_shape_multiple: auto
# does), cudagraphs-exact (the same with exact shapes) or rounded (no compile, the shapes rounded: what the
# rounding's padding costs); the compile extras and rounded are not run by default. st-code refuses CUDA graphs
# with GradCache (on an H200 with torch 2.11 both cudagraphs extras died of a segmentation fault in GradCache's
# replayed backward); the two extras set ST_CODE_ALLOW_CUDA_GRAPHS_WITH_GRADCACHE=1 to measure them on another
# PyTorch. Every step ends by $DEADLINE seconds after the start (a later one is skipped or
# cut short), so the whole call fits one device command. RUNS and STEPS_FOR (train_throughput's --runs and
# --steps-for) pick the training runs; ENCODE_SECONDS=0 skips encoding; ANATOMY_SECONDS > 0 then times one
# batch's loss under the GPU's cut, packed and without peft's LoRA input cast (step_anatomy.py) in what is left. Logs and JSON go to $OUT (8 files at most: what the device tool brings back).
# CHECK=attention runs only the attention comparison (issue 38): the packed run for $ATTENTION_STEPS steps
# once per attention setting in $ATTENTION (sdpa, varlen: PyTorch's variable-length kernel, flex:
# FlexAttention, eager; "+liger" adds Liger's fused kernels), then benchmarks/attention_comparison.py prints
# them side by side against the first: s/step, samples/s, real tokens/s, MFU, peak memory and how far each
# loss curve strays from the first's. ATTENTION set with the default CHECK adds it after the extras.
# Every setting can be overridden from the environment (the CPU test runs it with a tiny model).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-check}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
MODEL=${MODEL-random:qwen2.5-coder-0.5b}
CONFIG=${CONFIG:-recipes/configs/c2llm-0.5b.yaml}
STEPS=${STEPS:-50}
CHECK=${CHECK:-throughput}
if [[ "$CHECK" == attention ]]; then  # the comparison alone fits one device call
  RUNS=${RUNS-}; ENCODE_SECONDS=${ENCODE_SECONDS:-0}; EXTRAS=${EXTRAS-}
  ATTENTION=${ATTENTION-sdpa,varlen,varlen+liger,flex,sdpa+liger,flex+liger}
elif [[ "$CHECK" != throughput ]]; then echo "CHECK: throughput or attention, got '$CHECK'"; exit 2; fi
ATTENTION=${ATTENTION-}
ATTENTION_STEPS=${ATTENTION_STEPS:-50}
PREVIOUS_STEPS=${PREVIOUS_STEPS:-3}  # the slow settings: a warm-up and 2 timed steps, no profile
RUNS=${RUNS-now,packed,unsorted,previous}
STEPS_FOR=${STEPS_FOR:-}
ANATOMY_SECONDS=${ANATOMY_SECONDS:-0}
ANATOMY_ARGS=${ANATOMY_ARGS:-}  # more step_anatomy.py arguments (later ones win: --shares 1,0.25)
BATCH=${BATCH:-}
PAIRS=${PAIRS:-600}
PAIRS_FILE=${PAIRS_FILE:-.device/pairs.json}
TRAIN_SECONDS=${TRAIN_SECONDS:-450}
ENCODE_SECONDS=${ENCODE_SECONDS:-45}
DEADLINE=${DEADLINE:-570}
EXTRA_STEPS=${EXTRA_STEPS:-12}
COMPILE_BACKEND=${COMPILE_BACKEND:-inductor}  # the compile extra's (the CPU test: eager)
if [[ "${DEVICE:-cuda}" == cuda* ]]; then EXTRAS=${EXTRAS-checkpointing,workers0}; else EXTRAS=${EXTRAS-}; fi
ENCODE_TEXTS=${ENCODE_TEXTS:-1024}
SITE=${SITE:-/tmp/site}
WHEELS=${WHEELS:-.device/wheels}
mkdir -p "$OUT"
# seconds a step may run: its own limit, or what is left before $DEADLINE (at least 1: "timeout 0" never stops)
within() { local left=$((DEADLINE - SECONDS)); (( left < 1 )) && left=1; (( left < $1 )) && echo "$left" || echo "$1"; }
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if compgen -G "$WHEELS/*.whl" > /dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    "$WHEELS"/*.whl || { echo "the carried wheels did not install"; exit 1; }
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
[[ -f "$PAIRS_FILE" ]] || { echo "no $PAIRS_FILE: run 'bash scripts/prepare_device.sh' where st-code is installed, and carry .device"; exit 1; }

{
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  "$PYTHON" - <<'PY'
import importlib.metadata as m
import torch
names = ["torch", "transformers", "sentence-transformers", "peft", "accelerate", "datasets", "pyarrow", "fsspec", "tokenizers"]
print(" ".join(f"{n} {m.version(n)}" for n in names), "| cuda", torch.version.cuda, "| gpu",
      torch.cuda.get_device_name() if torch.cuda.is_available() else None)
PY
} 2>&1 | tee "$OUT/environment.txt"

if [[ "$MODEL" == random:* ]]; then  # written once, read by both benchmarks
  folder="/tmp/st-code-${MODEL#random:}"
  "$PYTHON" -c "import sys; from st_code.testing import save_random_qwen2; save_random_qwen2(sys.argv[1], sys.argv[2])" \
    "$folder" "${MODEL#random:}" > /dev/null 2>&1 || { echo "could not write the random $MODEL model"; exit 1; }
  MODEL="$folder"
fi
MODEL_ARGS=()
[[ -n "$MODEL" ]] && MODEL_ARGS=(--model "$MODEL")
BATCH_ARGS=()
[[ -n "$BATCH" ]] && BATCH_ARGS=(--batch-size "$BATCH")
train_status=0
if [[ -n "$RUNS" ]]; then
  timeout "$(within "$TRAIN_SECONDS")" "$PYTHON" benchmarks/train_throughput.py --device "$DEVICE" "${MODEL_ARGS[@]}" \
    --config "$CONFIG" "${BATCH_ARGS[@]}" --pairs "$PAIRS" --pairs-file "$PAIRS_FILE" --steps "$STEPS" \
    --previous-steps "$PREVIOUS_STEPS" --steps-for "$STEPS_FOR" --rounds 1 --runs "$RUNS" --json "$OUT/train.json" 2>&1 \
    | tee "$OUT/train.log"
  train_status=${PIPESTATUS[0]}
fi

# a config written from the shipped one with settings changed (model: {...} merged into the model's)
changed_config() {
  "$PYTHON" -c "import sys, yaml; c = yaml.safe_load(open(sys.argv[1])); change = yaml.safe_load(sys.argv[2])
c['model'] = {**c.get('model', {}), **change.pop('model', {})}; c.update(change); yaml.safe_dump(c, open(sys.argv[3], 'w'))" \
    "$CONFIG" "$1" "$2"
}
# $3's figures under the name $2 in the JSON file $1 (the device tool brings back 8 files at most)
merge_json() {
  "$PYTHON" -c "import json, pathlib, sys
out = pathlib.Path(sys.argv[1]); merged = json.loads(out.read_text()) if out.exists() else {}
merged[sys.argv[2]] = json.loads(pathlib.Path(sys.argv[3]).read_text()); out.write_text(json.dumps(merged, indent=2))" \
    "$1" "$2" "$3"
}

DTYPE_ARGS=()
[[ "$DEVICE" == cuda* ]] && DTYPE_ARGS=(--dtype bfloat16)
ENCODE_MODEL=(--backbone qwen)
[[ -n "$MODEL" ]] && ENCODE_MODEL=(--model "$MODEL")
encode_status=0
if (( ENCODE_SECONDS > 0 )); then
  timeout "$(within "$ENCODE_SECONDS")" "$PYTHON" benchmarks/encode_throughput.py --device "$DEVICE" "${ENCODE_MODEL[@]}" \
    "${DTYPE_ARGS[@]}" --texts "$ENCODE_TEXTS" --batch-size 64 --repeats 3 --max-seq-length 512 2>&1 | tee "$OUT/encode.log"
  encode_status=${PIPESTATUS[0]}
fi

anatomy_status=0
if (( ANATOMY_SECONDS > 0 )); then
  seconds=$(within "$ANATOMY_SECONDS")
  if (( seconds < 30 )); then echo "step anatomy: skipped, $DEADLINE s reached" | tee "$OUT/anatomy.log"; else
    timeout "$seconds" "$PYTHON" benchmarks/step_anatomy.py --device "$DEVICE" "${MODEL_ARGS[@]}" --config "$CONFIG" \
      "${BATCH_ARGS[@]}" --pairs "$PAIRS" --pairs-file "$PAIRS_FILE" --shares 1 --repeats 2 --no-padding-rule \
      --lora-no-cast --json "$OUT/anatomy.json" $ANATOMY_ARGS 2>&1 | tee "$OUT/anatomy.log"
    anatomy_status=${PIPESTATUS[0]}
  fi
fi

scratch=$(mktemp -d)  # each changed config and its figures before they join $OUT/<kind>.json
# train_throughput.py's $4 run for $5 steps on the shipped config with $3 changed, logged as "$1 $2" into
# $6, its figures kept in $7 under $2; the exit status is the benchmark's (0 when skipped at $DEADLINE)
run_changed() {
  local kind=$1 name=$2 change=$3 run=$4 steps=$5 log=$6 json=$7 seconds status
  seconds=$(within 600)
  if (( seconds < 30 )); then echo "$kind $name: skipped, $DEADLINE s reached" | tee -a "$log"; return 0; fi
  changed_config "$change" "$scratch/$kind-$name.yaml"
  echo "$kind $name ($run with $change), $steps steps, at most $seconds s" | tee -a "$log"
  timeout "$seconds" "$PYTHON" benchmarks/train_throughput.py --device "$DEVICE" "${MODEL_ARGS[@]}" \
    --config "$scratch/$kind-$name.yaml" "${BATCH_ARGS[@]}" --pairs "$PAIRS" --pairs-file "$PAIRS_FILE" \
    --steps "$steps" --rounds 1 --runs "$run" --json "$scratch/$kind-$name.json" 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
  [[ -f "$scratch/$kind-$name.json" ]] && merge_json "$json" "$name" "$scratch/$kind-$name.json"
  return "$status"
}

extras_status=0
rm -f "$OUT/extras.json" "$OUT/extras.log"  # this call's extras only
IFS=, read -ra extras <<< "$EXTRAS"
for extra in "${extras[@]}"; do
  allow_cuda_graphs=0
  case "$extra" in
    checkpointing) change="gradient_checkpointing: true"; run=now ;;
    workers0) change="dataloader_workers: 0"; run=now ;;
    compile) change="{compile: true, compile_backend: $COMPILE_BACKEND}"; run=packed ;;
    cudagraphs) change="{compile: true, compile_backend: inductor, compile_mode: reduce-overhead}"; run=packed
       allow_cuda_graphs=1 ;;
    cudagraphs-exact) change="{compile: true, compile_backend: inductor, compile_mode: reduce-overhead, packed_shape_multiple: null}"
       run=packed; allow_cuda_graphs=1 ;;
    rounded) change="packed_shape_multiple: [8, 128]"; run=packed ;;
    *) echo "unknown extra '$extra' (known: checkpointing, workers0, compile, cudagraphs, cudagraphs-exact, rounded)" \
         | tee -a "$OUT/extras.log"
       extras_status=2; continue ;;
  esac
  ST_CODE_ALLOW_CUDA_GRAPHS_WITH_GRADCACHE=$allow_cuda_graphs run_changed extra "$extra" "$change" "$run" "$EXTRA_STEPS" \
    "$OUT/extras.log" "$OUT/extras.json" || extras_status=$?
done

attention_status=0
if [[ -n "$ATTENTION" ]]; then rm -f "$OUT/attention.json" "$OUT/attention.log"; fi
IFS=, read -ra settings <<< "$ATTENTION"
for setting in "${settings[@]}"; do
  name=${setting%+liger}; liger=false
  [[ "$setting" == *+liger ]] && liger=true
  case "$name" in
    flex) name=flex_attention ;;
    sdpa|varlen|eager) ;;
    *) echo "unknown attention '$setting' (known: sdpa, varlen, flex, eager, each with +liger)" | tee -a "$OUT/attention.log"
       attention_status=2; continue ;;
  esac
  run_changed attention "$setting" "{model: {attn_implementation: $name, liger_kernel: $liger}}" packed \
    "$ATTENTION_STEPS" "$OUT/attention.log" "$OUT/attention.json" || attention_status=$?
done
if [[ -n "$ATTENTION" ]]; then
  "$PYTHON" benchmarks/attention_comparison.py "$OUT/attention.json" --asked "$ATTENTION" 2>&1 | tee -a "$OUT/attention.log"
fi
echo "train exit $train_status, encode exit $encode_status, anatomy exit $anatomy_status, extras exit $extras_status," \
  "attention exit $attention_status"
[[ $train_status -eq 0 && $encode_status -eq 0 && $anatomy_status -eq 0 && $extras_status -eq 0 && $attention_status -eq 0 ]]
