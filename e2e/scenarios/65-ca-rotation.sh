# Renewal and CA rotation the way certs/README.md tells a user of certificates.mode=existingSecret
# to do them, through the real API server, with creates running all along and the enforce
# validation entry on failurePolicy: Fail (a call that fails TLS rejects the create):
#   certs --renew, the Secret swapped (..data) -> certs --rotate-ca, caBundle (old + new CA) by
#   helm upgrade, then the Secret -> a period later certs --renew, the Secret, then caBundle
#   (new CA only).
# The webhook runs with --max-connection-age 2s, and every step lasts several ages, so the API
# server cannot ride an HTTP/2 connection opened before the step: each step must see connections
# closed at their maximum age (the webhook's connections_closed_total{reason="max_age"}) and the
# creates after them succeed, i.e. new handshakes verified against the caBundle of that moment.

CA_ROT="$E2E_DIR/ca-rotation"     # `certs --out`: the user's files; $CA_ROT/tls is the pod's volume
CA_ROT_AGE=2                      # --max-connection-age, seconds
CA_ROT_HOST=(--host 127.0.0.1 --days 2 --out "$CA_ROT") # the API server calls 127.0.0.1 (webhook.url)

helm_set() { # helm_set KEY=VALUE...: helm upgrade of the release with these values changed
  "$HELM" upgrade inference-webhook charts/inference-webhook -n "$RELEASE_NS" --reuse-values "${@/#/--set=}" >/dev/null
}

max_age_closes() { webhook_metric 'inference_webhook_connections_closed_total{reason="max_age"}'; }

cas_in_bundle() { base64 -d <"$CA_ROT/caBundle" | grep -c 'BEGIN CERTIFICATE'; }
bundle_sum() { sha256sum <"$CA_ROT/caBundle" | cut -c1-16; }

# Let the API server call for three connection ages; connections must have been closed at their
# age meanwhile (so the creates after that ran on new ones).
phase() { # phase WHAT
  local before after
  before="$(max_age_closes)"
  sleep $((3 * CA_ROT_AGE))
  after="$(max_age_closes)"
  [ "$after" -gt "$before" ] || fail "$1: no connection closed at its age ($before -> $after): no new handshake"
  echo "  $1: $((after - before)) connections closed at their age, new ones opened"
}

# "Apply the Secret": the kubelet swaps ..data; wait until the webhook serves the pair, verified
# for 127.0.0.1 against the CAs of ca-bundle.crt.
swap_secret() { # swap_secret WHAT
  local reloads
  reloads="$(webhook_metric inference_webhook_certificate_reloads_total)"
  update_secret_volume "$CA_ROT/tls" "$CA_ROT"
  wait_for 10 reloads_above "$reloads"
  expect_eq "served certificate ($1)" "$(served_serial "$CA_ROT/ca-bundle.crt")" \
    "$(openssl x509 -in "$CA_ROT/tls.crt" -noout -serial)"
  phase "$1"
}

# The user's first CA and leaf (certs --host for a webhook called by URL), its caBundle in the
# release; the webhook restarts on them below.
ca_rotation_setup() {
  rm -rf "$CA_ROT"
  "$WEBHOOK_BIN" certs "${CA_ROT_HOST[@]}"
  openssl verify -CAfile "$CA_ROT/ca.crt" -verify_ip 127.0.0.1 "$CA_ROT/tls.crt"
  update_secret_volume "$CA_ROT/tls" "$CA_ROT"
  helm_set "certificates.existingSecret.caBundle=$(cat "$CA_ROT/caBundle")"
}

ca_rotation() {
  local ns=ca-rotation stop="$E2E_DIR/ca-rotation.stop" before_open before_reloads loop_pid bundle
  make_ns "$ns" enabled
  helm_set webhook.validating.failurePolicy=Fail
  expect_eq "enforce validation entry failurePolicy" \
    "$(k get validatingwebhookconfiguration inference-webhook -o jsonpath='{.webhooks[0].failurePolicy}')" Fail
  wait_for 30 webhook_in_effect "$ns"
  before_open="$(fail_open_count enforce.mutate.inference-webhook.io)"
  before_reloads="$(webhook_metric inference_webhook_certificate_reloads_total)"
  rm -f "$stop"
  create_until "$ns" "$stop" >"$E2E_DIR/ca-rotation.count" &
  loop_pid=$!
  phase "first leaf"

  # Renewal: a new leaf from the kept CA; caBundle does not change.
  bundle="$(bundle_sum)"
  "$WEBHOOK_BIN" certs --renew "${CA_ROT_HOST[@]}"
  expect_eq "caBundle after --renew (sha256)" "$(bundle_sum)" "$bundle"
  swap_secret "renewed leaf, same CA"

  # CA rotation: caBundle with both CAs first, then the Secret with the new CA's leaf.
  "$WEBHOOK_BIN" certs --rotate-ca "${CA_ROT_HOST[@]}"
  expect_eq "CAs in caBundle after --rotate-ca" "$(cas_in_bundle)" 2
  helm_set "certificates.existingSecret.caBundle=$(cat "$CA_ROT/caBundle")"
  phase "caBundle old + new CA, leaf of the old CA"
  swap_secret "leaf of the new CA"

  # A period later: --renew drops the old CA; the Secret, then caBundle.
  "$WEBHOOK_BIN" certs --renew "${CA_ROT_HOST[@]}"
  expect_eq "CAs in caBundle after the next --renew" "$(cas_in_bundle)" 1
  swap_secret "renewed leaf of the new CA"
  helm_set "certificates.existingSecret.caBundle=$(cat "$CA_ROT/caBundle")"
  phase "caBundle new CA only"

  touch "$stop"
  wait "$loop_pid" || fail "a create failed during the renewal and rotation"
  local count reloads
  count="$(cat "$E2E_DIR/ca-rotation.count")"
  echo "  creates during the renewal and rotation: $count"
  [ "$count" -ge 20 ] || fail "only $count creates ran"
  expect_eq "Deployments without the backend label" \
    "$(k -n "$ns" get deployments -o jsonpath='{range .items[*]}{.spec.template.metadata.labels.alibabacloud\.com/inference-backend}{"\n"}{end}' | grep -cvx vllm || true)" 0
  expect_eq "calls that failed open (API server metric)" "$(fail_open_count enforce.mutate.inference-webhook.io)" "$before_open"
  local audited
  audited="$(grep -F "\"namespace\":\"$ns\"" "$E2E_AUDIT_LOG" | grep -F '"verb":"create"' | grep -vF 'dryRun=All' || true)"
  expect_eq "creates the audit log shows patched by the enforce entry" \
    "$(grep -cF 'enforce.mutate.inference-webhook.io\",\"mutated\":true' <<<"$audited" || true)" "$count"
  expect_eq "creates with a failed-open audit annotation" "$(grep -c 'failed-open' <<<"$audited" || true)" 0
  reloads="$(webhook_metric inference_webhook_certificate_reloads_total)"
  [ "$reloads" -ge $((before_reloads + 3)) ] || fail "reloads $before_reloads -> $reloads, want 3 more"
  echo "  certificate reloads: $before_reloads -> $reloads"
}

scenario "certs --host 127.0.0.1: the user's CA and leaf, caBundle by helm upgrade" ca_rotation_setup
stop_webhook
WEBHOOK_CERTS="$CA_ROT" start_webhook --max-connection-age "${CA_ROT_AGE}s" || true
scenario "renew, rotate the CA, drop the old CA (existingSecret steps), failurePolicy Fail, new handshakes each step: 0 failed creates, 0 fail-open" ca_rotation
# Back to the e2e certificate and failurePolicy Ignore for the scenarios after this file.
helm_set webhook.validating.failurePolicy=Ignore "certificates.existingSecret.caBundle=$CA_BUNDLE" || true
stop_webhook
start_webhook || true
scenario "webhook back on the e2e certificate: the API server calls it" wait_for 30 webhook_in_effect ca-rotation
