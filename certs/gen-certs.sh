#!/usr/bin/env bash
# Make a private CA and a serving certificate for the webhook's Service with openssl: the same
# files as `inference-webhook certs` (ca.crt, tls.crt, tls.key, caBundle). See certs/README.md.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: gen-certs.sh [--service S] [--namespace N] [--out DIR] [--days D] [--ca-days D]
  --service    Service name              (default: inference-webhook)
  --namespace  Service namespace         (default: inference-webhook)
  --out        output directory          (default: certs/out)
  --days       serving certificate validity (default: 365)
  --ca-days    CA validity               (default: 3650)
Writes DIR/ca.crt, DIR/ca.key and DIR/tls.key (mode 0600), DIR/tls.crt and DIR/caBundle (base64
of ca.crt, for clientConfig.caBundle). Refuses a DIR that holds a CA key already: renew the
serving certificate from that CA with `inference-webhook certs --renew --out DIR` (caBundle
unchanged, so no review fails), or rotate the CA with `--rotate-ca` (certs/README.md).
USAGE
}

service=inference-webhook
namespace=inference-webhook
out=certs/out
days=365
ca_days=3650
while [ $# -gt 0 ]; do
  case "$1" in
    --service) service="${2:?--service needs a value}"; shift 2 ;;
    --namespace) namespace="${2:?--namespace needs a value}"; shift 2 ;;
    --out) out="${2:?--out needs a value}"; shift 2 ;;
    --days) days="${2:?--days needs a value}"; shift 2 ;;
    --ca-days) ca_days="${2:?--ca-days needs a value}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gen-certs.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
# DNS-1123 labels only: the names end up in SANs and in the Service's DNS name.
label='^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'
[[ "$service" =~ $label ]] || { echo "gen-certs.sh: invalid service name: $service" >&2; exit 2; }
[[ "$namespace" =~ $label ]] || { echo "gen-certs.sh: invalid namespace: $namespace" >&2; exit 2; }
[[ "$days" =~ ^[1-9][0-9]*$ ]] || { echo "gen-certs.sh: --days must be a positive integer" >&2; exit 2; }
[[ "$ca_days" =~ ^[1-9][0-9]*$ ]] || { echo "gen-certs.sh: --ca-days must be a positive integer" >&2; exit 2; }
command -v openssl >/dev/null || { echo "gen-certs.sh: openssl not found" >&2; exit 1; }

[ ! -e "$out/ca.key" ] || { echo "gen-certs.sh: $out/ca.key exists: renew with 'inference-webhook certs --renew --out $out' (certs/README.md)" >&2; exit 1; }

umask 077
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

sans="DNS:${service},DNS:${service}.${namespace},DNS:${service}.${namespace}.svc,DNS:${service}.${namespace}.svc.cluster.local"

openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca.key"
# Own config file: the result does not depend on the machine's openssl.cnf.
cat > "$work/ca.cnf" <<CNF
[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
CN = ${service}.${namespace} webhook CA
[v3_ca]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
CNF
openssl req -x509 -new -key "$work/ca.key" -sha256 -days "$ca_days" -config "$work/ca.cnf" \
  -out "$work/ca.crt"

openssl ecparam -name prime256v1 -genkey -noout -out "$work/tls.key.ec"
# PKCS#8, the form every TLS library reads.
openssl pkcs8 -topk8 -nocrypt -in "$work/tls.key.ec" -out "$work/tls.key"
openssl req -new -key "$work/tls.key" -subj "/CN=${service}.${namespace}.svc" -out "$work/tls.csr"
cat > "$work/ext.cnf" <<EXT
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = ${sans}
EXT
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
  -sha256 -days "$days" -extfile "$work/ext.cnf" -out "$work/tls.crt" 2>/dev/null

openssl verify -CAfile "$work/ca.crt" "$work/tls.crt" >/dev/null
base64 < "$work/ca.crt" | tr -d '\n' > "$work/caBundle"

install -m 0644 "$work/ca.crt" "$out/ca.crt"
# PKCS#8, the form `inference-webhook certs --renew` reads.
openssl pkcs8 -topk8 -nocrypt -in "$work/ca.key" -out "$work/ca.key.p8"
install -m 0600 "$work/ca.key.p8" "$out/ca.key"
install -m 0644 "$work/tls.crt" "$out/tls.crt"
install -m 0600 "$work/tls.key" "$out/tls.key"
install -m 0644 "$work/caBundle" "$out/caBundle"
# The PEM form of caBundle, for the static-certs overlay (the same as ca.crt until a rotation).
install -m 0644 "$work/ca.crt" "$out/ca-bundle.crt"
echo "wrote $out/{ca.crt,ca.key,tls.crt,tls.key,caBundle,ca-bundle.crt} for ${service}.${namespace}.svc (${days} days)"
