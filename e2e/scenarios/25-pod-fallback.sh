# The Pod fallback: operators that create Pods directly (Grove's PodClique, AIBrix's RoleSet;
# stand-in CRDs, e2e/manifests/pod-fallback-owner-crds.yaml) get their pods labeled with the
# top-level service's name (the identity table) and the named port, through the Pod entries'
# matchConditions. Pods of other controllers, already-labeled pods, kube-system and opted-out
# pods never reach the webhook.

POD_OWNERS_READY=""
pod_owners() {
  [ -n "$POD_OWNERS_READY" ] && return
  k apply -f e2e/manifests/pod-fallback-owner-crds.yaml >/dev/null
  k wait --for condition=established --timeout=60s crd/podcliques.grove.io crd/rolesets.orchestration.aibrix.ai >/dev/null
  POD_OWNERS_READY=1
}

# owner NS API KIND NAME LABELS-JSON: create the owner object, print its uid.
owner() {
  k -n "$1" create -f - -o jsonpath='{.metadata.uid}' <<YAML
apiVersion: $2
kind: $3
metadata: {name: $4, labels: $5}
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
  local uid
  # Grove: the PodClique is per role; the PodCliqueSet's name is in app.kubernetes.io/part-of.
  local grove='{app.kubernetes.io/managed-by: grove-operator, app.kubernetes.io/part-of: pcs, grove.io/podclique: pcs-0-decode}'
  uid="$(owner pod-fallback grove.io/v1alpha1 PodClique pcs-0-decode "$grove")"
  operator_pod pod-fallback pcs-0-decode-abc12 grove.io/v1alpha1 PodClique pcs-0-decode "$uid" "$grove" >/dev/null
  labeled pod-fallback pcs-0-decode-abc12 pcs
  # AIBrix: the RoleSet is per revision; the StormService's name is in storm-service-name.
  local aibrix='{storm-service-name: storm, roleset-name: storm-roleset-a, role-name: prefill}'
  uid="$(owner pod-fallback orchestration.aibrix.ai/v1alpha1 RoleSet storm-roleset-a "$aibrix")"
  operator_pod pod-fallback storm-roleset-a-prefill-0 orchestration.aibrix.ai/v1alpha1 RoleSet storm-roleset-a "$uid" "$aibrix" >/dev/null
  labeled pod-fallback storm-roleset-a-prefill-0 storm
  # No identity label: the owner's name.
  uid="$(owner pod-fallback grove.io/v1alpha1 PodClique plain '{}')"
  operator_pod pod-fallback plain-0 grove.io/v1alpha1 PodClique plain "$uid" '{}' >/dev/null
  labeled pod-fallback plain-0 plain
}

others_never_reach_the_webhook() {
  pod_owners
  make_ns pod-fallback-others enabled
  wait_for 30 webhook_in_effect pod-fallback-others
  local uid before after grove='{app.kubernetes.io/managed-by: grove-operator, app.kubernetes.io/part-of: pcs}'
  uid="$(owner pod-fallback-others grove.io/v1alpha1 PodClique pcs-0-x "$grove")"
  before="$(reviews)"
  # Already labeled (as a template the webhook labeled would make it): not sent.
  operator_pod pod-fallback-others labeled-0 grove.io/v1alpha1 PodClique pcs-0-x "$uid" \
    '{alibabacloud.com/inference-workload: mine}' >/dev/null
  # Opted out: not sent.
  operator_pod pod-fallback-others opted-out-0 grove.io/v1alpha1 PodClique pcs-0-x "$uid" \
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
  uid="$(owner kube-system grove.io/v1alpha1 PodClique pcs-sys "$grove")"
  operator_pod kube-system pcs-sys-0 grove.io/v1alpha1 PodClique pcs-sys "$uid" "$grove" >/dev/null
  untouched kube-system pcs-sys-0
  k -n kube-system delete pod pcs-sys-0 --wait=false >/dev/null
  k -n kube-system delete podclique pcs-sys --wait=false >/dev/null
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

scenario "Pods a PodClique or RoleSet controls are labeled with the top-level service and get the http port" operator_pods_are_labeled
scenario "labeled, opted-out, other controllers' and kube-system pods never reach the webhook" others_never_reach_the_webhook
scenario "a metrics port declared under another name is kept as it is (and what pod validation says of a second entry)" named_otherwise
