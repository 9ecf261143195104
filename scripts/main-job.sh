#!/usr/bin/env bash
# The main job, from a fresh machine: the example project's gates, its JSON report, then the
# deploy: package -> staging (smoke test) -> production on the embedded registry.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${MLOPS_VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
cd examples/credit_scoring

echo "== 1/2 tests: the declared gates and the code-first tests"
python -m pytest -p no:cacheprovider
echo "== 2/2 report"
pytest-mlops report build/mlops-report.json --markdown build/mlops-report.md --html build/mlops-report.html
# Deploy on the embedded registry (.mlops/registry here; no Docker): package -> staging -> production.
echo "== deploy 1/3 package: the ONNX model, its lineage and the evidence, content-addressed"
pytest-mlops package --report build/mlops-report.json --output build/bundle
echo "== deploy 2/3 staging: push, serve, smoke-test against the expected predictions"
pytest-mlops push build/bundle --to staging --why "main job"
echo "== deploy 3/3 production: promote on the passing report and smoke test"
pytest-mlops promote --to production --report build/mlops-report.json --why "main job"
pytest-mlops history --limit 6
echo "== monitor: production data vs the stored reference profile (exit 0: no drift)"
pytest-mlops monitor
pytest-mlops report build/monitor-report.json --html build/monitor-report.html
