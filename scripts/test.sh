#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run lint, the schema check and the tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="$(bash deploy/setup-python.sh)"
export PATH="$venv/bin:$PATH"
echo "== ruff"
ruff check .
echo "== JSON Schema files up to date"
python -m schemas.export --check
echo "== pytest"
python -m pytest "$@"
