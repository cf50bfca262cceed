# The webhook on the host: the release binary serving https://127.0.0.1:$WEBHOOK_PORT with a
# certificate for 127.0.0.1, laid out like a mounted Secret (tls.crt -> ..data/tls.crt, ..data ->
# a timestamped directory), so that a rotation can swap ..data the way the kubelet does.
#   webhook_certs DIR            CA ($DIR/ca.crt, .key) and a first serving pair under $DIR/tls
#   rotate_serving_pair DIR      a new pair from the same CA, swapped in by renaming ..data
#   update_secret_volume VOL SRC the pair SRC/tls.{crt,key} swapped into the volume VOL likewise
#   start_webhook / stop_webhook the server; its log is $E2E_LOGS/webhook.log
#   webhook_metric NAME          one metric's value (sum over its label sets)
#   reloads_above N              the webhook has reloaded its certificate more than N times
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
  mkdir -p "$dir"
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=e2e-webhook-ca" -days 2 -out "$dir/ca.crt" 2>/dev/null
  rotate_serving_pair "$dir"
}

# The kubelet's atomic update of a Secret volume: copy the pair into a fresh directory, point a
# temporary symlink at it, rename that over ..data (one rename(2)), then drop the old directory.
# The first update also makes the volume and its tls.crt -> ..data/tls.crt links.
update_secret_volume() { # update_secret_volume VOLUME SRC
  local dir="$1" old new
  new="..pair-$(date +%s%N)"
  mkdir -p "$dir/$new"
  cp "$2/tls.crt" "$2/tls.key" "$dir/$new/"
  old="$(readlink "$dir/..data" || true)"
  ln -s "$new" "$dir/..data_tmp"
  mv -T "$dir/..data_tmp" "$dir/..data"
  if [ -n "$old" ]; then
    rm -rf "${dir:?}/$old"
  else
    ln -s ..data/tls.crt "$dir/tls.crt"
    ln -s ..data/tls.key "$dir/tls.key"
  fi
}

# A new pair from the CA in DIR, swapped into the volume DIR/tls.
rotate_serving_pair() {
  issue_serving_pair "$1" "$1/next"
  update_secret_volume "$1/tls" "$1/next"
  rm -rf "${1:?}/next"
}

# The serial number of the certificate the webhook presents now, if it verifies for 127.0.0.1
# against CA_FILE (default: the e2e CA).
served_serial() { # served_serial [CA_FILE]
  openssl s_client -connect "127.0.0.1:$WEBHOOK_PORT" -CAfile "${1:-$WEBHOOK_CERTS/ca.crt}" \
    -verify_ip 127.0.0.1 -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial
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

reloads_above() { [ "$(webhook_metric inference_webhook_certificate_reloads_total)" -gt "$1" ]; }
