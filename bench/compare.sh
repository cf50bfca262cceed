#!/usr/bin/env bash
# Issue #14 ("speed close to the floor"), measured in one run on one machine.
#
# What: three servers answer the same request, the minified vLLM Deployment review of
# tests/fixtures (POST /mutate, keep-alive TLS on 127.0.0.1:8443), one at a time, in an order
# that rotates round by round:
#   webhook  this server (target/release/inference-webhook serve, self-signed default);
#   kube-rs  kube-rs's examples/admission_controller.rs, as shipped (optional, see below);
#   null     bench/null-server: the webhook's own stack (axum, hyper-util auto, rustls/ring,
#            mimalloc) answering one constant AdmissionReview: the floor.
# Each server, each round: h2load -c4 -m32 (HTTP/2 throughput), wrk -t2 -c32 (HTTP/1.1
# throughput), wrk -t1 -c4 (HTTP/1.1 p99 at 4 connections, closed loop), h2load --h1 -c4 --rps
# (p99 at 4 connections at a fixed 10,000 requests/s, PACED_RPS), then its peak RSS (VmHWM,
# in MiB). During the two throughput runs the server's CPU time (user + system, /proc/PID/stat)
# is read too: CPU per request does not depend on how much of the cores the load tools take, and
# the summary turns the null floor's into the budget a server has per review for a floor ratio.
# Every server's answer is checked first and last (HTTP/1.1 and HTTP/2: status 200, an
# admission.k8s.io/v1 AdmissionReview whose response.uid is the request's, a decodable JSONPatch
# if any) and every load run must end with no failed, errored, timed-out or non-2xx request:
# otherwise the script stops with the tool's output and exits 1.
# The summary prints the medians, then each goal of the issue with its value and pass/FAIL.
# Goals not met do not change the exit status (0); errors do (1).
#
# Usage: bash bench/compare.sh [rounds, default 3] [seconds per run, default 10]
#   KUBE_RS_ADMISSION_BIN=/path/to/admission_controller   adds kube-rs's example. Build it
#     yourself from a checkout of https://github.com/kube-rs/kube (this repository keeps no
#     copy of it and no recipe that fetches it):
#       cargo build --release --example admission_controller -p kube-examples
#     and pass target/release/examples/admission_controller. It reads
#     admission-controller-tls.{crt,key} from its working directory and binds
#     $ADMISSION_PRIVATE_IP:8443 (hence the fixed port); this script makes a throwaway
#     certificate, runs it in a scratch directory with ADMISSION_PRIVATE_IP=127.0.0.1, and
#     unsets RUST_LOG so it logs at its own default.
#   WITH_APISERVER=1   also runs e2e/bench (creates through a real kube-apiserver, no webhook,
#     the null webhook and this one, 3 rounds; builds the control plane as e2e/run does) and adds
#     its Deployment p50/p99 to the summary. APISERVER_CREATES=N creates per run (default 1000).
# Needs: h2load (Debian nghttp2-client), wrk, curl, openssl, python3, ss; cargo. With
# WITH_APISERVER=1 also what e2e/run needs (Go, kubectl and helm in the CI cache; e2e/README.md).
# The numbers are only as good as the machine is quiet: the load tools share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-3}
SECONDS_PER_RUN=${2:-10}
PORT=8443 # kube-rs's example cannot be moved off 8443
WEBHOOK_BIN=target/release/inference-webhook
NULL_BIN=bench/null-server/target/release/null-server
WORK=$(mktemp -d)
PID=

cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

die() { echo "compare.sh: $*" >&2; exit 1; }

need_tools() {
  local tool
  for tool in h2load wrk curl openssl python3 ss cargo; do
    command -v "$tool" >/dev/null ||
      { echo "missing $tool (apt-get install nghttp2-client wrk curl openssl python3 iproute2)" >&2; exit 2; }
  done
  if [ -n "${KUBE_RS_ADMISSION_BIN:-}" ] && [ ! -x "$KUBE_RS_ADMISSION_BIN" ]; then
    echo "KUBE_RS_ADMISSION_BIN=$KUBE_RS_ADMISSION_BIN is not an executable file" >&2; exit 2
  fi
}

build() {
  cargo build --release --locked --quiet
  cargo build --release --locked --quiet --manifest-path bench/null-server/Cargo.toml
}

# The request body (minified fixture), its uid, and wrk's script that POSTs it.
prepare_request() {
  python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), separators=(",", ":")), end="")' \
    tests/fixtures/review-vllm-deployment.json >"$WORK/review.json"
  REQUEST_UID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["request"]["uid"])' "$WORK/review.json")
  cat >"$WORK/post.lua" <<LUA
local f = assert(io.open("$WORK/review.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA
}

# A self-signed localhost/127.0.0.1 pair for kube-rs's example (the others make their own).
kube_rs_certs() {
  mkdir -p "$WORK/kube-rs"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=bench -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$WORK/kube-rs/admission-controller-tls.key" \
    -out "$WORK/kube-rs/admission-controller-tls.crt" 2>/dev/null
}

# The server's CPU time so far, in clock ticks (user + system).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }

# cpu_us_per_request TICKS_BEFORE REQUESTS: microseconds of server CPU per request since then.
cpu_us_per_request() {
  awk -v t0="$1" -v t1="$(cpu_ticks)" -v n="$2" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { if (n > 0) printf "%.1f", (t1 - t0) / hz * 1e6 / n; else print 0 }'
}

port_in_use() { [ -n "$(ss -Htln "( sport = :$PORT )")" ]; }

# start SERVER: launch it on 127.0.0.1:$PORT, wait until it answers; sets PID and CA.
start() {
  local server=$1 _
  for _ in $(seq 1 100); do port_in_use || break; sleep 0.1; done
  port_in_use && die "127.0.0.1:$PORT is taken by another process: $(ss -Htlnp "( sport = :$PORT )")"
  case "$server" in
    webhook)
      "$WEBHOOK_BIN" serve --listen "127.0.0.1:$PORT" --metrics-listen 127.0.0.1:0 \
        --ca-out "$WORK/webhook-ca.crt" --log-format json >"$WORK/webhook.log" 2>&1 &
      CA="$WORK/webhook-ca.crt" ;;
    null)
      "$NULL_BIN" "127.0.0.1:$PORT" "$WORK/null-ca.crt" "$REQUEST_UID" >"$WORK/null.log" 2>&1 &
      CA="$WORK/null-ca.crt" ;;
    kube-rs)
      (cd "$WORK/kube-rs" && ADMISSION_PRIVATE_IP=127.0.0.1 exec env -u RUST_LOG "$KUBE_RS_ADMISSION_BIN") \
        >"$WORK/kube-rs.log" 2>&1 &
      CA="$WORK/kube-rs/admission-controller-tls.crt" ;;
  esac
  PID=$!
  for _ in $(seq 1 200); do
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/$server.log" >&2; PID=; die "$server exited at start (log above)"; }
    curl -s -o /dev/null --cacert "$CA" "https://localhost:$PORT/" 2>/dev/null && return 0
    sleep 0.05
  done
  cat "$WORK/$server.log" >&2
  die "$server did not come up (log above)"
}

# stop: reads the peak RSS (RSS_KB) and ends the server.
stop() {
  RSS_KB=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
}

# check_answer SERVER: one review over HTTP/1.1 and one over HTTP/2, each checked in full.
check_answer() {
  local server=$1 proto out status version
  for proto in http1.1 http2; do
    out="$WORK/answer-$server-$proto.json"
    read -r status version < <(curl -sS --"$proto" --cacert "$CA" -o "$out" -w '%{http_code} %{http_version}\n' \
      -H 'Content-Type: application/json' --data-binary @"$WORK/review.json" "https://localhost:$PORT/mutate")
    [ "$status" = 200 ] || { cat "$out" >&2; die "$server answered $status over $proto (body above)"; }
    [ "$proto" = http1.1 ] || [ "$version" = 2 ] || die "$server did not negotiate HTTP/2 (got $version)"
    python3 - "$WORK/review.json" "$out" >"$WORK/verdict-$server" <<'PY' ||
import base64, json, sys
request = json.load(open(sys.argv[1]))["request"]
review = json.load(open(sys.argv[2]))
assert review.get("apiVersion") == "admission.k8s.io/v1", f"apiVersion {review.get('apiVersion')!r}"
assert review.get("kind") == "AdmissionReview", f"kind {review.get('kind')!r}"
response = review["response"]
assert response.get("uid") == request["uid"], f"response.uid {response.get('uid')!r} is not the request's"
assert isinstance(response.get("allowed"), bool), "response.allowed is not a boolean"
patch = response.get("patch")
if patch is not None:
    assert response.get("patchType") == "JSONPatch", f"patchType {response.get('patchType')!r}"
    # Go's encoding/json (the API server's) reads a []byte from base64 or from an array of bytes
    # (kube-rs's AdmissionResponse sends the latter).
    form = "base64" if isinstance(patch, str) else "byte array"
    ops = json.loads(base64.b64decode(patch, validate=True) if isinstance(patch, str) else bytes(patch))
    assert isinstance(ops, list) and all("op" in op and "path" in op for op in ops), "patch is not a JSONPatch"
print(f"allowed={str(response['allowed']).lower()}, "
      + (f"JSONPatch of {len(ops)} ops as {form}" if patch is not None else "no patch"))
PY
      { cat "$out" >&2; echo >&2; die "$server's answer over $proto is not a valid AdmissionReview (body above)"; }
  done
}

# h2: HTTP/2, 4 connections x 32 streams; sets H2_RATE (req/s) and H2_CPU (server CPU per
# request, µs). Fails on any bad request.
h2() {
  local out="$WORK/h2load.txt" ticks ok
  ticks=$(cpu_ticks)
  h2load -c4 -m32 -t2 -D "$SECONDS_PER_RUN" -d "$WORK/review.json" \
    -H 'Content-Type: application/json' "https://127.0.0.1:$PORT/mutate" >"$out" 2>&1 || true
  # requests: T total, S started, D done, OK succeeded, F failed, E errored, TO timeout
  # status codes: A 2xx, B 3xx, C 4xx, D 5xx
  read -r H2_RATE ok bad < <(awk '
    /^finished in/ { gsub(",", "", $4); rate = $4 }
    /^requests:/ { ok = $8; bad += $10 + $12 + $14 }
    /^status codes:/ { bad += $5 + $7 + $9 }
    /^Application protocol:/ { proto = $3 }
    END { if (proto != "h2" || ok == 0 || rate == "") bad = bad + 1; print rate + 0, ok + 0, bad + 0 }' "$out")
  [ "$bad" = 0 ] || { cat "$out" >&2; die "h2load: not every request got a 2xx answer (output above)"; }
  H2_CPU=$(cpu_us_per_request "$ticks" "$ok")
}

# h1 THREADS CONNECTIONS: HTTP/1.1 with wrk; sets H1_RATE (req/s), H1_P99 (ms) and H1_CPU
# (server CPU per request, µs).
h1() {
  local out="$WORK/wrk.txt" ticks n
  ticks=$(cpu_ticks)
  wrk -t"$1" -c"$2" -d"${SECONDS_PER_RUN}s" --latency -s "$WORK/post.lua" \
    "https://127.0.0.1:$PORT/mutate" >"$out" 2>&1 || true
  read -r H1_RATE H1_P99 n bad < <(awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return -1 }
    / requests in / { n = $1 }
    /^Requests\/sec:/ { rate = $2 }
    /^ +99%/ { p99 = ms($2) }
    /^ +Non-2xx or 3xx responses:/ { bad += $NF }
    /^ +Socket errors:/ { gsub(",", ""); bad += $4 + $6 + $8 + $10 }
    END { if (n == 0 || rate == "" || p99 == "") bad = bad + 1; print rate + 0, p99 + 0, n + 0, bad + 0 }' "$out")
  [ "$bad" = 0 ] || { cat "$out" >&2; die "wrk: socket errors or non-2xx answers (output above)"; }
  H1_CPU=$(cpu_us_per_request "$ticks" "$n")
}

# paced: HTTP/1.1 at a fixed rate, 4 connections x PACED_RPS/4 requests a second (h2load --rps,
# default 10,000/s in all): the latency of a server that keeps up, without the closed loop of
# wrk (a faster server gets more requests, and on shared cores its tail then measures the
# scheduler). Sets PACED_P99 (ms) from h2load's per-request log.
paced() {
  local out="$WORK/paced.txt" log="$WORK/paced.log" rps=${PACED_RPS:-10000}
  rm -f "$log"
  h2load --h1 -c4 -t1 --rps=$((rps / 4)) -D "$SECONDS_PER_RUN" -d "$WORK/review.json" \
    -H 'Content-Type: application/json' --log-file="$log" \
    "https://127.0.0.1:$PORT/mutate" >"$out" 2>&1 || true
  grep -q "^requests: .* 0 failed, 0 errored, 0 timeout" "$out" ||
    { cat "$out" >&2; die "h2load --rps: not every request succeeded (output above)"; }
  # Each log line: start time, status, duration in microseconds.
  PACED_P99=$(awk '$2 != 200 { bad = 1 } { print $3 }
                   END { if (bad) print "non-200" > "/dev/stderr" }' "$log" | sort -n |
    awk '{ d[NR] = $1 } END { if (NR) printf "%.3f", d[int(NR * 0.99)] / 1000 }')
  [ -n "$PACED_P99" ] || die "h2load --rps: no request timings in $log"
}

# measure SERVER ROUND: one server through the runs; appends a line to $RESULTS.
measure() {
  local server=$1 round=$2 h1_rate h1_cpu
  start "$server"
  check_answer "$server"
  h2
  h1 2 32; h1_rate=$H1_RATE h1_cpu=$H1_CPU
  h1 1 4
  paced
  check_answer "$server"
  stop
  printf 'round %s %-8s h2 %8.0f/s  h1 %8.0f/s  p99@4 %6.3f ms  paced p99 %6.3f ms  peak RSS %5.1f MiB  CPU/request h2 %5.1f µs h1 %5.1f µs  (%s)\n' \
    "$round" "$server" "$H2_RATE" "$h1_rate" "$H1_P99" "$PACED_P99" "$(awk -v k="$RSS_KB" 'BEGIN {print k / 1024}')" \
    "$H2_CPU" "$h1_cpu" "$(cat "$WORK/verdict-$server")"
  echo "$server $H2_RATE $h1_rate $H1_P99 $PACED_P99 $RSS_KB $H2_CPU $h1_cpu" >>"$RESULTS"
}

# The control-plane benchmark (e2e/bench): its Deployment rows (off, null, on); e2e/bench itself
# fails if a run called a webhook it should not have or left a create unlabeled.
apiserver_latency() {
  local log="$WORK/apiserver.log" creates=${APISERVER_CREATES:-1000}
  echo "e2e/bench $creates: control plane + $creates creates per run, off/null/on, 3 rounds"
  bash e2e/bench "$creates" >"$log" 2>&1 || { tail -40 "$log" >&2; die "e2e/bench failed (end of its output above)"; }
  grep '^round=.* row=deployments ' "$log" | sed 's/^/  /'
  awk '/^round=.* row=deployments / { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
         print "apiserver-" v["config"], v["p50_ms"], v["p99_ms"] }' "$log" >>"$APISERVER"
}

summary() {
  python3 - "$RESULTS" "$APISERVER" "$ROUNDS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    s, h2, h1, p99, paced, rss, h2_cpu, h1_cpu = line.split()
    rows.setdefault(s, []).append((float(h2), float(h1), float(p99), float(paced), int(rss), float(h2_cpu), float(h1_cpu)))
med = {s: [statistics.median(col) for col in zip(*v)] for s, v in rows.items()}
peak = {s: max(r[4] for r in v) / 1024 for s, v in rows.items()}
print(f"\nmedians of {sys.argv[3]} rounds (peak RSS: the largest of the rounds):")
for s, (h2, h1, p99, paced, _, h2_cpu, h1_cpu) in med.items():
    print(f"  {s:8} h2 {h2:8.0f}/s  h1 {h1:8.0f}/s  p99@4 {p99:.3f} ms  paced p99 {paced:.3f} ms  peak RSS {peak[s]:.1f} MiB"
          f"  CPU/request h2 {h2_cpu:.1f} µs h1 {h1_cpu:.1f} µs")

w, n, k = med["webhook"], med["null"], med.get("kube-rs")
goals = [  # (what, value, shown, goal text, met)
    ("HTTP/2 h2load -c4 -m32: webhook / kube-rs example", k and w[0] / k[0], "{:.2f}x", ">= 2.2x", lambda v: v >= 2.2),
    ("HTTP/2 h2load -c4 -m32: webhook / null floor", w[0] / n[0], "{:.0%}", ">= 85%", lambda v: v >= 0.85),
    ("HTTP/1.1 wrk -t2 -c32: webhook / kube-rs example", k and w[1] / k[1], "{:.2f}x", ">= 2.0x", lambda v: v >= 2.0),
    ("HTTP/1.1 wrk -t2 -c32: webhook / null floor", w[1] / n[1], "{:.0%}", ">= 55%", lambda v: v >= 0.55),
    ("p99 at 4 connections (wrk -t1 -c4), webhook", w[2], "{:.3f} ms", "<= 1 ms", lambda v: v <= 1.0),
    ("p99 at 4 connections, paced (h2load --rps), webhook", w[3], "{:.3f} ms", "<= 1 ms", lambda v: v <= 1.0),
    ("peak RSS, webhook", peak["webhook"], "{:.1f} MiB", "<= 16 MiB", lambda v: v <= 16.0),
]
print("\ngoals (issue #14):")
met = measured = 0
for what, value, shown, goal, ok in goals:
    if value is None:
        print(f"  {what:50} {'n/a':>10}  goal {goal:9}  not measured (KUBE_RS_ADMISSION_BIN unset)")
        continue
    measured += 1
    met += ok(value)
    print(f"  {what:50} {shown.format(value):>10}  goal {goal:9}  {'pass' if ok(value) else 'FAIL'}")
print(f"  {met} of {measured} measured goals met" + ("" if measured == len(goals) else f", {len(goals) - measured} not measured"))

# With the cores saturated, throughput goes as 1 / (CPU per request): a server reaches a share
# of the floor's rate only if its CPU per request is at most the floor's divided by that share.
print("\nserver CPU per request, and what a floor ratio allows (the floor's CPU / the ratio):")
for proto, col, share in (("HTTP/2", 5, 0.85), ("HTTP/1.1", 6, 0.55)):
    floor, mine = n[col], w[col]
    print(f"  {proto:8} webhook {mine:5.1f} µs, null floor {floor:5.1f} µs: {share:.0%} of the floor allows"
          f" {floor / share:5.1f} µs, {floor / share - floor:4.1f} µs more than the floor spends")

api = {}
for line in open(sys.argv[2]):
    mode, p50, p99 = line.split()
    api.setdefault(mode, []).append((float(p50), float(p99)))
if api:
    (off50, off99), (null50, null99), (on50, on99) = (
        [statistics.median(c) for c in zip(*api[f"apiserver-{m}"])] for m in ("off", "null", "on"))
    print(f"\nDeployment creates through kube-apiserver (e2e/bench, medians of {len(api['apiserver-on'])} rounds):")
    print(f"  webhook off   p50 {off50:7.2f} ms  p99 {off99:7.2f} ms")
    print(f"  null webhook  p50 {null50:7.2f} ms  p99 {null99:7.2f} ms")
    print(f"  webhook on    p50 {on50:7.2f} ms  p99 {on99:7.2f} ms")
    print(f"  added by the webhook: p50 {on50 - off50:+.2f} ms  p99 {on99 - off99:+.2f} ms;"
          f" by the null one: p50 {null50 - off50:+.2f} ms  p99 {null99 - off99:+.2f} ms")
PY
}

main() {
  need_tools
  build
  prepare_request
  kube_rs_certs
  SERVERS=(webhook null)
  [ -n "${KUBE_RS_ADMISSION_BIN:-}" ] && SERVERS=(webhook kube-rs null)
  RESULTS="$WORK/results" APISERVER="$WORK/apiserver"
  : >"$RESULTS"; : >"$APISERVER"
  echo "body $(wc -c <"$WORK/review.json") bytes, $ROUNDS rounds of ${SECONDS_PER_RUN}s per run, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  local round n=${#SERVERS[@]} server order
  for round in $(seq 1 "$ROUNDS"); do
    order=("${SERVERS[@]:round % n}" "${SERVERS[@]:0:round % n}") # no server always runs first
    for server in "${order[@]}"; do measure "$server" "$round"; done
  done
  echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  [ "${WITH_APISERVER:-0}" = 1 ] && apiserver_latency
  summary
}

main
