#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up, lint, type check, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-chromium.sh   # the HTML report is looked at in headless chromium
VENV=${MLOPS_VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"

echo "== ruff"
ruff check pytest_mlops tests benchmarks examples
echo "== mypy (strict)"
mypy
echo "== pytest"
set +e
python -m pytest -n 2 "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "test.sh: pytest collected no tests - that is a failure" >&2
  exit 1
fi
exit $rc
