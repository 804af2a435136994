#!/usr/bin/env bash
# Set up and run the demo on a fresh machine: the local stack (real Kafka + Redis), a live worker,
# a simulated province feeding events, the live leaderboard in the terminal, and the dashboard.
# The worker, the API and the stack stay up at the end so the dashboard keeps updating;
# `bash scripts/demo.sh stop` stops them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${CHISO766_DEMO_DIR:-out}"
pids="$out/demo.pids"
if [ "${1:-}" = "stop" ]; then
  [ -f "$pids" ] && xargs -r kill < "$pids" 2>/dev/null || true
  rm -f "$pids"
  [ -x .venv/bin/chiso766 ] && .venv/bin/chiso766 stack down
  exit 0
fi
bash deploy/setup-system.sh
venv="$(bash deploy/setup-python.sh)"
export PATH="$venv/bin:$PATH"
mkdir -p "$out"
[ -f "$pids" ] && { xargs -r kill < "$pids" 2>/dev/null || true; rm -f "$pids"; }  # a previous demo
dossiers="${DOSSIERS:-20000}"
rate="${RATE:-4000}"
namespace="demo"

echo "== 1. the local stack (Apache Kafka from Maven Central, redis-server)"
eval "$(chiso766 stack up | sed 's/^/export CHISO766_/; s/bootstrap=/BOOTSTRAP=/; s/redis_url=/REDIS_URL=/')"
echo "   Kafka $CHISO766_BOOTSTRAP · Redis $CHISO766_REDIS_URL"

echo "== 2. a simulated province: $dossiers dossiers"
chiso766 simulate --seed 766 --dossiers "$dossiers" --out "$out/history.jsonl.gz"

metrics_port="$(python -c 'from support.stack import free_port; print(free_port())')"
api_port="${API_PORT:-$(python -c 'from support.stack import free_port; print(free_port())')}"
echo "== 3. a live worker (as of = wall clock), metrics on http://127.0.0.1:$metrics_port/metrics"
nohup chiso766 worker --namespace "$namespace" --mode live --tick 2 --metrics-port "$metrics_port" \
  > "$out/worker.log" 2>&1 &
echo $! >> "$pids"
echo "== 4. the API and dashboard on http://127.0.0.1:$api_port/"
CHISO766_API_TOKEN="${CHISO766_API_TOKEN:-$(python -c 'import secrets; print(secrets.token_urlsafe(16))')}" \
  nohup chiso766 api --namespace "$namespace" --port "$api_port" > "$out/api.log" 2>&1 &
echo $! >> "$pids"

echo "== 5. feeding the history at ~$rate events/s; the leaderboard refreshes as scores change"
nohup chiso766 replay "$out/history.jsonl.gz" --namespace "$namespace" --rate "$rate" > "$out/feed.log" 2>&1 &
echo $! >> "$pids"
gateway_port="${GATEWAY_PORT:-$(python -c 'from support.stack import free_port; print(free_port())')}"
sync_dossiers="${SYNC_DOSSIERS:-2000}"
echo "== 5b. a second province speaking the portal's sync protocol: the gateway on http://127.0.0.1:$gateway_port/"
chiso766 simulate --seed 767 --dossiers "$sync_dossiers" --province H16 --format dvcqg --out "$out/sync-calls.jsonl.gz"
export CHISO766_GATEWAY_CREDENTIALS='{"demo-one-stop": "demo-password"}'
nohup chiso766 gateway --namespace "$namespace" --port "$gateway_port" --demo \
  --registry "$out/sync-calls.jsonl.gz" > "$out/gateway.log" 2>&1 &
echo $! >> "$pids"
nohup python scripts/feed_gateway.py "http://127.0.0.1:$gateway_port" "$out/sync-calls.jsonl.gz" \
  > "$out/gateway-feed.log" 2>&1 &
echo $! >> "$pids"
sleep 8
chiso766 leaderboard --period "year:$(date +%Y)" --group "agencies:H15" --namespace "$namespace" --watch \
  --duration "${DURATION:-45}"

echo "== 6. the same scores as JSON (first unit), the alert stream, the monthly notice"
chiso766 scores --period "year:$(date +%Y)" --namespace "$namespace" > "$out/scores.json"
python -c "import json; r=json.load(open('$out/scores.json')); u=r['units'][0]; print('  ', r['as_of'], u['code'], u['name'], u['total'], u['groups'])"
redis-cli -u "$CHISO766_REDIS_URL" xlen "$namespace:alerts" | sed 's/^/   alerts in the stream: /'
chiso766 export --period "month:$(date +%Y-%m)" --unit H15 --format xlsx --out "$out/thong-bao-$(date +%Y-%m).xlsx" \
  --namespace "$namespace" || true
echo
echo "Worker, API and stack keep running (the feed goes on in the background); stop them with: bash scripts/demo.sh stop"
echo "Dashboard (live): http://127.0.0.1:$api_port/"
