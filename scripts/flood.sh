#!/usr/bin/env bash
# Connection flood against the release server on 127.0.0.1: FLOOD_CONNECTIONS (default 5000)
# idle TCP connections (no TLS handshake) opened at once, well past --max-connections (1024 by
# default). Checks that the server keeps answering /healthz and reviews during the flood, and
# reports RSS before, at the peak and after the handshake deadline has closed the idle ones.
# Needs python3 and curl. Exit 1 if a probe fails.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${FLOOD_CONNECTIONS:-5000}
out=${FLOOD_OUT:-target/flood}
mkdir -p "$out"
cargo build --release --quiet
ulimit -n $((n + 1024))
port=$((20000 + RANDOM % 20000))
target/release/inference-webhook serve --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$((port + 1))" \
  --ca-out "$out/ca.crt" --log-level warn > "$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf --cacert "$out/ca.crt" "https://localhost:$port/healthz" >/dev/null && break; sleep 0.1; done
rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status"; }
before=$(rss)
python3 - "$port" "$n" "$out/ca.crt" "$server" <<'PY'
import socket, subprocess, sys, time
port, n, ca, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
socks, refused, peak = [], 0, 0
start = time.time()
for _ in range(n):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        socks.append(s)
    except OSError:
        refused += 1
opened = time.time() - start
peak = max(peak, rss())
# The server stays responsive while flooded.
probe = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                        "--cacert", ca, f"https://localhost:{port}/healthz"], capture_output=True, text=True)
code, took = probe.stdout.split()
# How many of ours did the server close at once (over the limit)?
closed = 0
for s in socks:
    s.setblocking(False)
    try:
        if s.recv(1) == b"":
            closed += 1
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
peak = max(peak, rss())
print(f"flood: {n} connections opened in {opened:.2f}s ({refused} refused at connect); "
      f"{closed} closed by the server at once; /healthz during the flood: {code} in {float(took)*1000:.1f} ms; "
      f"peak RSS {peak:.1f} MB")
for s in socks:
    s.close()
sys.exit(0 if code == "200" else 1)
PY
sleep 6
echo "flood: RSS before $before MB, after the flood closed $(rss) MB"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$out/ca.crt" -H 'content-type: application/json' \
  --data-binary @tests/fixtures/review-vllm-deployment.json "https://localhost:$port/mutate")
echo "flood: review after the flood: $code"
[ "$code" = 200 ]
