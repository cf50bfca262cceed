# The Pod fallback: operators that create Pods directly (NVIDIA Grove's PodClique, AIBrix's
# RoleSet, kthena's ModelServing, KubeRay's RayCluster; their real CRDs, e2e/manifests/operator-crds/)
# get their pods labeled with the top-level service's name (the identity table) and the named
# port, through the Pod entries' matchConditions. Pods of other controllers, already-labeled pods,
# kube-system and opted-out pods never reach the webhook. With the webhook down, the pods are
# created unlabeled (fail open) and `audit --cluster` lists them with the reason.

POD_OWNERS_READY=""
pod_owners() {
  [ -n "$POD_OWNERS_READY" ] && return
  # Server-side: the CRDs are up to 1.4 MB, too big for client-side apply's annotation.
  k apply --server-side -f e2e/manifests/operator-crds/ >/dev/null
  k wait --for condition=established --timeout=60s crd/podcliquesets.grove.io crd/podcliques.grove.io \
    crd/stormservices.orchestration.aibrix.ai crd/rolesets.orchestration.aibrix.ai \
    crd/modelservings.workload.serving.volcano.sh crd/rayclusters.ray.io >/dev/null
  POD_OWNERS_READY=1
}

# The engine's container, as each operator's template carries it.
ENGINE='{containers: [{name: vllm, image: vllm/vllm-openai:v0.10.1, args: [--model, facebook/opt-125m, --port, "8000"]}]}'

# created NS: create the object on stdin in NS, print its uid.
created() { k -n "$1" create -o jsonpath='{.metadata.uid}' -f -; }

# owner NS API KIND NAME LABELS-JSON: an owner object without a spec (kinds whose schema needs none).
owner() {
  created "$1" <<YAML
apiVersion: $2
kind: $3
metadata: {name: $4, labels: $5}
YAML
}

# grove NS PCS: a PodCliqueSet and its PodClique PCS-0-decode, as Grove's operator makes it (the
# clique's labels: operator/api/common/labels.go); prints the PodClique's uid.
grove() {
  local uid
  uid="$(created "$1" <<YAML
apiVersion: grove.io/v1alpha1
kind: PodCliqueSet
metadata: {name: $2}
spec:
  replicas: 1
  template:
    cliques: [{name: decode, spec: {roleName: decode, replicas: 1, podSpec: $ENGINE}}]
YAML
)"
  created "$1" <<YAML
apiVersion: grove.io/v1alpha1
kind: PodClique
metadata:
  name: $2-0-decode
  labels: {app.kubernetes.io/managed-by: grove-operator, app.kubernetes.io/part-of: $2, grove.io/podclique: $2-0-decode}
  ownerReferences: [{apiVersion: grove.io/v1alpha1, kind: PodCliqueSet, name: $2, uid: $uid, controller: true, blockOwnerDeletion: true}]
spec: {roleName: decode, replicas: 1, podSpec: $ENGINE}
YAML
}

# aibrix NS STORM: a StormService and its RoleSet STORM-roleset-a (labels: pkg/controller/constants/
# stormservice.go); prints the RoleSet's uid.
aibrix() {
  local uid
  uid="$(created "$1" <<YAML
apiVersion: orchestration.aibrix.ai/v1alpha1
kind: StormService
metadata: {name: $2}
spec:
  replicas: 1
  selector: {matchLabels: {app: $2}}
  template:
    metadata: {labels: {app: $2}}
    spec: {roles: [{name: prefill, replicas: 1, template: {spec: $ENGINE}}]}
YAML
)"
  created "$1" <<YAML
apiVersion: orchestration.aibrix.ai/v1alpha1
kind: RoleSet
metadata:
  name: $2-roleset-a
  labels: {storm-service-name: $2, app: $2}
  ownerReferences: [{apiVersion: orchestration.aibrix.ai/v1alpha1, kind: StormService, name: $2, uid: $uid, controller: true, blockOwnerDeletion: true}]
spec: {roles: [{name: prefill, replicas: 1, template: {spec: $ENGINE}}]}
YAML
}

# kthena NS NAME: a ModelServing, whose controller makes the pods itself; prints its uid.
kthena() {
  created "$1" <<YAML
apiVersion: workload.serving.volcano.sh/v1alpha1
kind: ModelServing
metadata: {name: $2}
spec:
  replicas: 1
  template:
    roles: [{name: decode, replicas: 1, workerReplicas: 0, entryTemplate: {spec: $ENGINE}}]
YAML
}

# kuberay NS NAME: a RayCluster, whose controller makes the head pod; prints its uid.
kuberay() {
  created "$1" <<YAML
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: $2}
spec:
  headGroupSpec: {rayStartParams: {}, template: {spec: $ENGINE}}
YAML
}

# operator_pod NS NAME API KIND OWNER UID LABELS-JSON: a Pod as the operator's controller makes it.
operator_pod() {
  k -n "$1" create -f - -o json <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $2
  labels: $7
  ownerReferences:
    - {apiVersion: $3, kind: $4, name: $5, uid: $6, controller: true, blockOwnerDeletion: true}
spec:
  containers:
    - name: vllm
      image: vllm/vllm-openai:v0.10.1
      args: [--model, facebook/opt-125m, --port, "8000"]
YAML
}

# The pods' labels, from each operator's source.
GROVE_LABELS() { echo "{app.kubernetes.io/managed-by: grove-operator, app.kubernetes.io/part-of: $1, grove.io/podclique: $1-0-decode}"; }
AIBRIX_LABELS() { echo "{storm-service-name: $1, roleset-name: $1-roleset-a, role-name: prefill}"; }
KTHENA_LABELS() { echo "{modelserving.volcano.sh/name: $1, modelserving.volcano.sh/group-name: $1-0, modelserving.volcano.sh/role: decode}"; }
KUBERAY_LABELS() { echo "{ray.io/cluster: $1, ray.io/node-type: head, ray.io/group: headgroup}"; }

reviews() { webhook_metric inference_webhook_reviews_total; }

labeled() { # labeled NS POD WORKLOAD
  local pod
  pod="$(k -n "$1" get pod "$2" -o json)"
  expect_contains "$2 workload label" "$pod" "\"alibabacloud.com/inference-workload\": \"$3\""
  expect_contains "$2 backend label" "$pod" '"alibabacloud.com/inference-backend": "vllm"'
  expect_eq "$2 port" "$(k -n "$1" get pod "$2" -o jsonpath='{.spec.containers[0].ports[0].name}:{.spec.containers[0].ports[0].containerPort}')" "http:8000"
}

untouched() { # untouched NS POD
  expect_eq "$2 workload label" "$(k -n "$1" get pod "$2" -o jsonpath='{.metadata.labels.alibabacloud\.com/inference-workload}')" ""
  expect_eq "$2 ports" "$(k -n "$1" get pod "$2" -o jsonpath='{.spec.containers[0].ports}')" ""
}

operator_pods_are_labeled() {
  pod_owners
  make_ns pod-fallback enabled
  wait_for 30 webhook_in_effect pod-fallback
  local uid ns=pod-fallback
  # Grove: the PodClique is per role; the PodCliqueSet's name is in app.kubernetes.io/part-of.
  uid="$(grove $ns pcs)"
  operator_pod $ns pcs-0-decode-abc12 grove.io/v1alpha1 PodClique pcs-0-decode "$uid" "$(GROVE_LABELS pcs)" >/dev/null
  labeled $ns pcs-0-decode-abc12 pcs
  # AIBrix: the RoleSet is per revision; the StormService's name is in storm-service-name.
  uid="$(aibrix $ns storm)"
  operator_pod $ns storm-roleset-a-prefill-0 orchestration.aibrix.ai/v1alpha1 RoleSet storm-roleset-a "$uid" "$(AIBRIX_LABELS storm)" >/dev/null
  labeled $ns storm-roleset-a-prefill-0 storm
  # kthena: the ModelServing makes the pods.
  uid="$(kthena $ns qwen)"
  operator_pod $ns qwen-0-decode-0 workload.serving.volcano.sh/v1alpha1 ModelServing qwen "$uid" "$(KTHENA_LABELS qwen)" >/dev/null
  labeled $ns qwen-0-decode-0 qwen
  # KubeRay: the RayCluster makes the head pod.
  uid="$(kuberay $ns ray-llm)"
  operator_pod $ns ray-llm-head-x7k2p ray.io/v1 RayCluster ray-llm "$uid" "$(KUBERAY_LABELS ray-llm)" >/dev/null
  labeled $ns ray-llm-head-x7k2p ray-llm
  # No identity label: the owner's name.
  uid="$(owner $ns orchestration.aibrix.ai/v1alpha1 RoleSet plain '{}')"
  operator_pod $ns plain-0 orchestration.aibrix.ai/v1alpha1 RoleSet plain "$uid" '{}' >/dev/null
  labeled $ns plain-0 plain
}

others_never_reach_the_webhook() {
  pod_owners
  make_ns pod-fallback-others enabled
  wait_for 30 webhook_in_effect pod-fallback-others
  local uid before after grove
  grove="$(GROVE_LABELS pcs)"
  uid="$(grove pod-fallback-others pcs)"
  before="$(reviews)"
  # Already labeled (as a template the webhook labeled would make it): not sent.
  operator_pod pod-fallback-others labeled-0 grove.io/v1alpha1 PodClique pcs-0-decode "$uid" \
    '{alibabacloud.com/inference-workload: mine}' >/dev/null
  # Opted out: not sent.
  operator_pod pod-fallback-others opted-out-0 grove.io/v1alpha1 PodClique pcs-0-decode "$uid" \
    '{inference-monitoring: disabled}' >/dev/null
  untouched pod-fallback-others opted-out-0
  # A controller kind not in the list (a Job's pod, a plain ReplicaSet's): not sent.
  uid="$(owner pod-fallback-others v1 ConfigMap not-an-operator '{}')"
  operator_pod pod-fallback-others other-0 v1 ConfigMap not-an-operator "$uid" '{}' >/dev/null
  untouched pod-fallback-others other-0
  after="$(reviews)"
  expect_eq "reviews the webhook answered" "$after" "$before"
  expect_eq "labeled-0 keeps its label" "$(k -n pod-fallback-others get pod labeled-0 -o jsonpath='{.metadata.labels.alibabacloud\.com/inference-workload}')" mine
  # kube-system is never matched, even for a listed owner kind.
  uid="$(grove kube-system pcs-sys)"
  operator_pod kube-system pcs-sys-0 grove.io/v1alpha1 PodClique pcs-sys-0-decode "$uid" "$grove" >/dev/null
  untouched kube-system pcs-sys-0
  # Kept (unlabeled) for the audit below, which must not list it.
}

# A metrics port already declared under another name (Knative's user-port) is never renamed nor
# declared twice; what pod validation says of a second entry for the same number is printed.
named_otherwise() {
  pod_owners
  make_ns pod-fallback-ports enabled
  wait_for 30 webhook_in_effect pod-fallback-ports
  local uid out
  uid="$(owner pod-fallback-ports orchestration.aibrix.ai/v1alpha1 RoleSet rs '{}')"
  k -n pod-fallback-ports create -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: rs-0
  labels: {storm-service-name: storm}
  ownerReferences: [{apiVersion: orchestration.aibrix.ai/v1alpha1, kind: RoleSet, name: rs, uid: $uid, controller: true}]
spec:
  containers:
    - name: vllm
      image: vllm/vllm-openai:v0.10.1
      args: [--model, facebook/opt-125m, --port, "8000"]
      ports: [{name: user-port, containerPort: 8000}]
YAML
  expect_eq "rs-0 workload label" "$(k -n pod-fallback-ports get pod rs-0 -o jsonpath='{.metadata.labels.alibabacloud\.com/inference-workload}')" storm
  expect_eq "rs-0 ports" "$(k -n pod-fallback-ports get pod rs-0 -o jsonpath='{range .spec.containers[0].ports[*]}{.name}:{.containerPort} {end}')" "user-port:8000 "
  out="$(k -n default create --dry-run=server -o name -f - 2>&1 <<YAML || true
apiVersion: v1
kind: Pod
metadata: {name: two-names}
spec:
  containers:
    - {name: c, image: x, ports: [{name: user-port, containerPort: 8000}, {name: http, containerPort: 8000}]}
YAML
)"
  echo "  pod validation of a second entry for containerPort 8000: $out"
}

# audit_pods FILE: `audit --cluster -A -o json` into FILE (exit 0 or 1: pods never deny).
audit_pods() {
  local rc=0
  "$WEBHOOK_BIN" audit --cluster -A -o json >"$1" || rc=$?
  [ "$rc" -le 1 ] || { cat "$1"; fail "audit --cluster exited $rc"; }
}

# pod_listed FILE NS POD: "REASON WORKLOAD" of the pod in the audit's unlabeledPods, or "none".
pod_listed() {
  "$E2E_PY" - "$@" <<'PY'
import json, sys
report, ns, pod = sys.argv[1:]
found = [f"{g['reason']} {g['workload']}" for g in json.load(open(report))["unlabeledPods"]
         if g["namespace"] == ns for p in g["pods"] if p["name"] == pod]
print(found[0] if found else "none")
PY
}

# With the webhook down, operator pods are created unlabeled (failurePolicy Ignore); the audit
# lists them as created while it was down, beside pods of a namespace that did not opt in and of
# an owner kind the entries do not list; opted-out and kube-system pods are not listed. After
# the webhook is back, deleting and recreating the pod (as its operator would) labels it.
# (Scenarios run in subshells: the webhook is started again at the top level, as in 50-webhook-down.sh.)
down_pod_created() {
  pod_owners
  local ns=pod-outage uid before
  make_ns $ns enabled
  wait_for 30 webhook_in_effect $ns
  uid="$(grove $ns down)"
  before="$(fail_open_count enforce.pods.mutate.inference-webhook.io)"
  stop_webhook
  operator_pod $ns down-0-decode-a1 grove.io/v1alpha1 PodClique down-0-decode "$uid" "$(GROVE_LABELS down)" >/dev/null
  untouched $ns down-0-decode-a1
  [ "$(fail_open_count enforce.pods.mutate.inference-webhook.io)" -gt "$before" ] || fail "no fail-open call of the Pod entry counted"
}

down_pods_are_listed() {
  local ns=pod-outage uid report="$E2E_DIR/pod-audit.json"
  make_ns pod-not-opted-in
  wait_for 30 webhook_in_effect $ns
  # Never sent to the webhook: the namespace did not opt in; the owner kind is not listed; opted out.
  uid="$(kthena pod-not-opted-in elsewhere)"
  operator_pod pod-not-opted-in elsewhere-0-decode-0 workload.serving.volcano.sh/v1alpha1 ModelServing elsewhere "$uid" "$(KTHENA_LABELS elsewhere)" >/dev/null
  uid="$(owner $ns v1 ConfigMap custom-operator '{}')"
  operator_pod $ns custom-0 v1 ConfigMap custom-operator "$uid" '{}' >/dev/null
  uid="$(grove $ns quiet)"
  operator_pod $ns quiet-0 grove.io/v1alpha1 PodClique quiet-0-decode "$uid" '{inference-monitoring: disabled}' >/dev/null

  audit_pods "$report"
  echo "  unlabeled inference pods: $("$E2E_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["unlabeledPods"])' "$report")"
  expect_eq "created while the webhook was down" "$(pod_listed "$report" $ns down-0-decode-a1)" "not-admitted down"
  expect_eq "namespace not opted in" "$(pod_listed "$report" pod-not-opted-in elsewhere-0-decode-0)" "namespace-not-opted-in elsewhere"
  expect_eq "owner kind not listed" "$(pod_listed "$report" $ns custom-0)" "owner-kind-not-listed custom-operator"
  expect_eq "opted-out pod" "$(pod_listed "$report" $ns quiet-0)" none
  expect_eq "kube-system pod" "$(pod_listed "$report" kube-system pcs-sys-0)" none
  expect_eq "a labeled operator pod" "$(pod_listed "$report" pod-fallback pcs-0-decode-abc12)" none
  "$E2E_PY" -c 'import json,sys; n=json.load(open(sys.argv[1]))["summary"]["unlabeledPods"]; sys.exit(0 if n >= 3 else 1)' "$report" \
    || fail "summary.unlabeledPods below 3"
  local table
  table="$("$WEBHOOK_BIN" audit --cluster -n $ns || true)"
  expect_contains "the table's advice" "$table" "delete the pod to re-admit it"

  # Re-admitted: deleted and created again, as its operator would.
  uid="$(k -n $ns get podclique down-0-decode -o jsonpath='{.metadata.uid}')"
  k -n $ns delete pod down-0-decode-a1 >/dev/null
  operator_pod $ns down-0-decode-a1 grove.io/v1alpha1 PodClique down-0-decode "$uid" "$(GROVE_LABELS down)" >/dev/null
  labeled $ns down-0-decode-a1 down
  audit_pods "$report"
  expect_eq "after re-admission" "$(pod_listed "$report" $ns down-0-decode-a1)" none
}

scenario "Pods a PodClique, RoleSet, ModelServing or RayCluster controls (real CRDs) are labeled with the top-level service and get the http port" operator_pods_are_labeled
scenario "labeled, opted-out, other controllers' and kube-system pods never reach the webhook" others_never_reach_the_webhook
scenario "a metrics port declared under another name is kept as it is (and what pod validation says of a second entry)" named_otherwise
scenario "webhook down: an operator pod is created unlabeled (the Pod entry fails open)" down_pod_created
start_webhook || true
scenario "audit --cluster lists the unlabeled inference pods with the reason (not-admitted, namespace-not-opted-in, owner-kind-not-listed; not opted-out or kube-system); re-created, the pod is labeled" down_pods_are_listed
