#!/usr/bin/env bash
# The main job, from a fresh machine: the example project's gates, then its JSON report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${MLOPS_VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
cd examples/credit_scoring

echo "== 1/2 tests: the declared gates and the code-first tests"
python -m pytest -p no:cacheprovider
echo "== 2/2 report"
pytest-mlops report build/mlops-report.json
