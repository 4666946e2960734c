#!/usr/bin/env bash
# Lint and test in the project's .venv (installs the `test` extra on first use).
#   bash scripts/test.sh                 # ruff check . ; pytest -n 2 --dist loadscope
#   bash scripts/test.sh -m "not slow"   # extra arguments go to pytest (run from the repo root)
set -euo pipefail

HIERBAYES_EXTRAS="test"
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$HIERBAYES_ROOT"
export MPLBACKEND="${MPLBACKEND:-Agg}"

# The report test renders report.html in headless Chromium. Install Debian's package when we can
# (root with apt-get); where we cannot, that one test is skipped and says why.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing chromium for the headless report test" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
        >/dev/null 2>&1 || echo "test.sh: chromium could not be installed; its test will skip" >&2
fi

ruff_status=0
"$HIERBAYES_VENV/bin/ruff" check . || ruff_status=$?

pytest_status=0
# loadscope: a module's fixtures (fits shared by its tests) are computed on one worker, not both
"$HIERBAYES_VENV/bin/python" -m pytest -n 2 --dist loadscope "$@" || pytest_status=$?

if ((ruff_status != 0 && pytest_status == 0)); then
    echo "test.sh: pytest passed but ruff check failed (status $ruff_status)" >&2
    exit "$ruff_status"
fi
exit "$pytest_status"
