#!/usr/bin/env bash
# Load test of the webhook server over keep-alive TLS with wrk (Debian package `wrk`).
# Sends the ~5 KB vLLM Deployment review of tests/fixtures (minified), which gets a patch, to
# /mutate; reports start-to-ready, throughput and latency at 32 and 4 connections, peak RSS.
# Usage: bash bench/load.sh [duration, default 20s]    (needs wrk, curl, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20s}
PORT=${LOAD_PORT:-18443}
METRICS_PORT=${LOAD_METRICS_PORT:-19090}
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 2; }

cargo build --release --quiet
BIN=target/release/inference-webhook
WORK=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), separators=(",", ":")), end="")' \
  tests/fixtures/review-vllm-deployment.json > "$WORK/review.json"
cat > "$WORK/post.lua" <<LUA
local f = assert(io.open("$WORK/review.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA

# Start to ready: from exec to the "listening" log line (written once the certificate is loaded
# and both listeners are bound; readiness is set just before it), by the log's own timestamp.
# Polling the port from bash is shown too; it includes a fork per attempt.
START=$(date +%s.%N)
"$BIN" serve --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$METRICS_PORT" \
  --ca-out "$WORK/ca.crt" --log-format json --log-level "${LOAD_LOG_LEVEL:-info}" \
  > "$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 100000); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
done
POLLED=$(date +%s.%N)
curl -sf --cacert "$WORK/ca.crt" "https://localhost:$PORT/readyz" > /dev/null
python3 - "$START" "$POLLED" "$WORK/server.log" <<'PY'
import datetime, json, sys
start, polled = float(sys.argv[1]), float(sys.argv[2])
for line in open(sys.argv[3]):
    event = json.loads(line)
    if event.get("message") == "listening":
        at = datetime.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
        print(f"start-to-ready: {(at - start) * 1000:.1f} ms (exec to the 'listening' line)")
print(f"start-to-ready as polled from bash: {(polled - start) * 1000:.0f} ms")
PY
echo "body: $(wc -c < "$WORK/review.json") bytes"
curl -sf --cacert "$WORK/ca.crt" -H 'Content-Type: application/json' \
  --data-binary @"$WORK/review.json" "https://localhost:$PORT/mutate" | grep -q '"patch"' \
  || { echo "the review got no patch" >&2; exit 1; }

# The server's CPU time (user + system, in clock ticks) and its review count: their ratio is the
# cost of one review including TLS, HTTP and logging, which stays meaningful when other
# processes compete for the cores (wall-clock throughput does not).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
reviews() {
  curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
    awk '/^inference_webhook_reviews_total/ {n += $NF} END {print n + 0}'
}
TICK=$(getconf CLK_TCK)
run() {
  local threads=$1 conns=$2 what=$3
  echo "== wrk -t$threads -c$conns -d$DURATION ($what)"
  local t0 r0
  t0=$(cpu_ticks); r0=$(reviews)
  wrk -t"$threads" -c"$conns" -d"$DURATION" --latency -s "$WORK/post.lua" \
    "https://127.0.0.1:$PORT/mutate"
  local t1 r1
  t1=$(cpu_ticks); r1=$(reviews)
  awk -v t=$((t1 - t0)) -v r=$((r1 - r0)) -v hz="$TICK" 'BEGIN {
    printf "server CPU per review: %.1f us (%d reviews)\n", t / hz * 1e6 / r, r }'
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
run 2 32 throughput
run 1 4 "light load latency"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "peak RSS: $(awk '/VmHWM/ {print $2, $3}' "/proc/$PID/status")"
curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | grep -E '^inference_webhook_(reviews_total|review_errors_total)' || true
kill -TERM "$PID"
wait "$PID" && echo "server exited 0 after SIGTERM"
