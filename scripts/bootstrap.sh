#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install fastsample into it.
# Usage: scripts/bootstrap.sh [EXTRAS]   e.g. scripts/bootstrap.sh all
# With `all` (the test environment) every dependency is installed at the exact version pinned
# in requirements/test.lock, so a new release of a dependency cannot change what the tests
# run against; other extras resolve the ranges in pyproject.toml. Refresh the lock with
# scripts/lock.sh after changing dependencies.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
extras="${1:-}"
venv="$root/.venv"
lock="$root/requirements/test.lock"
py="${PYTHON:-python3}"
stamp="$venv/.fastsample-installed${extras:+-$extras}"
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
# Reinstall only when the project definition or the lock changed since the last install.
# Byte-code is compiled at install time because some environments set PYTHONDONTWRITEBYTECODE,
# which would otherwise make every process recompile its imports (seconds per CLI call).
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
    if [ ! -x "$venv/bin/uv" ]; then
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check uv
    fi
    uv=("$venv/bin/uv" pip install --quiet --compile-bytecode --python "$venv/bin/python")
    if [ "$extras" = all ]; then
        VIRTUAL_ENV="$venv" "${uv[@]}" -r "$lock"
        VIRTUAL_ENV="$venv" "${uv[@]}" --no-deps -e "$root"
    else
        spec="$root"
        [ -n "$extras" ] && spec="$root[$extras]"
        VIRTUAL_ENV="$venv" "${uv[@]}" -e "$spec"
    fi
    "$venv/bin/python" -m compileall -q "$root/fastsample" > /dev/null || true
    touch "$stamp"
fi
