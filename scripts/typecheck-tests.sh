#!/usr/bin/env bash
# mypy over tests/. Test directories are not packages (pytest puts each on sys.path and the helpers
# are imported by bare name), so each directory is checked in a run of its own. Test functions may
# leave their arguments unannotated (pytest fixtures), but their bodies are checked; the package
# itself is checked strictly by `mypy` alone.
set -uo pipefail
cd "$(dirname "$0")/.."
MYPY=${MYPY:-mypy}
rc=0
for dir in tests tests/*/; do
  dir=${dir%/}
  files=("$dir"/*.py)
  [[ -e ${files[0]} ]] || continue
  MYPYPATH="$dir:examples/credit_scoring" "$MYPY" --no-namespace-packages --follow-imports=silent \
    --warn-unused-ignores --allow-untyped-defs --allow-incomplete-defs --allow-untyped-calls \
    --check-untyped-defs "${files[@]}" || rc=1
done
exit $rc
