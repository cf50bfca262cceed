# The Prometheus Operator and Prometheus, both built from their Go modules, against the e2e API
# server: the operator generates the configuration, Prometheus runs it on the host.
#
#   build_prometheus_operator     cmd/operator of github.com/prometheus-operator/prometheus-operator
#                                 at $PROMOP_VERSION into $E2E_BIN (its source copied to the cache:
#                                 the module's own replace lines point at nested modules that the
#                                 module zip leaves out, so they are dropped for the published ones)
#   build_prometheus              cmd/prometheus of github.com/prometheus/prometheus at $PROM_VERSION
#                                 into $E2E_BIN: with Kubernetes discovery and no other (tags
#                                 remove_all_sd,enable_kubernetes_sd), the web UI assets not embedded
#                                 (no builtinassets tag: no npm build; the API is served without them)
#   start_prometheus_operator     its CRDs created, the operator started (client certificate)
#   start_prometheus NS NAME      a Prometheus object (all PodMonitors and PrometheusRules in every
#                                 namespace, replicas 0: no pod), then, once the operator has written
#                                 its configuration Secret and rule ConfigMaps, that Prometheus on
#                                 127.0.0.1 with that configuration, re-read every 2 s like the
#                                 config-reloader sidecar would; sets PROM_URL
#
# What is changed in the generated configuration: Kubernetes discovery gets the API server's
# address and a client certificate (in a pod it would use the in-cluster service account), and
# rule_files point where the rule ConfigMaps are written. Scrapes go to the pods' IPs directly.

PROMOP_VERSION=v0.85.0
PROMOP_MODULE=github.com/prometheus-operator/prometheus-operator
PROMOP_SRC="$E2E_CACHE/prometheus-operator-$PROMOP_VERSION"
# Prometheus 3.16.0: the Go module numbers Prometheus 3.MM.P as v0.3MM.P.
PROM_VERSION=v0.316.0
PROM_MODULE=github.com/prometheus/prometheus
PROM_BIN="$E2E_BIN/prometheus"

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
}

# The Prometheus release a module version stands for: v0.316.0 -> 3.16.0.
prom_release() { local v="${PROM_VERSION#v0.}"; echo "${v:0:1}.$((10#${v:1:2})).${v#*.}"; }

build_prometheus() {
  go_env
  if [ ! -x "$PROM_BIN" ] || [ "$(cat "$E2E_BIN/.prometheus" 2>/dev/null)" != "$PROM_VERSION" ]; then
    GOBIN="$E2E_BIN" CGO_ENABLED=0 go install -trimpath -tags remove_all_sd,enable_kubernetes_sd \
      -ldflags "-X github.com/prometheus/common/version.Version=$(prom_release)" "$PROM_MODULE/cmd/prometheus@$PROM_VERSION"
    echo "$PROM_VERSION" >"$E2E_BIN/.prometheus"
  fi
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
    --web.listen-address "127.0.0.1:$(free_port)" --log-level info
  wait_for 60 grep -q "CRD API endpoints ready\|Starting Prometheus Operator\|starting prometheus controller" "$E2E_LOGS/prometheus-operator.log" \
    || { tail -20 "$E2E_LOGS/prometheus-operator.log"; return 1; }
}

# prometheus_config NS NAME DIR: the operator's configuration for Prometheus NAME, made runnable on
# the host, in DIR/prometheus.yml with its rules in DIR/rules/; prints "changed" when it changed.
prometheus_config() {
  local ns="$1" name="$2" dir="$3"
  mkdir -p "$dir/rules.new"
  rm -f "$dir/rules.new"/*
  "$KUBECTL" -n "$ns" get secret "prometheus-$name" -o jsonpath='{.data.prometheus\.yaml\.gz}' | base64 -d | gunzip >"$dir/generated.yaml"
  "$KUBECTL" -n "$ns" get configmap -l "prometheus-name=$name" -o json | "$E2E_PY" -c '
import json, sys
for cm in json.load(sys.stdin)["items"]:
    for key, text in (cm.get("data") or {}).items():
        open(sys.argv[1] + "/" + cm["metadata"]["name"] + "--" + key, "w").write(text)' "$dir/rules.new"
  "$E2E_PY" - "$dir" "$E2E_API" "$E2E_DIR/pki" <<'EOF'
import sys, yaml
dir, api, pki = sys.argv[1:]
# The config-reloader's env substitution (--config-envsubst-file): $(POD_NAME) and $(SHARD) are
# the pod's environment in the StatefulSet the operator would run; here pod 0 of shard 0.
text = open(f"{dir}/generated.yaml").read().replace("$(SHARD)", "0").replace("$(POD_NAME)", f"prometheus-{dir.rsplit('/', 1)[1]}-0")
cfg = yaml.safe_load(text)
for sc in cfg.get("scrape_configs") or []:
    for sd in sc.get("kubernetes_sd_configs") or []:
        assert sd["role"] == "pod", sd
        sd["api_server"] = api
        sd["tls_config"] = {"ca_file": f"{pki}/ca.crt", "cert_file": f"{pki}/admin-client.crt",
                            "key_file": f"{pki}/admin-client.key"}
if cfg.get("rule_files"):
    cfg["rule_files"] = [f"{dir}/rules/*"]
open(f"{dir}/prometheus.yml.new", "w").write(yaml.safe_dump(cfg, sort_keys=False))
EOF
  if ! cmp -s "$dir/prometheus.yml.new" "$dir/prometheus.yml" || ! diff -rq "$dir/rules.new" "$dir/rules" >/dev/null 2>&1; then
    rm -rf "$dir/rules" && mv "$dir/rules.new" "$dir/rules"
    mv "$dir/prometheus.yml.new" "$dir/prometheus.yml"
    echo changed
  fi
}

# The config-reloader's job: re-read the operator's output every 2 s, reload on a change.
prometheus_reloader() { # prometheus_reloader NS NAME DIR
  while sleep 2; do
    if [ "$(prometheus_config "$@" 2>/dev/null)" = changed ]; then
      curl -fsS -X POST "$PROM_URL/-/reload" >/dev/null 2>&1 && echo "$(date +%T) reloaded"
    fi
  done
}

start_prometheus() { # start_prometheus NS NAME
  local ns="$1" name="$2" dir="$E2E_DIR/prometheus"
  "$KUBECTL" create namespace "$ns" --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
  "$KUBECTL" apply -f - >/dev/null <<YAML
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata: {name: $name, namespace: $ns}
spec:
  version: v$(prom_release)
  replicas: 0
  scrapeInterval: 5s
  evaluationInterval: 5s
  podMonitorSelector: {}
  podMonitorNamespaceSelector: {}
  serviceMonitorSelector: {}
  serviceMonitorNamespaceSelector: {}
  ruleSelector: {}
  ruleNamespaceSelector: {}
YAML
  wait_for 60 "$KUBECTL" -n "$ns" get secret "prometheus-$name" || { tail -20 "$E2E_LOGS/prometheus-operator.log"; return 1; }
  mkdir -p "$dir/data"
  prometheus_config "$ns" "$name" "$dir" >/dev/null
  local port
  port="$(free_port)"
  PROM_URL="http://127.0.0.1:$port"
  node_bg prometheus "$PROM_BIN" --config.file "$dir/prometheus.yml" --storage.tsdb.path "$dir/data" \
    --web.listen-address "127.0.0.1:$port" --web.enable-lifecycle
  wait_for 60 curl -fsS "$PROM_URL/-/ready" || { tail -20 "$E2E_LOGS/prometheus.log"; return 1; }
  node_bg prometheus-reloader prometheus_reloader "$ns" "$name" "$dir"
}

# prom_query EXPR: the result vector of an instant query, as JSON.
prom_query() { curl -fsS "$PROM_URL/api/v1/query" --data-urlencode "query=$1" | "$E2E_PY" -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["data"]["result"]))'; }
prom_has() { [ "$(prom_query "$1")" != "[]" ]; }
