# The serving certificate rotated on disk while the API server keeps calling: the pair rewritten in
# place (cert first, then key: for a moment they do not match), then twice the kubelet's atomic
# `..data` symlink swap. Every create during the rotations is patched (no call failed open), the
# webhook reloaded each new pair, and it serves the last one.

cert_rotation() {
  local ns=rotation stop="$E2E_DIR/rotation.stop" before_reloads before_open loop_pid
  make_ns "$ns" enabled
  rm -f "$stop"
  before_reloads="$(webhook_metric inference_webhook_certificate_reloads_total)"
  before_open="$(fail_open_count enforce.mutate.inference-webhook.io)"
  create_until "$ns" "$stop" >"$E2E_DIR/rotation.count" &
  loop_pid=$!
  sleep 2
  # 1. rewritten in place, as `cp` over the files would.
  issue_serving_pair "$WEBHOOK_CERTS" "$E2E_DIR/rotation-pair"
  cat "$E2E_DIR/rotation-pair/tls.crt" >"$WEBHOOK_CERTS/tls/tls.crt"
  sleep 0.5
  cat "$E2E_DIR/rotation-pair/tls.key" >"$WEBHOOK_CERTS/tls/tls.key"
  wait_for 10 reloads_above "$before_reloads"
  sleep 2
  # 2. and 3. the ..data swap.
  rotate_serving_pair "$WEBHOOK_CERTS"; sleep 2
  rotate_serving_pair "$WEBHOOK_CERTS"; sleep 2
  touch "$stop"
  wait "$loop_pid" || fail "a create failed during the rotation"
  local count reloads
  count="$(cat "$E2E_DIR/rotation.count")"
  echo "  creates during the rotations: $count"
  [ "$count" -ge 10 ] || fail "only $count creates ran during the rotations"
  expect_eq "Deployments without the backend label" \
    "$(k -n "$ns" get deployments -o jsonpath='{range .items[*]}{.spec.template.metadata.labels.alibabacloud\.com/inference-backend}{"\n"}{end}' | grep -cvx vllm || true)" 0
  expect_eq "calls that failed open" "$(fail_open_count enforce.mutate.inference-webhook.io)" "$before_open"
  reloads="$(webhook_metric inference_webhook_certificate_reloads_total)"
  [ "$reloads" -ge $((before_reloads + 3)) ] || fail "reloads $before_reloads -> $reloads, want 3 more"
  echo "  certificate reloads: $before_reloads -> $reloads"
  expect_eq "served certificate" "$(served_serial)" "$(openssl x509 -in "$WEBHOOK_CERTS/tls/tls.crt" -noout -serial)"
  # New connections verify against the CA in the webhook configurations: the API server still calls.
  wait_for 10 webhook_in_effect "$ns"
}

scenario "certificate rotated on disk (rewrite, ..data swap x2) while the API server calls: 0 failed calls" cert_rotation
