#!/usr/bin/env bash
# Lint and test in the project's .venv (installs the `test` extra on first use).
#   bash scripts/test.sh                 # ruff check . ; pytest -n 2
#   bash scripts/test.sh -m "not slow"   # extra arguments go to pytest (run from the repo root)
set -euo pipefail

HIERBAYES_EXTRAS="test"
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$HIERBAYES_ROOT"
export MPLBACKEND="${MPLBACKEND:-Agg}"

ruff_status=0
"$HIERBAYES_VENV/bin/ruff" check . || ruff_status=$?

pytest_status=0
"$HIERBAYES_VENV/bin/python" -m pytest -n 2 "$@" || pytest_status=$?

if ((ruff_status != 0 && pytest_status == 0)); then
    echo "test.sh: pytest passed but ruff check failed (status $ruff_status)" >&2
    exit "$ruff_status"
fi
exit "$pytest_status"
