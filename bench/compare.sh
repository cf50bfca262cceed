#!/usr/bin/env bash
# Side by side, in one run: this webhook, kube-rs's admission example (optional), and the null
# floor (bench/null-server: the same axum + hyper + rustls stack answering a constant review),
# each under h2load (HTTP/2, -c4 -m32) and wrk (HTTP/1.1, -t2 -c32, and -c4 for latency), over
# keep-alive TLS on 127.0.0.1, alternating servers round by round. Prints every run, the
# medians, the ratios and each server's peak RSS.
#
# Usage: bash bench/compare.sh [rounds, default 3] [seconds per run, default 10]
#   KUBE_RS_ADMISSION_BIN=/path/to/admission_controller  adds kube-rs's example (build it yourself
#   from a kube-rs checkout: `cargo build --release --example admission_controller -p kube-examples`;
#   it serves 127.0.0.1:8443 with admission-controller-tls.{crt,key} from its working directory).
# Needs: h2load (Debian nghttp2-client), wrk, curl, python3, openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECONDS_PER_RUN=${2:-10}
PORT=8443   # kube-rs's example cannot be moved off 8443
for tool in h2load wrk curl openssl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nghttp2-client wrk curl openssl)" >&2; exit 2; }
done

cargo build --release --quiet
cargo build --release --quiet --manifest-path bench/null-server/Cargo.toml
WORK=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), separators=(",", ":")), end="")' \
  tests/fixtures/review-vllm-deployment.json > "$WORK/review.json"
BYTES=$(wc -c < "$WORK/review.json")
cat > "$WORK/post.lua" <<LUA
local f = assert(io.open("$WORK/review.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA

# A self-signed 127.0.0.1/localhost pair for kube-rs's example (the others make their own).
inference_webhook=target/release/inference-webhook
mkdir -p "$WORK/kube-rs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=bench -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$WORK/kube-rs/admission-controller-tls.key" -out "$WORK/kube-rs/admission-controller-tls.crt" 2>/dev/null
cp "$WORK/kube-rs/admission-controller-tls.crt" "$WORK/kube-rs/ca.crt"

SERVERS=(webhook null)
[ -n "${KUBE_RS_ADMISSION_BIN:-}" ] && SERVERS=(webhook kube-rs null)

start() {
  case "$1" in
    webhook) "$inference_webhook" serve --listen "127.0.0.1:$PORT" --metrics-listen 127.0.0.1:0 \
               --ca-out "$WORK/webhook-ca.crt" --log-format json > "$WORK/webhook.log" 2>&1 &
             PID=$!; CA="$WORK/webhook-ca.crt" ;;
    null)    bench/null-server/target/release/null-server "127.0.0.1:$PORT" "$WORK/null-ca.crt" \
               > "$WORK/null.log" 2>&1 &
             PID=$!; CA="$WORK/null-ca.crt" ;;
    kube-rs) (cd "$WORK/kube-rs" && ADMISSION_PRIVATE_IP=127.0.0.1 exec "$KUBE_RS_ADMISSION_BIN") \
               > "$WORK/kube-rs.log" 2>&1 &
             PID=$!; CA="$WORK/kube-rs/ca.crt" ;;
  esac
  for _ in $(seq 1 200); do
    curl -sf -o /dev/null --cacert "$CA" -H 'Content-Type: application/json' \
      --data-binary @"$WORK/review.json" "https://localhost:$PORT/mutate" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$1 did not come up; its log:" >&2; cat "$WORK/$1.log" >&2; exit 1
}

stop() {
  RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
}

h2() {  # HTTP/2: 4 connections, 32 streams each
  h2load -c4 -m32 -t2 -D "$SECONDS_PER_RUN" -d "$WORK/review.json" \
    -H 'Content-Type: application/json' "https://localhost:$PORT/mutate" 2>&1 \
    | awk '/^finished in/ {gsub(",", "", $4); print $4} /requests:/ && /failed/ {for (i=1;i<=NF;i++) if ($(i+1)=="failed,") f=$i} END {if (f>0) print "FAILED " f > "/dev/stderr"}'
}

h1() {  # HTTP/1.1: 2 threads, $1 connections; prints req/s and p99 in ms
  wrk -t2 -c"$1" -d"${SECONDS_PER_RUN}s" --latency -s "$WORK/post.lua" "https://localhost:$PORT/mutate" \
    | awk '/Requests\/sec/ {r=$2} /^ +99%/ {p=$2} /Non-2xx|Socket errors/ {print "ERRORS " $0 > "/dev/stderr"}
           END {if (p ~ /us$/) {sub("us","",p); p=p/1000} else if (p ~ /ms$/) {sub("ms","",p)} else if (p ~ /s$/) {sub("s","",p); p=p*1000}; print r, p}'
}

RESULTS="$WORK/results"
echo "body $BYTES bytes, $ROUNDS rounds of ${SECONDS_PER_RUN}s per run, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  # Rotate the order each round so no server always runs first.
  order=("${SERVERS[@]:round % ${#SERVERS[@]}}" "${SERVERS[@]:0:round % ${#SERVERS[@]}}")
  for server in "${order[@]}"; do
    start "$server"
    h2rate=$(h2)
    read -r h1rate _ <<< "$(h1 32)"
    read -r _ p99 <<< "$(h1 4)"
    stop
    printf 'round %s %-8s h2 %8.0f/s  h1 %8.0f/s  p99@4 %6.3f ms  peak RSS %6.1f MB\n' \
      "$round" "$server" "$h2rate" "$h1rate" "$p99" "$(echo "$RSS_KB / 1024" | bc -l)"
    echo "$server $h2rate $h1rate $p99 $RSS_KB" >> "$RESULTS"
  done
done

python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    s, h2, h1, p99, rss = line.split()
    rows.setdefault(s, []).append((float(h2), float(h1), float(p99), int(rss)))
med = {s: [statistics.median(col) for col in zip(*v)] for s, v in rows.items()}
print("\nmedians:")
for s, (h2, h1, p99, rss) in med.items():
    print(f"  {s:8} h2 {h2:8.0f}/s  h1 {h1:8.0f}/s  p99@4 {p99:.3f} ms  peak RSS {max(r[3] for r in rows[s])/1024:.1f} MB")
w, n = med["webhook"], med["null"]
print(f"webhook / null floor: h2 {w[0]/n[0]:.0%}  h1 {w[1]/n[1]:.0%}")
if "kube-rs" in med:
    k = med["kube-rs"]
    print(f"webhook / kube-rs example: h2 {w[0]/k[0]:.2f}x  h1 {w[1]/k[1]:.2f}x")
PY
