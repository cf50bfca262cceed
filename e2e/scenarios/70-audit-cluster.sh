# `inference-webhook audit --cluster -A` against this API server gives, for every workload the
# scenarios above stored, the verdict the webhook gives: each object is submitted again to an
# enforce namespace with server-side dry-run, and the webhook's answer (denied, patched or
# untouched) must be what the audit report says (decision denied, a non-empty patch, or neither).

audit_cluster_agrees() {
  local report="$E2E_DIR/audit-cluster.json" rc=0
  make_ns audit-check enabled
  "$WEBHOOK_BIN" audit --cluster -A -o json >"$report" || rc=$?
  [ "$rc" -le 1 ] || { cat "$report"; fail "audit --cluster exited $rc"; }
  echo "  audit --cluster: exit $rc, summary $("$E2E_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"])' "$report")"
  # One line per audited object: RESOURCE NAMESPACE NAME DECISION PATCHED.
  "$E2E_PY" - "$report" >"$E2E_DIR/audit-cluster.rows" <<'PY'
import json, sys
for o in json.load(open(sys.argv[1]))["objects"]:
    # Not the chart's own Deployment, and one sample of the rotation's many identical ones.
    if o["namespace"] in ("audit-check", "webhook-system") or (o["namespace"] == "rotation" and o["name"] != "rot-1"):
        continue
    plural_group, version = o["source"]["resource"].split("/")  # deployments.apps/v1
    plural, _, group = plural_group.partition(".")
    resource = ".".join(p for p in (plural, version, group) if p)  # kubectl's deployments.v1.apps
    patched = "yes" if o.get("patch") else "no"
    decision = "allowed" if o["decision"] == "skipped" else o["decision"]
    print(resource, o["namespace"], o["name"], decision, patched)
PY
  local checked=0 resource ns name decision patched
  while read -r resource ns name decision patched; do
    local object="$E2E_DIR/audit-check.json" answer got_decision got_patched
    k -n "$ns" get "$resource" "$name" -o json | "$E2E_PY" -c '
import json, sys
o = json.load(sys.stdin)
o.pop("status", None)
m = o["metadata"]
o["metadata"] = {k: m[k] for k in ("name", "labels", "annotations") if k in m}
json.dump(o, sys.stdout)' >"$object"
    if answer="$(k -n audit-check create --dry-run=server -f "$object" -o json 2>"$E2E_DIR/stderr")"; then
      got_decision=allowed
      got_patched="$("$E2E_PY" -c 'import json,sys; a=json.load(open(sys.argv[1]))["spec"]; b=json.loads(sys.stdin.read())["spec"]; print("no" if a == b else "yes")' "$object" <<<"$answer")"
    elif grep -q "denied the request" "$E2E_DIR/stderr"; then
      got_decision=denied; got_patched="$patched" # a denial carries no patch to compare
    else
      cat "$E2E_DIR/stderr"; fail "dry-run of $resource $ns/$name failed"
    fi
    [ "$got_decision $got_patched" = "$decision $patched" ] \
      || fail "$resource $ns/$name: webhook says $got_decision, patched $got_patched; audit --cluster says $decision, patched $patched"
    echo "  $resource $ns/$name: $decision, patched $patched (both)"
    checked=$((checked + 1))
  done <"$E2E_DIR/audit-cluster.rows"
  [ "$checked" -ge 5 ] || fail "only $checked objects compared"
  echo "  $checked objects: audit --cluster and the webhook agree"
}

scenario "audit --cluster -A agrees with the webhook on every stored workload" audit_cluster_agrees
