#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up, lint, type check, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== set-up ($(date +%T))"
bash scripts/setup.sh
bash scripts/install-chromium.sh   # the HTML report is looked at in headless chromium
# gitlab-ci-local runs the GitLab template in tests/pipeline (npm, pinned, outside the clone)
if gcl=$(bash scripts/install-gitlab-ci-local.sh | tail -n1); then
  export MLOPS_GITLAB_CI_LOCAL=$gcl
elif [[ ${CI:-} == true ]]; then
  echo "test.sh: scripts/install-gitlab-ci-local.sh failed; the pipeline tests must run in CI" >&2
  exit 1
else
  echo "test.sh: no gitlab-ci-local; the pipeline tests will skip" >&2
fi
bash scripts/install-java.sh       # the Spark engine runs local[2] Spark (a JVM)
# dockerd, an OCI registry on 127.0.0.1 and a Python base image for the deploy tests
if bash scripts/services.sh; then
  source "${MLOPS_SERVICES_DIR:-$HOME/.cache/pytest-mlops/services}/env"
elif [[ ${CI:-} == true ]]; then
  echo "test.sh: scripts/services.sh failed; the Docker tests must run in CI" >&2
  exit 1
else
  echo "test.sh: no container engine here; the Docker tests will skip" >&2
fi
VENV=${MLOPS_VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"

echo "== ruff ($(date +%T))"
ruff check pytest_mlops tests benchmarks examples scripts
ruff format --check pytest_mlops tests benchmarks examples scripts
echo "== mypy (strict) ($(date +%T))"
mypy
echo "== mypy over tests ($(date +%T))"
bash scripts/typecheck-tests.sh
echo "== pytest ($(date +%T))"
set +e
python -m pytest -n 2 "$@"
rc=$?
set -e
if [[ ${MLOPS_SKIP_ALIBI:-0} != 1 ]]; then  # the alibi-detect backend, in its own venv (numpy < 2)
  echo "== alibi-detect backend (MLOPS_SKIP_ALIBI=1 skips)"
  alibi_venv=$(bash scripts/setup-alibi.sh | tail -n1)
  MLOPS_ALIBI_TESTS=1 PYTHONPATH="$PWD" "$alibi_venv/bin/python" -m pytest tests/alibi -q -p no:cacheprovider || rc=1
fi
if [[ $rc -eq 5 ]]; then
  echo "test.sh: pytest collected no tests - that is a failure" >&2
  exit 1
fi
exit $rc
