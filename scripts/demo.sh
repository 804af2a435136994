#!/usr/bin/env bash
# Set up and run the demo: simulate a province's year of dossiers and score it through the core.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="$(bash deploy/setup-python.sh)"
export PATH="$venv/bin:$PATH"
out="${CHISO766_DEMO_DIR:-out}"
mkdir -p "$out"
dossiers="${DOSSIERS:-50000}"
chiso766 simulate --seed 766 --dossiers "$dossiers" --out "$out/history.jsonl.gz"
chiso766 score "$out/history.jsonl.gz" --period quarter:2026-Q3
chiso766 score "$out/history.jsonl.gz" --period month:2026-10 --json > "$out/scores-2026-10.json"
echo "JSON report: $out/scores-2026-10.json"
