# Updates: `kubectl scale` goes to the /scale subresource, which the webhook rules leave out, so an
# unlabeled Deployment gets no new ReplicaSet (no rolling restart); an UPDATE without a template
# change is warned about, not patched; an image bump (a template change) gets the labels.
# Reinvocation: a second mutating webhook, ordered after this one, injects a vLLM container;
# the API server calls inference-webhook again (reinvocationPolicy: IfNeeded) and it labels it.

replicasets() { k -n "$1" get replicasets -o name | sort; }

scale_and_image_bump() {
  local ns=updates err
  make_ns "$ns"
  vllm_deployment vllm | k -n "$ns" create -f -
  wait_for 60 bash -c '[ -n "$("$0" -n "$1" get replicasets -o name)" ]' "$KUBECTL" "$ns"
  local first_rs
  first_rs="$(replicasets "$ns")"
  k label namespace "$ns" inference-monitoring=enabled
  wait_for 30 webhook_in_effect "$ns"

  k -n "$ns" scale deployment vllm --replicas 3
  wait_for 30 bash -c '[ "$("$0" -n "$1" get "$2" -o jsonpath="{.spec.replicas}")" = 3 ]' "$KUBECTL" "$ns" "$first_rs"
  sleep 2 # give the deployment controller time to (wrongly) roll out
  expect_eq "ReplicaSets after kubectl scale" "$(replicasets "$ns")" "$first_rs"
  expect_eq "template backend label after kubectl scale" "$(template_backend "$ns" vllm)" ""

  k -n "$ns" patch deployment vllm --type merge -p '{"spec":{"replicas":2}}' 2>"$E2E_DIR/stderr"
  err="$(cat "$E2E_DIR/stderr")"
  expect_contains "kubectl patch of replicas (UPDATE, template unchanged)" "$err" "Warning: update-not-injected"
  expect_eq "template backend label after the replicas patch" "$(template_backend "$ns" vllm)" ""

  k -n "$ns" set image deployment/vllm vllm=vllm/vllm-openai:v0.10.2
  expect_eq "template backend label after the image bump" "$(template_backend "$ns" vllm)" vllm
  wait_for 60 bash -c '[ "$("$0" -n "$1" get replicasets -o name | wc -l)" -eq 2 ]' "$KUBECTL" "$ns"
  echo "  the image bump made a second ReplicaSet: $(replicasets "$ns" | tr '\n' ' ')"
}

reinvocation() {
  local ns=reinvoke port pid
  port="$(free_port)"
  "$E2E_BIN/injector-webhook" --listen "127.0.0.1:$port" \
    --tls-cert "$WEBHOOK_CERTS/tls/tls.crt" --tls-key "$WEBHOOK_CERTS/tls/tls.key" &
  pid=$!
  trap "kill $pid 2>/dev/null; k delete mutatingwebhookconfiguration zz-injector --ignore-not-found" EXIT
  make_ns "$ns" enabled
  k apply -f - <<YAML
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: zz-injector}
webhooks:
  - name: inject.e2e.inference-webhook.io
    clientConfig: {url: "https://127.0.0.1:$port/inject", caBundle: "$CA_BUNDLE"}
    rules:
      - {apiGroups: [apps], apiVersions: [v1], resources: [deployments], operations: [CREATE], scope: Namespaced}
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: $ns}}
    sideEffects: None
    admissionReviewVersions: [v1]
    failurePolicy: Fail
    reinvocationPolicy: Never
YAML
  # An application Deployment with no engine: the first call of inference-webhook finds nothing.
  probe() {
    k -n "$ns" create deployment app --image nginx:1.27 --dry-run=server -o jsonpath='{.spec.template.spec.containers[*].name}' | grep -q engine
  }
  wait_for 30 probe
  k -n "$ns" create deployment app --image nginx:1.27
  expect_eq "containers" "$(k -n "$ns" get deployment app -o jsonpath='{.spec.template.spec.containers[*].name}')" "nginx engine"
  expect_eq "backend label" "$(template_backend "$ns" app)" vllm
  expect_eq "injected container's port name" "$(k -n "$ns" get deployment app -o jsonpath='{.spec.template.spec.containers[1].ports[0].name}')" http
  local calls
  calls="$(grep -c "\"name\":\"app\".*\"dry_run\":false\|\"dry_run\":false.*\"name\":\"app\"" "$E2E_LOGS/webhook.log" || true)"
  echo "  inference-webhook reviews of the stored create (mutate and validate, reinvocation included): $calls"
  [ "$calls" -ge 3 ] || fail "expected at least 3 reviews (mutate, mutate again, validate), got $calls"
}

scenario "kubectl scale makes no new ReplicaSet; a replicas patch is warned; an image bump gets the labels" scale_and_image_bump
scenario "reinvocation: a second mutating webhook injects vLLM, inference-webhook labels it when called again" reinvocation
