#!/usr/bin/env bash
# Run the hierbayes command line in the project's .venv (created and installed on first use).
#   bash scripts/run.sh                    # = fit models/sleepstudy.toml --out out/sleepstudy
#   bash scripts/run.sh fit my.toml --out out/my   # paths relative to your current directory
set -euo pipefail

HIERBAYES_EXTRAS=""
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if (($# == 0)); then
    # The default paths are relative to the repository root.
    cd "$HIERBAYES_ROOT"
    set -- fit models/sleepstudy.toml --out out/sleepstudy
fi
exec "$HIERBAYES_VENV/bin/hierbayes" "$@"
