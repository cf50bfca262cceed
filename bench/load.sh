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

# Start to ready: from exec to the "listening" line (logged once the certificate is loaded and
# both listeners are bound), checked again with /readyz.
START=$(date +%s%N)
"$BIN" serve --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$METRICS_PORT" \
  --ca-out "$WORK/ca.crt" --log-format json > "$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 5000); do
  grep -q '"listening"' "$WORK/server.log" 2>/dev/null && break
  sleep 0.001
done
READY=$(date +%s%N)
curl -sf --cacert "$WORK/ca.crt" "https://localhost:$PORT/readyz" > /dev/null
echo "start-to-ready: $(( (READY - START) / 1000000 )) ms (includes the 1 ms polling step)"
echo "body: $(wc -c < "$WORK/review.json") bytes"
curl -sf --cacert "$WORK/ca.crt" -H 'Content-Type: application/json' \
  --data-binary @"$WORK/review.json" "https://localhost:$PORT/mutate" | grep -q '"patch"' \
  || { echo "the review got no patch" >&2; exit 1; }

echo "== wrk -t2 -c32 -d$DURATION (throughput)"
wrk -t2 -c32 -d"$DURATION" --latency -s "$WORK/post.lua" "https://127.0.0.1:$PORT/mutate"
echo "== wrk -t1 -c4 -d$DURATION (light load latency)"
wrk -t1 -c4 -d"$DURATION" --latency -s "$WORK/post.lua" "https://127.0.0.1:$PORT/mutate"

echo "peak RSS: $(awk '/VmHWM/ {print $2, $3}' "/proc/$PID/status")"
curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | grep -E '^inference_webhook_(reviews_total|review_errors_total)' || true
kill -TERM "$PID"
wait "$PID" && echo "server exited 0 after SIGTERM"
