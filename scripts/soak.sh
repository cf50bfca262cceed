#!/usr/bin/env bash
# Soak: drive the release server on 127.0.0.1 with the ~5 KB vLLM review at a moderate, paced
# rate until at least SOAK_REVIEWS reviews are answered, sampling its RSS into a CSV.
#   SOAK_REVIEWS (default 1000000)  SOAK_CONNECTIONS (8)  SOAK_DELAY_MS (2: per request, per
#   connection)  SOAK_SAMPLE_S (5)  SOAK_OUT (target/soak)
# Needs wrk (Debian: apt-get install wrk), python3 and curl. Prints a summary; exit 1 on errors.
set -euo pipefail
cd "$(dirname "$0")/.."
reviews=${SOAK_REVIEWS:-1000000}
connections=${SOAK_CONNECTIONS:-8}
delay_ms=${SOAK_DELAY_MS:-2}
sample_s=${SOAK_SAMPLE_S:-5}
out=${SOAK_OUT:-target/soak}
mkdir -p "$out"
command -v wrk >/dev/null || { echo "soak: wrk is not installed (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet
bin=target/release/inference-webhook

# The compact fixture: the vLLM Deployment review the benchmarks use.
python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1])), open(sys.argv[2], "w"), separators=(",", ":"))' \
  tests/fixtures/review-vllm-deployment.json "$out/review.json"
echo "soak: review body $(wc -c < "$out/review.json") bytes"

port=$((20000 + RANDOM % 20000)); metrics_port=$((port + 1))
"$bin" serve --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$metrics_port" \
  --ca-out "$out/ca.crt" --log-format json --log-level info > "$out/server.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; kill "${sampler:-}" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 100); do
  curl -sf --cacert "$out/ca.crt" "https://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.1
done

reviews_done() {
  curl -sf "http://127.0.0.1:$metrics_port/metrics" \
    | awk '/^inference_webhook_reviews_total[{ ]/ { s += $NF } END { printf "%d", s }'
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$server/status"; }

echo "elapsed_s,rss_kb,reviews" > "$out/rss.csv"
start=$(date +%s)
( while kill -0 "$server" 2>/dev/null; do
    echo "$(( $(date +%s) - start )),$(rss_kb),$(reviews_done)" >> "$out/rss.csv"
    sleep "$sample_s"
  done ) &
sampler=$!

# Duration from the paced rate, plus 15% so that the count is reached.
rate=$(( connections * 1000 / (delay_ms + 1) ))
seconds=$(( reviews * 115 / 100 / rate + 1 ))
echo "soak: ~$rate reviews/s on $connections connections for ${seconds}s"
SOAK_BODY="$out/review.json" SOAK_DELAY_MS="$delay_ms" \
  wrk -t1 -c"$connections" -d"${seconds}s" --timeout 5s --latency -s scripts/soak.lua \
  "https://127.0.0.1:$port/mutate" | tee "$out/wrk.txt"
sleep "$sample_s"
kill "$sampler" 2>/dev/null || true
echo "$(( $(date +%s) - start )),$(rss_kb),$(reviews_done)" >> "$out/rss.csv"

done_count=$(reviews_done)
errors=$(curl -sf "http://127.0.0.1:$metrics_port/metrics" \
  | awk '/^inference_webhook_(review_)?errors_total[{ ]/ { s += $NF } END { printf "%d", s }')
non2xx=$(awk '/Non-2xx/ { print $NF }' "$out/wrk.txt"); non2xx=${non2xx:-0}
socket_errors=$(awk '/Socket errors/ { print }' "$out/wrk.txt")
awk -F, -v done="$done_count" -v errors="$errors" -v non2xx="$non2xx" -v sock="$socket_errors" '
  NR == 2 { first = $2 } NR > 1 { if ($2 > peak) peak = $2; last = $2; n++ }
  END {
    printf "soak: %d reviews answered; non-2xx %d; server-counted errors %d; %s\n", done, non2xx, errors, (sock == "" ? "no socket errors" : sock)
    printf "soak: RSS start %.1f MB, peak %.1f MB, end %.1f MB over %d samples (%s)\n", first/1024, peak/1024, last/1024, n, FILENAME
  }' "$out/rss.csv"
[ "$done_count" -ge "$reviews" ] && [ "$non2xx" = 0 ] && [ -z "$socket_errors" ] && [ "${errors:-0}" = 0 ]
