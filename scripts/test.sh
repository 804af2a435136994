#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine (system packages, Python env; the Kafka jars are
# fetched by the test session's stack fixture), then run lint, the schema check and the tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/setup-system.sh --browser
venv="$(bash deploy/setup-python.sh)"
export PATH="$venv/bin:$PATH"
echo "== ruff"
ruff check .
echo "== JSON Schema files up to date"
python -m schemas.export --check
echo "== pytest"
python -m pytest "$@"
