# The webhook process down: mutation fails open (failurePolicy: Ignore), so creates still succeed
# (unlabeled) — when the process is gone (connection refused) and when it hangs (SIGSTOP: the API
# server waits timeoutSeconds per entry, then goes on). The enforce validation entry does what
# webhook.validating.failurePolicy says: Ignore lets the create through, Fail rejects it.


timed_create() { # timed_create NS NAME: create a vLLM Deployment, print the seconds it took
  local start=$EPOCHREALTIME
  vllm_deployment "$2" | k -n "$1" create -f - >/dev/null
  "$E2E_PY" -c "print(round($EPOCHREALTIME - $start, 2))"
}

set_validating_failure_policy() {
  "$HELM" upgrade inference-webhook charts/inference-webhook -n "$RELEASE_NS" --reuse-values \
    --set "webhook.validating.failurePolicy=$1" >/dev/null
  expect_eq "enforce validation entry failurePolicy" \
    "$(k get validatingwebhookconfiguration inference-webhook -o jsonpath='{.webhooks[0].failurePolicy}')" "$1"
}

webhook_stopped() {
  local ns=outage before took
  make_ns "$ns" enabled
  before="$(fail_open_count enforce.mutate.inference-webhook.io)"
  stop_webhook
  took="$(timed_create "$ns" refused)"
  echo "  create with the webhook stopped took ${took}s"
  expect_eq "backend label (not mutated)" "$(template_backend "$ns" refused)" ""
  [ "$(fail_open_count enforce.mutate.inference-webhook.io)" -gt "$before" ] || fail "no fail-open call counted"

  # Fail on the enforce validation entry: the create is rejected while the webhook is down.
  set_validating_failure_policy Fail
  local err
  wait_for 30 bash -c '! "$0" -n "$1" create deployment probe --image vllm/vllm-openai:v0.10.1 --dry-run=server' "$KUBECTL" "$ns"
  if vllm_deployment strict | k -n "$ns" create -f - 2>"$E2E_DIR/stderr"; then fail "created although failurePolicy is Fail"; fi
  err="$(cat "$E2E_DIR/stderr")"
  expect_contains "kubectl's error" "$err" 'failed calling webhook "enforce.validate.inference-webhook.io"'
  # warn and audit entries are always Ignore.
  make_ns outage-warn warn
  timed_create outage-warn still-created >/dev/null
  set_validating_failure_policy Ignore
  wait_for 30 bash -c '"$0" -n "$1" create deployment probe --image vllm/vllm-openai:v0.10.1 --dry-run=server' "$KUBECTL" "$ns"
}

webhook_hangs() {
  local ns=outage-hang took timeout
  make_ns "$ns" enabled
  timeout="$(k get mutatingwebhookconfiguration inference-webhook -o jsonpath='{.webhooks[0].timeoutSeconds}')"
  kill -STOP "$E2E_PID_webhook"
  trap "kill -CONT $E2E_PID_webhook" EXIT
  took="$(timed_create "$ns" hung)"
  kill -CONT "$E2E_PID_webhook"
  echo "  create with the webhook hung took ${took}s (timeoutSeconds $timeout per entry: mutate, then validate)"
  expect_eq "backend label (not mutated)" "$(template_backend "$ns" hung)" ""
  "$E2E_PY" -c "import sys; t = $took; sys.exit(0 if $timeout - 1 <= t <= 2 * $timeout + 10 else 1)" \
    || fail "took ${took}s: the API server did not wait for the timeout, or waited far beyond it"
}

scenario "webhook stopped: creates succeed unmutated; validating failurePolicy Fail rejects, Ignore admits" webhook_stopped
start_webhook || true
scenario "webhook started again: the API server calls it" wait_for 30 webhook_in_effect outage
scenario "webhook hung (SIGSTOP): creates succeed after timeoutSeconds, unmutated" webhook_hangs
