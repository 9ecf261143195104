#!/usr/bin/env bash
# The alibi-detect environment for the optional drift backend's tests, kept OUTSIDE the clone.
#
# alibi-detect 0.13 is under the Business Source License 1.1 (production use needs a commercial
# licence from Seldon), pins numpy < 2 and imports torch, transformers and numba, so it cannot live
# in the project's main environment. This script builds a separate venv keyed by a hash of the
# requirements below and prints its path on the last line of stdout. Idempotent: a second run with
# the same requirements reuses the venv. The package itself is not installed there; the tests run
# with PYTHONPATH pointing at the clone.
#
#   VENV=$(bash scripts/setup-alibi.sh | tail -n1)
#   MLOPS_ALIBI_TESTS=1 PYTHONPATH=. "$VENV/bin/python" -m pytest tests/alibi -q
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH=${MLOPS_TORCH_VERSION:-2.13.0}
REQUIREMENTS=(
  "alibi-detect[torch]==0.13.0"
  "numpy<2"
  "pyarrow<26"
  "pandas"
  "scipy"
  "scikit-learn"
  "pytest>=8"
)
export PIP_DISABLE_PIP_VERSION_CHECK=1
key=$(printf '%s\n' "$PYTHON" "torch==$TORCH" "${REQUIREMENTS[@]}" | sha256sum | cut -c1-12)
root=${MLOPS_ALIBI_VENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/pytest-mlops}
venv="$root/venv-alibi-$key"
stamp="$venv/.pytest-mlops-alibi-ready"

if [[ ! -f $stamp ]]; then
  echo "setup-alibi: building $venv (alibi-detect is BSL 1.1: not for production use without a licence)" >&2
  rm -rf "$venv"
  mkdir -p "$root"
  "$PYTHON" -m venv "$venv"
  # torch first, pinned: the CPU build; a bare "torch" would pull a multi-GB CUDA build.
  "$venv/bin/pip" install -q "torch==$TORCH" >&2
  "$venv/bin/pip" install -q "torch==$TORCH" "${REQUIREMENTS[@]}" >&2
  "$venv/bin/python" -c "import alibi_detect, numpy; assert numpy.__version__ < '2'" >&2 \
    || { echo "setup-alibi: the environment is incomplete (see pip's output above)" >&2; exit 1; }
  touch "$stamp"
fi
echo "$venv"
