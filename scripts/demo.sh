#!/usr/bin/env bash
# Set up and run the demo on a fresh machine: the local stack (real Kafka + Redis), a live worker,
# a simulated province feeding events, and the live leaderboard changing as they arrive.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/setup-system.sh
venv="$(bash deploy/setup-python.sh)"
export PATH="$venv/bin:$PATH"
out="${CHISO766_DEMO_DIR:-out}"
mkdir -p "$out"
dossiers="${DOSSIERS:-20000}"
rate="${RATE:-4000}"
namespace="demo"

echo "== 1. the local stack (Apache Kafka from Maven Central, redis-server)"
eval "$(chiso766 stack up | sed 's/^/export CHISO766_/; s/bootstrap=/BOOTSTRAP=/; s/redis_url=/REDIS_URL=/')"
echo "   Kafka $CHISO766_BOOTSTRAP · Redis $CHISO766_REDIS_URL"

echo "== 2. a simulated province: $dossiers dossiers"
chiso766 simulate --seed 766 --dossiers "$dossiers" --out "$out/history.jsonl.gz"

metrics_port="$(python -c 'from cli.stack import free_port; print(free_port())')"
echo "== 3. a live worker (as of = wall clock), metrics on http://127.0.0.1:$metrics_port/metrics"
chiso766 worker --namespace "$namespace" --mode live --tick 2 --metrics-port "$metrics_port" > "$out/worker.log" 2>&1 &
worker=$!
feeder=""
cleanup() {
  [ -n "$feeder" ] && kill "$feeder" 2>/dev/null || true
  kill "$worker" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== 4. feeding the history at ~$rate events/s; the leaderboard refreshes every 3 s"
chiso766 replay "$out/history.jsonl.gz" --namespace "$namespace" --rate "$rate" > "$out/feed.log" 2>&1 &
feeder=$!
sleep 8
period="month:$(date +%Y-%m)"
[ -n "${PERIOD:-}" ] && period="$PERIOD"
chiso766 scores --period "year:$(date +%Y)" --namespace "$namespace" --table --watch 3 --duration "${DURATION:-60}"

echo "== 5. the same scores as JSON (first unit), and the alert stream"
chiso766 scores --period "year:$(date +%Y)" --namespace "$namespace" > "$out/scores.json"
python -c "import json; r=json.load(open('$out/scores.json')); u=r['units'][0]; print(r['as_of'], u['code'], u['name'], u['total'], u['groups'])"
redis-cli -u "$CHISO766_REDIS_URL" xlen "$namespace:alerts" | sed 's/^/   alerts in the stream: /'
echo "Stack still running for you to explore: chiso766 stack status | chiso766 stack down"
