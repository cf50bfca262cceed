# The install paths, for real: `kubectl apply -k` of deploy/base with the url-target component,
# `kubectl apply --dry-run=server` of every document the chart and deploy/ render, and
# `helm install` of the chart with webhook.url pointing at the webhook on the host. The helm
# release stays installed for the scenarios after this file (namespace $RELEASE_NS).

RELEASE_NS=webhook-system
CA_BUNDLE="$(base64 -w0 <"$WEBHOOK_CERTS/ca.crt")"
HELM_URL_VALUES=(--set "webhook.url=$WEBHOOK_URL" --set certificates.mode=existingSecret
  --set certificates.existingSecret.name=inference-webhook-tls --set "certificates.existingSecret.caBundle=$CA_BUNDLE")



# deploy/base + components/url-target, through a kustomization the way a user writes one.
url_overlay() {
  local dir="$E2E_DIR/kustomize-url"
  mkdir -p "$dir"
  printf '%s' "$CA_BUNDLE" >"$dir/caBundle"
  cat >"$dir/kustomization.yaml" <<YAML
resources: [../../../deploy/base]
components: [../../../deploy/components/url-target]
configMapGenerator:
  - name: inference-webhook-url
    literals: [host=127.0.0.1:$WEBHOOK_PORT]
    files: [caBundle=caBundle]
    options:
      disableNameSuffixHash: true
      annotations: {config.kubernetes.io/local-config: "true"}
YAML
  echo "$dir"
}

kustomize_url_install() {
  local dir
  dir="$(url_overlay)"
  k apply -k "$dir"
  expect_eq "mutating entry URL" \
    "$(k get mutatingwebhookconfiguration inference-webhook -o jsonpath='{.webhooks[0].clientConfig.url}')" \
    "$WEBHOOK_URL/mutate/enforce"
  k get -n inference-webhook configmap inference-webhook-policy -o name
  fails_to_find() { ! k -n inference-webhook get "$1" inference-webhook >/dev/null 2>&1; }
  for kind in deployment service poddisruptionbudget; do fails_to_find "$kind" || fail "$kind rendered"; done
  make_ns install-kustomize enabled
  wait_for 30 webhook_in_effect install-kustomize
  echo "  the API server calls the webhook through the kustomize-rendered configuration"
  # Hand over to the chart: the configurations have the same names.
  k delete mutatingwebhookconfiguration,validatingwebhookconfiguration inference-webhook
}

# Every rendered document whose kind this API server serves, applied with --dry-run=server; the
# others (cert-manager, Prometheus Operator) are listed by name.
dry_run_rendered() {
  local out="$E2E_DIR/rendered" file served
  rm -rf "$out" && mkdir -p "$out"
  k create namespace "$RELEASE_NS" --dry-run=client -o yaml | k apply -f - >/dev/null
  for values in charts/inference-webhook/ci/*-values.yaml; do
    "$HELM" template inference-webhook charts/inference-webhook -n "$RELEASE_NS" -f "$values" \
      >"$out/chart-$(basename "$values" -values.yaml).yaml"
  done
  "$HELM" template inference-webhook charts/inference-webhook -n "$RELEASE_NS" "${HELM_URL_VALUES[@]}" >"$out/chart-url.yaml"
  local static=deploy/overlays/static-certs/certs
  [ -f "$static/ca-bundle.crt" ] || { rm -rf "$static"; certs/gen-certs.sh --out "$static" >/dev/null; }
  for dir in deploy/base deploy/overlays/cert-manager deploy/overlays/static-certs deploy/audit-rbac; do
    k kustomize "$dir" >"$out/kustomize-$(basename "$dir").yaml"
  done
  k kustomize "$(url_overlay)" >"$out/kustomize-url.yaml"
  served="$(k api-resources --no-headers | awk '{print $NF}' | sort -u | paste -sd,)"
  for file in "$out"/*.yaml; do
    only_kinds "$served" "$file" >"$file.served"
    "$E2E_PY" - "$served" "$file" <<'PY'
import sys, yaml
served = set(sys.argv[1].split(","))
for d in yaml.safe_load_all(open(sys.argv[2])):
    if isinstance(d, dict) and d.get("kind") not in served:
        print(f"  not served here, skipped: {d['kind']} {d['metadata']['name']} ({sys.argv[2].rsplit('/', 1)[1]})")
PY
    k apply --dry-run=server -f "$file.served" >/dev/null || fail "dry-run of $file"
    echo "  $(grep -c '^kind:' "$file.served") documents of $(basename "$file") accepted by --dry-run=server"
  done
}

helm_install() {
  "$HELM" install inference-webhook charts/inference-webhook -n "$RELEASE_NS" --create-namespace "${HELM_URL_VALUES[@]}"
  expect_eq "validating entry URL" \
    "$(k get validatingwebhookconfiguration inference-webhook -o jsonpath='{.webhooks[0].clientConfig.url}')" \
    "$WEBHOOK_URL/validate/enforce"
  make_ns install-helm enabled
  wait_for 30 webhook_in_effect install-helm
  echo "  the API server calls the webhook through the helm-installed configuration"
}

scenario "kubectl apply -k deploy/base + components/url-target; the API server calls the webhook by URL" kustomize_url_install
scenario "kubectl apply --dry-run=server of every document the chart and deploy/ render" dry_run_rendered
scenario "helm install with webhook.url; the API server calls the webhook by URL" helm_install
