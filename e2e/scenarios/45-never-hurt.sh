# First, do no harm (issue #22): a workload admitted before its namespace opted in, which the
# rules would deny today, survives every update that leaves its pod template alone (annotate,
# label, a replicas patch, a helm upgrade of an unrelated value) and a foreground deletion; a
# change of its template is still denied with the rule id. A RoleBasedGroup whose
# leaderWorkerPattern shares one base template with labels and ports is stored with one `http`
# port; inserting a role in front patches no other role; a StatefulSet that a LeaderWorkerSet
# controls gets no patch of its own.

# A chart with one Deployment running SGLang without --enable-metrics (rule metrics-disabled,
# deny); the value `note` lands in an annotation of the Deployment, never in its pod template.
sglang_chart() {
  local dir="$E2E_DIR/charts/sglang-app"
  mkdir -p "$dir/templates"
  cat >"$dir/Chart.yaml" <<'YAML'
apiVersion: v2
name: sglang-app
version: 0.1.0
YAML
  cat >"$dir/templates/deployment.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sglang
  annotations: {note: {{ .Values.note | quote }}}
spec:
  replicas: 1
  selector: {matchLabels: {app: sglang}}
  template:
    metadata: {labels: {app: sglang}}
    spec:
      containers:
        - name: sglang
          image: lmsysorg/sglang:v0.5.5
          command: [python3, -m, sglang.launch_server, --model-path, Qwen/Qwen3-0.6B, --port, "30000"]
YAML
  echo "$dir"
}

predating_workload() {
  local ns=predates chart err
  chart="$(sglang_chart)"
  make_ns "$ns"
  "$HELM" install app "$chart" -n "$ns" --set note=a >/dev/null
  k label namespace "$ns" inference-monitoring=enabled
  wait_for 30 webhook_in_effect "$ns"
  # The same object is denied on CREATE now:
  err="$(k -n "$ns" get deployment sglang -o json | "$E2E_PY" -c '
import json, sys
o = json.load(sys.stdin)
o["metadata"] = {"name": "sglang-copy"}
o.pop("status", None)
print(json.dumps(o))' | k -n "$ns" create --dry-run=server -f - 2>&1 || true)"
  expect_contains "a create of the same spec" "$err" "metrics-disabled"

  err="$(k -n "$ns" annotate deployment sglang team=llm 2>&1)"
  expect_contains "kubectl annotate (allowed, warned)" "$err" "predates"
  k -n "$ns" label deployment sglang tier=gpu >/dev/null
  # Before the replicas patch: helm's server-side apply owns .spec.replicas, and a later
  # upgrade would conflict with kubectl's field manager, not with the webhook.
  "$HELM" upgrade app "$chart" -n "$ns" --set note=b >/dev/null
  expect_eq "annotation after helm upgrade" \
    "$(k -n "$ns" get deployment sglang -o jsonpath='{.metadata.annotations.note}')" b
  k -n "$ns" patch deployment sglang --type merge -p '{"spec":{"replicas":2}}' >/dev/null
  expect_eq "template labels untouched" "$(template_backend "$ns" sglang)" ""

  err="$(k -n "$ns" set image deployment/sglang sglang=lmsysorg/sglang:v0.5.6 2>&1 || true)"
  expect_contains "a template change is still judged" "$err" "metrics-disabled"
  expect_eq "image after the denied change" \
    "$(k -n "$ns" get deployment sglang -o jsonpath='{.spec.template.spec.containers[0].image}')" \
    lmsysorg/sglang:v0.5.5

  local start=$SECONDS
  k -n "$ns" delete deployment sglang --cascade=foreground --timeout=30s
  expect_eq "deployment after a foreground delete" \
    "$(k -n "$ns" get deployment sglang --ignore-not-found -o name)" ""
  echo "  deleted in $((SECONDS - start)) s"
}

rbg_shared_base_template() {
  local ns=rbg-lw
  make_ns "$ns" enabled
  k -n "$ns" create -f - <<'YAML'
apiVersion: workloads.x-k8s.io/v1alpha2
kind: RoleBasedGroup
metadata: {name: lw}
spec:
  roles:
    - name: inference
      replicas: 1
      leaderWorkerPattern:
        size: 2
        template:
          metadata: {labels: {app: lw}}
          spec:
            containers:
              - name: vllm
                image: vllm/vllm-openai:v0.10.1
                args: [--model, Qwen/Qwen3-0.6B, --port, "8000"]
                ports: [{containerPort: 8000}, {containerPort: 8265, name: dashboard}]
        leaderTemplatePatch: {metadata: {labels: {role: leader}}}
        workerTemplatePatch: {metadata: {labels: {role: worker}}}
YAML
  local ports
  ports="$(k -n "$ns" get rolebasedgroup lw -o jsonpath='{.spec.roles[0].leaderWorkerPattern.template.spec.containers[0].ports[*].name}')"
  expect_eq "port names of the shared template" "$ports" "http dashboard"
  expect_eq "backend label" "$(k -n "$ns" get rolebasedgroup lw -o jsonpath='{.spec.roles[0].leaderWorkerPattern.template.metadata.labels.alibabacloud\.com/inference-backend}')" vllm
}

rbg_role_inserted_in_front() {
  local ns=rbg-insert
  make_ns "$ns"
  cat >"$E2E_DIR/rbg-two.yaml" <<'YAML'
apiVersion: workloads.x-k8s.io/v1alpha2
kind: RoleBasedGroup
metadata: {name: pd}
spec:
  roles:
    - name: prefill
      replicas: 1
      standalonePattern:
        template:
          spec:
            containers: [{name: vllm, image: vllm/vllm-openai:v0.10.1, args: [--model, m, --port, "8000"]}]
    - name: decode
      replicas: 1
      standalonePattern:
        template:
          spec:
            containers: [{name: vllm, image: vllm/vllm-openai:v0.10.1, args: [--model, m, --port, "8000"]}]
YAML
  k -n "$ns" create -f "$E2E_DIR/rbg-two.yaml"
  k label namespace "$ns" inference-monitoring=enabled
  wait_for 30 webhook_in_effect "$ns"
  # The same roles with a router role in front: prefill and decode move from index 0 and 1.
  k -n "$ns" get rolebasedgroup pd -o json | "$E2E_PY" -c '
import json, sys
o = json.load(sys.stdin)
o["spec"]["roles"].insert(0, {"name": "router", "replicas": 1, "standalonePattern": {"template": {"spec": {"containers": [{"name": "router", "image": "nginx:1.27"}]}}}})
print(json.dumps(o))' | k -n "$ns" replace -f -
  local labels
  labels="$(k -n "$ns" get rolebasedgroup pd -o jsonpath='{range .spec.roles[*]}{.name}={.standalonePattern.template.metadata.labels}{"\n"}{end}')"
  echo "$labels"
  expect_not_contains "roles after the insert" "$labels" "inference-workload"
  expect_eq "roles" "$(k -n "$ns" get rolebasedgroup pd -o jsonpath='{.spec.roles[*].name}')" "router prefill decode"
}

lws_child_statefulset() {
  local ns=lws-child uid
  make_ns "$ns" enabled
  k -n "$ns" create -f - <<'YAML'
apiVersion: leaderworkerset.x-k8s.io/v1
kind: LeaderWorkerSet
metadata: {name: lws}
spec:
  leaderWorkerTemplate:
    size: 2
    workerTemplate:
      spec:
        containers: [{name: vllm, image: vllm/vllm-openai:v0.10.1, command: [sh, -c, "vllm serve m --port 8000"]}]
YAML
  uid="$(k -n "$ns" get leaderworkerset lws -o jsonpath='{.metadata.uid}')"
  # As LWS's controller makes it; a server-side dry run goes through admission and stores nothing
  # (the garbage collector never sees it).
  local stored
  stored="$(k -n "$ns" create --dry-run=server -o json -f - <<YAML
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: lws
  ownerReferences: [{apiVersion: leaderworkerset.x-k8s.io/v1, kind: LeaderWorkerSet, name: lws, uid: "$uid", controller: true}]
spec:
  serviceName: lws
  selector: {matchLabels: {app: lws}}
  template:
    metadata: {labels: {app: lws}}
    spec:
      containers: [{name: vllm, image: vllm/vllm-openai:v0.10.1, command: [sh, -c, "bash start.sh"]}]
YAML
)"
  expect_not_contains "the child StatefulSet" "$stored" "inference-workload"
  expect_not_contains "the child StatefulSet" "$stored" '"name": "http"'
}

scenario "a workload that predates the opt-in survives annotate, label, a replicas patch, helm upgrade and a foreground delete; a template change is denied" predating_workload
scenario "a RoleBasedGroup leaderWorkerPattern over one base template with labels and ports is stored with one http port" rbg_shared_base_template
scenario "a RoleBasedGroup update that inserts a role in front patches no other role" rbg_role_inserted_in_front
scenario "a StatefulSet a LeaderWorkerSet controls gets no patch of its own" lws_child_statefulset
