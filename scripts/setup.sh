#!/usr/bin/env bash
# Set up the project on a fresh machine: the virtual environment with the package and its
# development extras. Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${MLOPS_VENV:-.venv}
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.pytest-mlops-installed"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi
# torch first, pinned: the local CPU build. A bare "torch" would pull a multi-GB CUDA build.
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "setup: installing torch (CPU)"
  "$VENV/bin/pip" install -q "torch==${MLOPS_TORCH_VERSION:-2.13.0}" 2>&1 | grep -v '^WARNING: Location' || true
fi
echo "setup: installing pytest-mlops[dev]"
"$VENV/bin/pip" install -q -e ".[dev]" 2>&1 | grep -v '^WARNING: Location' || true
"$VENV/bin/python" -c "import pytest_mlops, sklearn, onnxruntime, torch" \
  || { echo "setup: the environment is incomplete (see pip's output above)" >&2; exit 1; }
echo "$want" > "$stamp"
