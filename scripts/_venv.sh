# Sourced by scripts/demo and scripts/test: create or reuse .venv and install edgeconv into it.
# Idempotent: when .venv already holds this pyproject.toml's install of the wanted extras,
# it costs a hash and a file read, not a pip run.
# Usage: ensure_venv EXTRAS   (e.g. "train" or "all,dev")

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

_pick_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3.10 python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] < (3, 14)))'
        then
            echo "$candidate"
            return 0
        fi
    done
    echo "edgeconv needs Python 3.10 to 3.13 (set PYTHON=/path/to/python)" >&2
    return 1
}

ensure_venv() {
    local extras="$1" python stamp wanted
    if [ ! -x "$VENV/bin/python" ]; then
        python="$(_pick_python)"
        echo "creating $VENV with $("$python" --version)" >&2
        "$python" -m venv "$VENV"
    fi
    stamp="$VENV/.edgeconv-installed"
    wanted="$extras $(sha256sum < "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    # A stamp that lists these extras for this pyproject.toml means nothing to install.
    if [ -f "$stamp" ] && grep -qxF "$wanted" "$stamp"; then
        return 0
    fi
    echo "installing edgeconv[$extras] into .venv (first run takes a few minutes)" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -e "$ROOT[$extras]" 2> >(grep -v "^WARNING: Location" >&2)
    echo "$wanted" >> "$stamp"
}
