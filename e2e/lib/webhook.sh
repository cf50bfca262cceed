# The webhook on the host: the release binary serving https://127.0.0.1:$WEBHOOK_PORT with a
# certificate for 127.0.0.1, laid out like a mounted Secret (tls.crt -> ..data/tls.crt, ..data ->
# a timestamped directory), so that a rotation can swap ..data the way the kubelet does.
#   webhook_certs DIR            CA ($DIR/ca.crt, .key) and a first serving pair under $DIR/tls
#   rotate_serving_pair DIR      a new pair from the same CA, swapped in by renaming ..data
#   start_webhook / stop_webhook the server; its log is $E2E_LOGS/webhook.log
#   webhook_metric NAME          one metric's value (sum over its label sets)
# WEBHOOK_BIN, WEBHOOK_CERTS and WEBHOOK_PORT are set by e2e/run.

# issue_serving_pair CA_DIR OUT_DIR: an ECDSA P-256 certificate for IP 127.0.0.1, signed by the CA.
issue_serving_pair() {
  local ca="$1" out="$2"
  mkdir -p "$out"
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$out/tls.key"
  openssl req -new -key "$out/tls.key" -subj "/CN=inference-webhook" -out "$out/tls.csr" 2>/dev/null
  openssl x509 -req -in "$out/tls.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n') \
    -out "$out/tls.crt" 2>/dev/null
  rm -f "$out/tls.csr"
}

webhook_certs() {
  local dir="$1"
  mkdir -p "$dir/tls"
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=e2e-webhook-ca" -days 2 -out "$dir/ca.crt" 2>/dev/null
  issue_serving_pair "$dir" "$dir/tls/..pair-0"
  ln -s ..pair-0 "$dir/tls/..data"
  ln -s ..data/tls.crt "$dir/tls/tls.crt"
  ln -s ..data/tls.key "$dir/tls/tls.key"
}

# The kubelet's atomic update: write the new pair into a fresh directory, point a temporary
# symlink at it, rename that over ..data (one rename(2)), then drop the old directory.
rotate_serving_pair() {
  local dir="$1/tls" old new
  old="$(readlink "$dir/..data")"
  new="..pair-$(date +%s%N)"
  issue_serving_pair "$1" "$dir/$new"
  ln -s "$new" "$dir/..data_tmp"
  mv -T "$dir/..data_tmp" "$dir/..data"
  rm -rf "${dir:?}/$old"
}

# The serial number of the certificate the webhook presents now.
served_serial() {
  openssl s_client -connect "127.0.0.1:$WEBHOOK_PORT" -CAfile "$WEBHOOK_CERTS/ca.crt" </dev/null 2>/dev/null \
    | openssl x509 -noout -serial
}

start_webhook() { # start_webhook [EXTRA SERVE FLAGS...]
  start_bg webhook "$WEBHOOK_BIN" serve \
    --listen "127.0.0.1:$WEBHOOK_PORT" --metrics-listen "127.0.0.1:$WEBHOOK_METRICS_PORT" \
    --tls-cert "$WEBHOOK_CERTS/tls/tls.crt" --tls-key "$WEBHOOK_CERTS/tls/tls.key" \
    --cert-poll-interval 200ms --log-format json "$@"
  wait_for 30 curl -fsS --cacert "$WEBHOOK_CERTS/ca.crt" "https://127.0.0.1:$WEBHOOK_PORT/readyz"
}

stop_webhook() {
  kill "$E2E_PID_webhook" 2>/dev/null || true
  wait "$E2E_PID_webhook" 2>/dev/null || true
}

webhook_metric() {
  curl -fsS "http://127.0.0.1:$WEBHOOK_METRICS_PORT/metrics" \
    | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%d\n", s }'
}
