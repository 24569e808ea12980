#!/usr/bin/env bash
# The whole check: set up .venv with every extra, then lint, type-check and run the test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k hashing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh all
export PATH="$root/.venv/bin:$PATH"
echo "== ruff"; ruff check fastsample tests benchmarks scripts; ruff format --check -q fastsample tests benchmarks scripts
echo "== mypy"; mypy
echo "== pytest"; python -m pytest -q "$@"
