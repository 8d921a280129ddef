#!/usr/bin/env bash
# Idempotent set-up for a fresh machine with only Python: a virtualenv in .venv, the CPU torch
# wheel FIRST (a bare torch requirement pulls a multi-GB CUDA build), then st-code with its
# offline and dev extras, at the versions in scripts/constraints.txt (the ones last tested: a new
# release upstream cannot change a rerun; ST_CODE_CONSTRAINTS= installs the newest the ranges allow).
# Re-running is cheap: pip skips what is already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${ST_CODE_TORCH:-torch==2.13.0}
CONSTRAINTS=${ST_CODE_CONSTRAINTS-scripts/constraints.txt}

pip_install() {
  local log
  log=$(mktemp)
  if ! .venv/bin/python -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
    grep -v "is ignored: it is neither" "$log" >&2 || true
    echo "setup: 'pip install $*' failed (log above)" >&2
    exit 1
  fi
  rm -f "$log"
}

[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip_install "$TORCH_SPEC"
pip_install -e ".[dev]" ${CONSTRAINTS:+-c "$CONSTRAINTS"}
.venv/bin/python -c "import st_code, torch; print(f'st-code {st_code.__version__} ready (torch {torch.__version__})')"
