# shellcheck shell=bash
# Sourced (not executed) by scripts/run.sh and scripts/test.sh.
#
#   HIERBAYES_EXTRAS=test source scripts/env.sh
#
# 1. Finds a Python >= 3.12 (PyMC 6 and ArviZ 1.x need it; on 3.11 pip silently installs
#    PyMC 5 / ArviZ 0.x instead): $HIERBAYES_PYTHON, else python3.13 / python3.12 / python3
#    on PATH, else pyenv (3.12.x first, then newer).
# 2. Creates <repo>/.venv with it if missing; recreates it if it is broken or older than 3.12.
# 3. `pip install -e "<repo>[$HIERBAYES_EXTRAS]"` when pyproject.toml is newer than the stamp
#    .venv/.hierbayes-installed-<extras>, so repeated runs are fast.
#
# Afterwards HIERBAYES_ROOT (the repo root), HIERBAYES_VENV and HIERBAYES_VENV_PYTHON are set.
# Works with `set -euo pipefail`; exits 1 with a clear message when no suitable Python exists.

HIERBAYES_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
HIERBAYES_VENV="$HIERBAYES_ROOT/.venv"
HIERBAYES_VENV_PYTHON="$HIERBAYES_VENV/bin/python"
export HIERBAYES_ROOT HIERBAYES_VENV HIERBAYES_VENV_PYTHON

_hb_die() {
    printf '%s\n' "$*" >&2
    exit 1
}

# True if "$1" runs and is Python >= 3.12.
_hb_ok() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1
}

# Prints "X.Y.Z" for a Python that runs; fails (prints nothing) otherwise.
_hb_version() {
    "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null
}

_hb_seen=()   # Pythons that ran but are too old, for the error message.

# Accepts candidate "$1" (an executable path) if it is Python >= 3.12; records it otherwise.
_hb_try() {
    local cand="$1" ver
    if _hb_ok "$cand"; then
        _hb_python="$cand"
        return 0
    fi
    if ver="$(_hb_version "$cand")" && [[ -n "$ver" ]]; then
        _hb_seen+=("$ver ($cand)")
    fi
    return 1
}

# Sets _hb_python to a Python >= 3.12, or exits 1 with a clear message.
_hb_find_python() {
    local name cand pyenv root v
    _hb_python=""

    if [[ -n "${HIERBAYES_PYTHON:-}" ]]; then
        _hb_try "$HIERBAYES_PYTHON" && return 0
        _hb_die "hierbayes: HIERBAYES_PYTHON=$HIERBAYES_PYTHON is not a working Python >= 3.12" \
            "(it reports: $(_hb_version "$HIERBAYES_PYTHON" || echo 'does not run'))."
    fi

    for name in python3.13 python3.12 python3; do
        cand="$(command -v "$name" 2>/dev/null)" || continue
        _hb_try "$cand" && return 0
    done

    pyenv="$(command -v pyenv 2>/dev/null)" || pyenv=""
    if [[ -z "$pyenv" ]]; then
        root="${PYENV_ROOT:-${HOME:+$HOME/.pyenv}}"
        if [[ -n "$root" && -x "$root/bin/pyenv" ]]; then
            pyenv="$root/bin/pyenv"
        fi
    fi
    if [[ -n "$pyenv" ]]; then
        root="$("$pyenv" root 2>/dev/null)" || root=""
        # Plain CPython versions >= 3.12, ordered 3.12.x (newest patch first), then newer minors.
        while IFS= read -r v; do
            [[ -n "$v" ]] || continue
            cand="$(PYENV_VERSION="$v" "$pyenv" which python3 2>/dev/null)" || cand=""
            if [[ -n "$cand" ]] && _hb_try "$cand"; then
                return 0
            fi
            if [[ -n "$root" && -x "$root/versions/$v/bin/python3" ]] \
                && _hb_try "$root/versions/$v/bin/python3"; then
                return 0
            fi
        done < <("$pyenv" versions --bare 2>/dev/null \
            | grep -E '^3\.[0-9]+(\.[0-9]+)?$' \
            | awk -F. '$2 >= 12' \
            | sort -t. -k2,2n -k3,3nr || true)
    fi

    local found="no Python at all"
    if ((${#_hb_seen[@]} > 0)); then
        found="$(printf '%s, ' "${_hb_seen[@]}")"
        found="${found%, }"
    fi
    _hb_die "hierbayes needs Python >= 3.12; found only $found." \
        "Install one (e.g. \`pyenv install 3.12\`) or set HIERBAYES_PYTHON=/path/to/python3.12"
}

_hb_find_python

# --- the virtual environment -------------------------------------------------------------------
if [[ -e "$HIERBAYES_VENV" ]] && ! _hb_ok "$HIERBAYES_VENV_PYTHON"; then
    printf 'hierbayes: %s is broken or older than Python 3.12 (%s); recreating it with %s\n' \
        "$HIERBAYES_VENV" "$(_hb_version "$HIERBAYES_VENV_PYTHON" || echo 'does not run')" \
        "$_hb_python" >&2
    "$_hb_python" -m venv --clear "$HIERBAYES_VENV" \
        || _hb_die "hierbayes: could not recreate $HIERBAYES_VENV with $_hb_python"
    "$HIERBAYES_VENV_PYTHON" -m pip install -q --disable-pip-version-check --upgrade pip \
        || printf 'hierbayes: warning: could not upgrade pip in %s\n' "$HIERBAYES_VENV" >&2
elif [[ ! -e "$HIERBAYES_VENV" ]]; then
    printf 'hierbayes: creating %s with %s (Python %s)\n' \
        "$HIERBAYES_VENV" "$_hb_python" "$(_hb_version "$_hb_python")" >&2
    "$_hb_python" -m venv "$HIERBAYES_VENV" \
        || _hb_die "hierbayes: could not create $HIERBAYES_VENV with $_hb_python"
    "$HIERBAYES_VENV_PYTHON" -m pip install -q --disable-pip-version-check --upgrade pip \
        || printf 'hierbayes: warning: could not upgrade pip in %s\n' "$HIERBAYES_VENV" >&2
fi

# --- install hierbayes (editable) when pyproject.toml changed -----------------------------------
_hb_extras="${HIERBAYES_EXTRAS:-}"
_hb_stamp="${_hb_extras:-base}"
_hb_stamp="$HIERBAYES_VENV/.hierbayes-installed-${_hb_stamp//[^A-Za-z0-9_.-]/_}"
if [[ ! -f "$_hb_stamp" || "$HIERBAYES_ROOT/pyproject.toml" -nt "$_hb_stamp" ]]; then
    _hb_target="$HIERBAYES_ROOT"
    [[ -z "$_hb_extras" ]] || _hb_target="$HIERBAYES_ROOT[$_hb_extras]"
    printf 'hierbayes: installing %s into %s (only when pyproject.toml changes)\n' \
        "${_hb_extras:+[$_hb_extras] }hierbayes" "$HIERBAYES_VENV" >&2
    "$HIERBAYES_VENV_PYTHON" -m pip install -q --disable-pip-version-check --no-input \
        -e "$_hb_target" \
        || _hb_die "hierbayes: pip install -e \"$_hb_target\" failed (see above)"
    touch "$_hb_stamp"
fi

unset -f _hb_die _hb_ok _hb_version _hb_try _hb_find_python
unset _hb_seen _hb_python _hb_extras _hb_stamp _hb_target
