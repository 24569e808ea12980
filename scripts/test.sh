#!/usr/bin/env bash
# The whole check: set up .venv with every extra, then lint, type-check and run the test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k hashing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh all
export PATH="$root/.venv/bin:$PATH"
echo "== ruff"; ruff check fastsample tests benchmarks scripts conftest.py
ruff format --check -q fastsample tests benchmarks scripts conftest.py
echo "== mypy"; mypy
# pytest also runs every docstring example in fastsample/ (pyproject.toml: --doctest-modules).
echo "== pytest"; python -m pytest -q "$@"
