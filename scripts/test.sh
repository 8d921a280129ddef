#!/usr/bin/env bash
# The test command: set up (idempotent) and run the whole suite offline on CPU, slow end-to-end tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True
# both cores: xdist workers, each test module on one worker so module-scoped runs are built once
exec .venv/bin/python -m pytest -q -n 2 --dist loadscope "$@"
