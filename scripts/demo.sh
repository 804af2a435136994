#!/usr/bin/env bash
# Set up and run the demo on a fresh machine: the local stack (real Kafka + Redis), a live worker,
# a simulated province feeding events, the live leaderboard in the terminal, and the dashboard.
# The worker, the API and the stack stay up at the end so the dashboard keeps updating;
# `bash scripts/demo.sh stop` stops them (and leaves no process behind).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${CHISO766_DEMO_DIR:-out}"
pids="$out/demo.pids"
namespace="demo"

# Stop the processes a demo started: SIGTERM (a worker stops cleanly within ~5 s), SIGKILL whatever is
# still there after 15 s. Only pids that still run a chiso766 command are signalled (a pid may be reused).
stop_started() {
  [ -f "$pids" ] || return 0
  local mine=() pid
  while read -r pid; do
    if [ -n "$pid" ] && grep -qa chiso766 "/proc/$pid/cmdline" 2>/dev/null; then mine+=("$pid"); fi
  done < "$pids"
  if [ ${#mine[@]} -gt 0 ]; then
    kill -TERM "${mine[@]}" 2>/dev/null || true
    for _ in $(seq 1 75); do
      local alive=()
      for pid in "${mine[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
      [ ${#alive[@]} -eq 0 ] && break
      sleep 0.2
    done
    for pid in "${mine[@]}"; do
      if kill -0 "$pid" 2>/dev/null; then
        echo "   pid $pid did not stop within 15 s of SIGTERM: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
  fi
  rm -f "$pids"
}

if [ "${1:-}" = "stop" ]; then
  stop_started
  venv="${CHISO766_VENV:-.venv}"
  if [ -x "$venv/bin/chiso766" ]; then "$venv/bin/chiso766" stack down; fi
  exit 0
fi
bash deploy/setup-system.sh
venv="$(bash deploy/setup-python.sh)"
export PATH="$venv/bin:$PATH"
mkdir -p "$out"
stop_started  # a previous demo's processes
dossiers="${DOSSIERS:-20000}"
rate="${RATE:-4000}"
year="$(date +%Y)"
month="$(date +%Y-%m)"
api_url=""

# Whatever happens from here on, the demo ends with where the dashboard is and what to try next.
closing() {
  local status=$?
  echo
  if [ -n "$api_url" ]; then
    [ $status -eq 0 ] || echo "A step above failed (exit $status); what runs is still up. Logs: $out/*.log"
    echo "Worker, API and stack keep running (the feed goes on in the background)."
    echo "Namespace $namespace is now the current one: every command below reads it without --namespace."
    echo "Try next:"
    echo "  source $venv/bin/activate"
    echo "  chiso766 leaderboard --period year:$year --group agencies:H15"
    echo "  chiso766 scores --period month:$month --table"
    echo "  chiso766 alerts --consumer-group me --from-start --kind overdue"
    echo "  chiso766 export --period month:$month --unit H15 --out $out/notice.pdf"
    echo "  chiso766 digest --recipients FILE --dry-run      (the e-mail digests; see README)"
    echo "Stop everything: bash scripts/demo.sh stop"
    echo "Dashboard (live): $api_url"
  else
    echo "The demo stopped before the dashboard started (exit $status); logs in $out/. Stop: bash scripts/demo.sh stop"
  fi
}
trap closing EXIT

echo "== 1. the local stack (Apache Kafka from Maven Central, redis-server)"
eval "$(chiso766 stack up | sed 's/^/export CHISO766_/; s/bootstrap=/BOOTSTRAP=/; s/redis_url=/REDIS_URL=/')"
echo "   Kafka $CHISO766_BOOTSTRAP · Redis $CHISO766_REDIS_URL"
chiso766 namespace "$namespace"

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
api_url="http://127.0.0.1:$api_port/"

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
# The watch waits for the worker's first scores (a fresh broker takes a while to start a worker).
chiso766 leaderboard --period "year:$year" --group "agencies:H15" --namespace "$namespace" --watch \
  --duration "${DURATION:-45}"

echo "== 6. the same scores as JSON (first unit), the alert stream, the monthly notice"
chiso766 scores --period "year:$year" --namespace "$namespace" > "$out/scores.json"
python -c "import json; r=json.load(open('$out/scores.json')); u=r['units'][0]; print('  ', r['as_of'], u['code'], u['name'], u['total'], u['groups'])"
redis-cli -u "$CHISO766_REDIS_URL" xlen "$namespace:alerts" | sed 's/^/   alerts in the stream: /'
chiso766 export --period "month:$month" --unit H15 --out "$out/thong-bao-$month.pdf" --namespace "$namespace"
chiso766 export --period "month:$month" --unit H15 --out "$out/thong-bao-$month.xlsx" --namespace "$namespace"
