#!/usr/bin/env bash
# Refresh requirements/test.lock, the exact versions of the test environment (every extra),
# from the ranges in pyproject.toml. Versions already in the lock are kept where the ranges
# still allow them (uv prefers an output file's pins); `scripts/lock.sh --upgrade` moves every
# package to its newest allowed release. Then run scripts/test.sh, which installs from it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
uv="$(command -v uv || echo .venv/bin/uv)"
mkdir -p requirements
"$uv" pip compile pyproject.toml --all-extras --python-version 3.11 --quiet \
    -o requirements/test.lock "$@"
