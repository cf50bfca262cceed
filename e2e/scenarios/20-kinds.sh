# Each kind and version, created in an enforce namespace and read back: the webhook's labels and
# named port are stored (the real CRD schemas and their pruning kept them: `audit` of the stored
# object finds nothing left to add), and where kube-controller-manager makes Pods (Deployment,
# StatefulSet), every Pod carries them. No controller runs for the custom kinds here.
#
# Each row's resource and version must be listed by the webhook configuration the chart installed
# (the chart's rules mirror the engine's kind table, src/engine/kinds.rs): a row it does not list
# fails. Manifests: corpus:PATH is ../shared/corpus/PATH (read at
# run time), e2e:FILE is e2e/manifests/FILE.

# row | resource.version.group | manifest | backend label (vllm-pd: vLLM prefill/decode roles) | Pods made
KIND_ROWS='
deployment                   deployments.v1.apps                              corpus:GoogleCloudPlatform__kubernetes-engine-samples/ai-ml__llm-serving-gemma__vllm__vllm-3-1b-it.yaml   vllm   yes
statefulset                  statefulsets.v1.apps                             corpus:sgl-project__rbg/examples__deprecated__v1alpha1__single-node__vllm.yaml                             vllm   yes
rbg-v1alpha2-templateRef     rolebasedgroups.v1alpha2.workloads.x-k8s.io      corpus:sgl-project__rbg/examples__inference__ecosystem__mooncake__mooncake-transfer-engine__vllm-pd-disagg-with-mooncake-te.yaml vllm-pd no
rbg-v1alpha2-inline          rolebasedgroups.v1alpha2.workloads.x-k8s.io      e2e:rbg-v1alpha2-inline.yaml                                                                              vllm   no
rbg-v1alpha1                 rolebasedgroups.v1alpha1.workloads.x-k8s.io      corpus:sgl-project__rbg/examples__deprecated__v1alpha1__pd-disagg__sglang__sglang-pd.yaml                 sglang no
leaderworkerset              leaderworkersets.v1.leaderworkerset.x-k8s.io     corpus:kubernetes-sigs__lws/docs__examples__vllm__GPU__lws.yaml                                           vllm   no
disaggregatedset             disaggregatedsets.v1.disaggregatedset.x-k8s.io   e2e:disaggregatedset.yaml                                                                                 vllm   no
rolebasedgroupset-v1alpha2   rolebasedgroupsets.v1alpha2.workloads.x-k8s.io   e2e:rolebasedgroupset-v1alpha2.yaml                                                                       vllm   no
rolebasedgroupset-v1alpha1   rolebasedgroupsets.v1alpha1.workloads.x-k8s.io   e2e:rolebasedgroupset-v1alpha1.yaml                                                                       vllm   no
'

# The installed mutating configuration (its enforce entry) lists RESOURCE in GROUP/VERSION.
listed_by_webhook() { # listed_by_webhook RESOURCE VERSION GROUP
  k get mutatingwebhookconfiguration inference-webhook -o json | "$E2E_PY" -c '
import json, sys
r, v, g = sys.argv[1:]
rules = json.load(sys.stdin)["webhooks"][0]["rules"]
sys.exit(0 if any(r in x["resources"] and v in x["apiVersions"] and g in x["apiGroups"] for x in rules) else 1)
' "$1" "$2" "$3"
}

# The CRD of RESOURCE.GROUP stores a version other than VERSION and has no conversion webhook.
storage_drops_the_template() { # storage_drops_the_template RESOURCE.GROUP VERSION
  k get crd "$1" -o json | "$E2E_PY" -c '
import json, sys
crd = json.load(sys.stdin)["spec"]
storage = next(v["name"] for v in crd["versions"] if v["storage"])
strategy = crd.get("conversion", {}).get("strategy", "None")
sys.exit(0 if storage != sys.argv[1] and strategy == "None" else 1)
' "$2"
}

# The inference-webhook mutation annotations of the CREATE of NAME in NAMESPACE in the audit log.
webhook_mutations() { # webhook_mutations NAMESPACE NAME
  "$E2E_PY" - "$E2E_AUDIT_LOG" "$1" "$2" <<'PY'
import json, sys
log, ns, name = sys.argv[1:]
for line in open(log):
    e = json.loads(line)
    ref = e.get("objectRef", {})
    if e.get("verb") == "create" and ref.get("namespace") == ns and ref.get("name") == name:
        for k, v in e.get("annotations", {}).items():
            if k.startswith("mutation.webhook.admission.k8s.io/") and "inference-webhook" in v:
                print(v)
PY
}

manifest_path() {
  case "$1" in
    corpus:*) corpus_file "${1#corpus:}" ;;
    e2e:*) echo "$REPO/e2e/manifests/${1#e2e:}" ;;
  esac
}

# audit_json FILE: the audit command's JSON report of FILE (exit 1 = denied is a result, not an error).
audit_json() {
  local rc=0
  "$WEBHOOK_BIN" audit -o json "$1" || rc=$?
  [ "$rc" -le 1 ] || fail "audit of $1 exited $rc"
}

summary_field() { "$E2E_PY" -c 'import json, sys; print(json.load(sys.stdin)["summary"][sys.argv[1]])' "$1"; }

kind_row() { # kind_row ROW RESOURCE MANIFEST BACKEND PODS
  local row="$1" resource="$2" manifest="$3" backend="$4" pods="$5" ns
  ns="kind-$(tr '[:upper:]' '[:lower:]' <<<"$row")"
  local plural="${resource%%.*}" rest="${resource#*.}"
  local version="${rest%%.*}" group="${rest#*.}"
  # Every row is a kind the engine handles: a configuration that does not list it is a defect.
  listed_by_webhook "$plural" "$version" "$group" ||
    fail "$plural $group/$version is not in the installed webhook configuration"
  local file kind input="$E2E_DIR/kinds/$row.yaml" stored="$E2E_DIR/kinds/$row.stored.json"
  mkdir -p "$E2E_DIR/kinds"
  file="$(manifest_path "$manifest")"
  kind="$(k api-resources --api-group "$group" --no-headers | awk -v r="$plural" '$1 == r {print $NF}')"
  only_kinds "$kind" "$file" >"$input"
  [ -s "$input" ] || fail "no $kind in $file"
  expect_eq "objects the input needs patched (audit of the manifest)" "$(audit_json "$input" | summary_field patched)" 1
  make_ns "$ns" enabled
  k -n "$ns" create -f "$input"
  local name
  name="$(k create --dry-run=client -f "$input" -o jsonpath='{.metadata.name}')"
  k -n "$ns" get "$plural.$version.$group" "$name" -o json >"$stored"
  expect_eq "stored apiVersion" "$("$E2E_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["apiVersion"])' "$stored")" "$group/$version"
  if storage_drops_the_template "$plural.$group" "$version"; then
    # Upstream's CRD stores another version and declares no conversion, so the API server keeps
    # only the fields both versions share: the template is gone once stored, whatever the webhook
    # did. What can be checked is the webhook's answer, from the API server's own audit log.
    wait_for 10 bash -c 'grep -q "\"name\":\"$0\"" "$1"' "$name" "$E2E_AUDIT_LOG"
    expect_contains "audit log of the create" "$(webhook_mutations "$ns" "$name")" '"mutated":true'
    # Its remains cannot be audited as a workload of either version: do not leave them around.
    k -n "$ns" delete "$plural.$version.$group" "$name" --wait=false >/dev/null
    return 0
  fi
  # Read back through the real schema: every template's labels and port are there, nothing to add.
  local report
  report="$(audit_json "$stored")"
  expect_eq "objects the stored one needs patched" "$(summary_field patched <<<"$report")" 0
  expect_eq "stored object is still an inference workload" "$(summary_field inference <<<"$report")" 1
  expect_contains "stored object" "$(cat "$stored")" "\"alibabacloud.com/inference-backend\": \"$backend\""
  expect_contains "stored object" "$(cat "$stored")" '"name": "http"'
  if [ "$pods" = yes ]; then
    wait_for 90 bash -c '[ -n "$("$0" -n "$1" get pods -o name)" ]' "$KUBECTL" "$ns"
    local pod_labels
    pod_labels="$(k -n "$ns" get pods -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.labels.alibabacloud\.com/inference-backend} {.metadata.labels.alibabacloud\.com/inference-workload} {.spec.containers[0].ports[*].name}{"\n"}{end}')"
    echo "$pod_labels"
    while read -r pod pod_backend workload ports; do
      expect_eq "Pod $pod backend label" "$pod_backend" "$backend"
      [ -n "$workload" ] || fail "Pod $pod has no workload label"
      expect_contains "Pod $pod port names" "$ports" http
    done <<<"$pod_labels"
  fi
}

while read -r row resource manifest backend pods; do
  [ -n "$row" ] || continue
  scenario "kind $row ($resource): stored with labels and port$([ "$pods" = yes ] && echo ', Pods too')" \
    kind_row "$row" "$resource" "$manifest" "$backend" "$pods"
done <<<"$KIND_ROWS"
