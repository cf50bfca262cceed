# The Prometheus Operator and Prometheus, both built from their Go modules, against the e2e API
# server on the real node (e2e/lib/node.sh): the operator runs on the host, Prometheus and its
# config-reloader run as the pod of the StatefulSet the operator makes for a Prometheus object.
#
#   build_prometheus_operator     cmd/operator and cmd/prometheus-config-reloader of
#                                 github.com/prometheus-operator/prometheus-operator at
#                                 $PROMOP_VERSION into $E2E_BIN (its source copied to the cache:
#                                 the module's own replace lines point at nested modules that the
#                                 module zip leaves out, so they are dropped for the published ones)
#   build_prometheus              cmd/prometheus of github.com/prometheus/prometheus at $PROM_VERSION
#                                 into $E2E_BIN: with Kubernetes discovery and no other (tags
#                                 remove_all_sd,enable_kubernetes_sd), the web UI assets not embedded
#                                 (no builtinassets tag: no npm build; the API is served without them)
#   prometheus_images DIR         their OCI archives (image/oci.py): Prometheus named as the
#                                 operator's default for spec.version, the reloader as passed to it
#   start_prometheus_operator     its CRDs created, the operator started (client certificate)
#   start_prometheus NAME         the operator's example RBAC for Prometheus (ServiceAccount
#                                 prometheus in default), a Prometheus object NAME in default
#                                 (replicas 1, every PodMonitor and PrometheusRule in every
#                                 namespace); waits for its pod to be Ready; sets PROM_URL
#
# What differs from a cluster: no kube-proxy here, so the pod cannot reach the API server by the
# `kubernetes` Service's cluster IP. The pod runs with hostNetwork (the API server listens on
# 127.0.0.1 only) and its prometheus container's KUBERNETES_SERVICE_HOST/PORT (which the kubelet
# sets to that cluster IP) are overridden with 127.0.0.1 and the API server's port through the
# Prometheus object's `containers` patch. Everything else is the in-cluster path: the operator's
# generated kubernetes_sd_configs run unchanged, with the pod's service-account token and CA.
# With hostNetwork, Prometheus listens on the host's :9090 and the config-reloader on :8080/:8081.

PROMOP_VERSION=v0.85.0
PROMOP_MODULE=github.com/prometheus-operator/prometheus-operator
PROMOP_SRC="$E2E_CACHE/prometheus-operator-$PROMOP_VERSION"
# Prometheus 3.16.0: the Go module numbers Prometheus 3.MM.P as v0.3MM.P.
PROM_VERSION=v0.316.0
PROM_MODULE=github.com/prometheus/prometheus
PROM_PORTS=(9090 8080 8081)
# The operator's default reloader image is tagged "v" + its version variable, which this build
# leaves empty: the image is named here and passed with --prometheus-config-reloader.
PROM_RELOADER_IMAGE="quay.io/prometheus-operator/prometheus-config-reloader:$PROMOP_VERSION"

# The Prometheus release a module version stands for: v0.316.0 -> 3.16.0.
prom_release() { local v="${PROM_VERSION#v0.}"; echo "${v:0:1}.$((10#${v:1:2})).${v#*.}"; }

build_prometheus_operator() {
  go_env
  if [ ! -f "$PROMOP_SRC/go.mod" ]; then
    local dir
    dir="$(go mod download -json "$PROMOP_MODULE@$PROMOP_VERSION" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
    rm -rf "$PROMOP_SRC.tmp" && cp -r "$dir" "$PROMOP_SRC.tmp" && chmod -R u+w "$PROMOP_SRC.tmp"
    (cd "$PROMOP_SRC.tmp" && go mod edit -dropreplace="$PROMOP_MODULE/pkg/apis/monitoring" -dropreplace="$PROMOP_MODULE/pkg/client")
    mv "$PROMOP_SRC.tmp" "$PROMOP_SRC"
  fi
  if [ ! -x "$E2E_BIN/prometheus-operator" ] || [ "$(cat "$E2E_BIN/.prometheus-operator" 2>/dev/null)" != "$PROMOP_VERSION" ]; then
    (cd "$PROMOP_SRC" && GOFLAGS=-mod=mod go build -trimpath -o "$E2E_BIN/prometheus-operator" \
      -ldflags "-X github.com/prometheus/common/version.Version=${PROMOP_VERSION#v}" ./cmd/operator)
    echo "$PROMOP_VERSION" >"$E2E_BIN/.prometheus-operator"
  fi
  # Static (no cgo): it runs in an image with nothing else in it.
  if [ ! -x "$E2E_BIN/prometheus-config-reloader" ] || [ "$(cat "$E2E_BIN/.prometheus-config-reloader" 2>/dev/null)" != "$PROMOP_VERSION" ]; then
    (cd "$PROMOP_SRC" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$E2E_BIN/prometheus-config-reloader" \
      -ldflags "-X github.com/prometheus/common/version.Version=${PROMOP_VERSION#v}" ./cmd/prometheus-config-reloader)
    echo "$PROMOP_VERSION" >"$E2E_BIN/.prometheus-config-reloader"
  fi
}

build_prometheus() {
  go_env
  if [ ! -x "$E2E_BIN/prometheus" ] || [ "$(cat "$E2E_BIN/.prometheus" 2>/dev/null)" != "$PROM_VERSION" ]; then
    GOBIN="$E2E_BIN" CGO_ENABLED=0 go install -trimpath -tags remove_all_sd,enable_kubernetes_sd \
      -ldflags "-X github.com/prometheus/common/version.Version=$(prom_release)" "$PROM_MODULE/cmd/prometheus@$PROM_VERSION"
    echo "$PROM_VERSION" >"$E2E_BIN/.prometheus"
  fi
}

prometheus_images() { # prometheus_images DIR
  python3 "$E2E_ROOT/../image/oci.py" simple --name "quay.io/prometheus/prometheus:v$(prom_release)" \
    --out "$1/prometheus.oci.tar" --file "$E2E_BIN/prometheus:/bin/prometheus" --entrypoint /bin/prometheus
  python3 "$E2E_ROOT/../image/oci.py" simple --name "$PROM_RELOADER_IMAGE" \
    --out "$1/prometheus-config-reloader.oci.tar" \
    --file "$E2E_BIN/prometheus-config-reloader:/bin/prometheus-config-reloader" --entrypoint /bin/prometheus-config-reloader
}

start_prometheus_operator() {
  local crd
  for crd in "$PROMOP_SRC"/example/prometheus-operator-crd/monitoring.coreos.com_*.yaml; do
    "$KUBECTL" create -f "$crd" >/dev/null 2>&1 || "$KUBECTL" replace -f "$crd" >/dev/null
  done
  wait_for 60 "$KUBECTL" wait --for condition=Established --timeout=5s crd/podmonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com crd/prometheuses.monitoring.coreos.com
  local pki="$E2E_DIR/pki"
  node_bg prometheus-operator "$E2E_BIN/prometheus-operator" --apiserver "$E2E_API" \
    --ca-file "$pki/ca.crt" --cert-file "$pki/admin-client.crt" --key-file "$pki/admin-client.key" \
    --web.listen-address "127.0.0.1:$(free_port)" --log-level info --prometheus-config-reloader "$PROM_RELOADER_IMAGE"
  wait_for 60 grep -q "CRD API endpoints ready\|Starting Prometheus Operator\|starting prometheus controller" "$E2E_LOGS/prometheus-operator.log" \
    || { tail -20 "$E2E_LOGS/prometheus-operator.log"; return 1; }
}

start_prometheus() { # start_prometheus NAME
  local name="$1" port rbac="$PROMOP_SRC/example/rbac/prometheus"
  for port in "${PROM_PORTS[@]}"; do
    ! ss -Hltn "sport = :$port" | grep -q . || { echo "port $port is taken on this host (Prometheus's pod uses hostNetwork)"; return 1; }
  done
  "$KUBECTL" apply -f "$rbac/prometheus-service-account.yaml" -f "$rbac/prometheus-cluster-role.yaml" \
    -f "$rbac/prometheus-cluster-role-binding.yaml" >/dev/null
  "$KUBECTL" apply -f - >/dev/null <<YAML
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata: {name: $name, namespace: default}
spec:
  version: v$(prom_release)
  replicas: 1
  serviceAccountName: prometheus
  hostNetwork: true
  containers:
    - name: prometheus
      env:
        - {name: KUBERNETES_SERVICE_HOST, value: "127.0.0.1"}
        - {name: KUBERNETES_SERVICE_PORT, value: "${E2E_API##*:}"}
  scrapeInterval: 5s
  evaluationInterval: 5s
  podMonitorSelector: {}
  podMonitorNamespaceSelector: {}
  serviceMonitorSelector: {}
  serviceMonitorNamespaceSelector: {}
  ruleSelector: {}
  ruleNamespaceSelector: {}
YAML
  wait_for 60 "$KUBECTL" -n default get statefulset "prometheus-$name" || { tail -20 "$E2E_LOGS/prometheus-operator.log"; return 1; }
  if ! "$KUBECTL" -n default rollout status statefulset "prometheus-$name" --timeout=180s; then
    "$KUBECTL" -n default describe pod "prometheus-$name-0" | tail -30
    "$KUBECTL" -n default logs "prometheus-$name-0" -c prometheus --tail 20 || true
    return 1
  fi
  PROM_URL="http://127.0.0.1:${PROM_PORTS[0]}"
  wait_for 60 curl -fsS "$PROM_URL/-/ready"
}

# prom_query EXPR: the result vector of an instant query, as JSON.
prom_query() { curl -fsS "$PROM_URL/api/v1/query" --data-urlencode "query=$1" | "$E2E_PY" -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["data"]["result"]))'; }
prom_has() { [ "$(prom_query "$1")" != "[]" ]; }
prom_count() { [ "$(prom_query "count($1)" | jq -r '.[0].value[1] // "0"')" = "$2" ]; } # prom_count EXPR N
# The configuration Prometheus runs (the operator's, through the config-reloader), as YAML.
prom_config() { curl -fsS "$PROM_URL/api/v1/status/config" | jq -r .data.yaml; }
prom_config_has() { prom_config | grep -qF -- "$1"; }
