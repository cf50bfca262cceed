# The control plane: etcd, kube-apiserver and kube-controller-manager, built from the Go module in
# e2e/ (k8s.io/kubernetes at the version pinned in e2e/go.mod) and run on 127.0.0.1 only.
# Sourced by e2e/run (and by anything else that needs a real API server):
#   build_control_plane          builds the binaries into $E2E_BIN (Go caches under $E2E_GO)
#   start_control_plane DIR      starts all three with state in DIR; exports KUBECONFIG
#                                (E2E_CONTROLLERS: kube-controller-manager's --controllers, default *)
#   stop_control_plane           stops them (also on exit: the caller's trap runs it)
# After start: $KUBECONFIG (admin, system:masters), $E2E_API (https://127.0.0.1:PORT),
# $E2E_AUDIT_LOG (the API server's audit log, JSON lines), $E2E_LOGS (one log per process).

E2E_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
E2E_CACHE="${INFERENCE_WEBHOOK_CI_CACHE:-${HOME:-/root}/.cache/inference-webhook-ci}"
E2E_GO="$E2E_CACHE/go"
E2E_BIN="$E2E_GO/bin"
E2E_PIDS=()

# Go's module and build caches live in the CI cache, so that a second run on a machine is warm.
go_env() {
  export GOMODCACHE="$E2E_GO/mod" GOCACHE="$E2E_GO/build" GOFLAGS=-mod=readonly
}

build_control_plane() {
  go_env
  mkdir -p "$E2E_BIN"
  # The version the binaries report (upstream sets it the same way, by -X at link time).
  local version minor
  version="$(cd "$E2E_ROOT" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
  minor="${version#v1.}"; minor="${minor%%.*}"
  local pkg=k8s.io/component-base/version
  (cd "$E2E_ROOT" && go build -trimpath -o "$E2E_BIN/" \
    -ldflags "-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy \
    ./cmd/etcd ./cmd/injector-webhook ./cmd/bench-creates)
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for SECONDS COMMAND...: retry COMMAND every 0.2 s until it succeeds or SECONDS pass.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "timed out waiting for: $*" >&2; return 1; fi
    sleep 0.2
  done
}

# start_bg NAME COMMAND...: run COMMAND in the background, output in $E2E_LOGS/NAME.log.
start_bg() {
  local name="$1"; shift
  "$@" >"$E2E_LOGS/$name.log" 2>&1 &
  E2E_PIDS+=("$!")
  eval "E2E_PID_${name//-/_}=$!"
}

# The API server's serving CA and certificate (127.0.0.1, localhost), and the service-account key.
control_plane_certs() {
  local dir="$1"
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=e2e-apiserver-ca" -days 2 -out "$dir/ca.crt" 2>/dev/null
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/apiserver.key" 2>/dev/null
  openssl req -new -key "$dir/apiserver.key" -subj "/CN=kube-apiserver" -out "$dir/apiserver.csr" 2>/dev/null
  openssl x509 -req -in "$dir/apiserver.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n') \
    -out "$dir/apiserver.crt" 2>/dev/null
  # A client certificate (system:masters) for programs that take no kubeconfig (the Prometheus
  # Operator: --apiserver, --ca-file, --cert-file, --key-file).
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/admin-client.key" 2>/dev/null
  openssl req -new -key "$dir/admin-client.key" -subj "/O=system:masters/CN=e2e-admin-client" -out "$dir/admin-client.csr" 2>/dev/null
  openssl x509 -req -in "$dir/admin-client.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf 'extendedKeyUsage=clientAuth\n') -out "$dir/admin-client.crt" 2>/dev/null
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
}

# Metadata-level events (which carry the admission webhooks' audit annotations) for the
# workload kinds; nothing else, so the log stays small.
audit_policy() {
  cat <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    resources:
      - group: apps
        resources: [deployments, statefulsets]
      - group: workloads.x-k8s.io
      - group: leaderworkerset.x-k8s.io
      - group: disaggregatedset.x-k8s.io
  - level: None
EOF
}

write_kubeconfig() { # write_kubeconfig FILE SERVER CA TOKEN
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: e2e
    cluster: {server: "$2", certificate-authority: "$3"}
users:
  - name: admin
    user: {token: "$4"}
contexts:
  - name: e2e
    context: {cluster: e2e, user: admin}
current-context: e2e
EOF
}

start_control_plane() {
  local dir="$1"
  rm -rf "$dir" && mkdir -p "$dir/pki" "$dir/logs"
  E2E_LOGS="$dir/logs"
  control_plane_certs "$dir/pki"
  local token etcd_port peer_port api_port
  token="$(openssl rand -hex 16)"
  printf '%s,admin,admin,"system:masters"\n' "$token" >"$dir/pki/tokens.csv"
  audit_policy >"$dir/audit-policy.yaml"
  E2E_AUDIT_LOG="$dir/logs/audit.log"
  etcd_port="$(free_port)"; peer_port="$(free_port)"; api_port="$(free_port)"
  E2E_API="https://127.0.0.1:$api_port"
  export KUBECONFIG="$dir/kubeconfig"
  write_kubeconfig "$KUBECONFIG" "$E2E_API" "$dir/pki/ca.crt" "$token"

  start_bg etcd "$E2E_BIN/etcd" --data-dir "$dir/etcd" \
    --listen-client-url "http://127.0.0.1:$etcd_port" --listen-peer-url "http://127.0.0.1:$peer_port"
  wait_for 60 grep -q "etcd: ready" "$E2E_LOGS/etcd.log" || { tail -20 "$E2E_LOGS/etcd.log"; return 1; }

  start_bg kube-apiserver "$E2E_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --endpoint-reconciler-type none \
    --enable-aggregator-routing=true \
    --tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
    --token-auth-file "$dir/pki/tokens.csv" --client-ca-file "$dir/pki/ca.crt" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$E2E_AUDIT_LOG" --audit-log-mode blocking \
    --profiling=false
  wait_for 120 "$KUBECTL" get --raw /readyz || { tail -30 "$E2E_LOGS/kube-apiserver.log"; return 1; }

  start_bg kube-controller-manager "$E2E_BIN/kube-controller-manager" \
    --kubeconfig "$KUBECONFIG" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port 0 \
    --service-account-private-key-file "$dir/pki/sa.key" --root-ca-file "$dir/pki/ca.crt" \
    --use-service-account-credentials=false --controllers "${E2E_CONTROLLERS:-*}"
  # The service-account controller runs: the default namespace gets its ServiceAccount.
  wait_for 120 "$KUBECTL" -n default get serviceaccount default \
    || { tail -30 "$E2E_LOGS/kube-controller-manager.log"; return 1; }
}

stop_control_plane() {
  local i # last started first: the controller-manager, then the API server, then etcd
  for ((i = ${#E2E_PIDS[@]} - 1; i >= 0; i--)); do
    kill "${E2E_PIDS[i]}" 2>/dev/null || true
    wait "${E2E_PIDS[i]}" 2>/dev/null || true
  done
  E2E_PIDS=()
}
