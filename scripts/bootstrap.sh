#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install fastsample into it.
# Usage: scripts/bootstrap.sh [EXTRAS]   e.g. scripts/bootstrap.sh all
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
extras="${1:-}"
venv="$root/.venv"
py="${PYTHON:-python3}"
stamp="$venv/.fastsample-installed${extras:+-$extras}"
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
# Reinstall only when the project definition changed since the last install. Byte-code is
# compiled at install time because some environments set PYTHONDONTWRITEBYTECODE, which would
# otherwise make every process recompile its imports (seconds per CLI call).
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    if [ ! -x "$venv/bin/uv" ]; then
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check uv
    fi
    spec="$root"
    [ -n "$extras" ] && spec="$root[$extras]"
    VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install --quiet --compile-bytecode --python "$venv/bin/python" -e "$spec"
    "$venv/bin/python" -m compileall -q "$root/fastsample" > /dev/null || true
    touch "$stamp"
fi
