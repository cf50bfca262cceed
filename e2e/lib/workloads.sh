# Workloads and probes the scenarios share.

# A corpus Deployment (sgl-project/sglang docker/k8s-sglang-service.yaml): SGLang without
# --enable-metrics, which rule metrics-disabled (deny) rejects in enforce mode.
SGLANG_NO_METRICS=sgl-project__sglang/docker__k8s-sglang-service.yaml

# A vLLM Deployment named $1 (that passes every rule), as YAML on stdout.
vllm_deployment() { # vllm_deployment NAME [IMAGE] [REPLICAS]
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: ${3:-1}
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
      containers:
        - name: vllm
          image: ${2:-vllm/vllm-openai:v0.10.1}
          args: [--model, facebook/opt-125m, --port, "8000"]
          ports: [{containerPort: 8000}]
YAML
}

# The webhook labels a server-side dry-run create in namespace $1 (the configuration is in effect).
webhook_in_effect() {
  vllm_deployment probe | k -n "$1" create --dry-run=server -f - \
    -o jsonpath='{.spec.template.metadata.labels.alibabacloud\.com/inference-backend}' | grep -qx vllm
}

# The backend label of Deployment $2's pod template in namespace $1.
template_backend() { k -n "$1" get deployment "$2" -o jsonpath='{.spec.template.metadata.labels.alibabacloud\.com/inference-backend}'; }

# The API server's count of calls to webhook entry $1 that failed open.
fail_open_count() {
  k get --raw /metrics | awk -v w="name=\"$1\"" 'index($0, "apiserver_admission_webhook_fail_open_count{") == 1 && index($0, w) { s += $2 } END { printf "%d\n", s }'
}

# Create Deployments in namespace $1 one after another until file $2 exists; print how many.
# The first failed create ends it with an error. Replicas 0: each create goes through admission,
# and the hundreds of them leave no pods for the real node to schedule later (its pod capacity).
create_until() { # create_until NS STOPFILE
  local i=0
  while [ ! -e "$2" ]; do
    i=$((i + 1))
    vllm_deployment "rot-$i" "" 0 | k -n "$1" create -f - >/dev/null || { echo "create rot-$i failed" >&2; return 1; }
  done
  echo "$i"
}
