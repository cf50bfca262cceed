# A real node (e2e/lib/node.sh): containerd + runc + CNI, the kubelet and kube-scheduler built from
# k8s.io/kubernetes. The webhook then runs as pods of the chart, from the image image/build makes,
# and the API server calls it through its Service. Needs root and cgroups (this machine kind, CI):
# elsewhere the scenarios print why they did not run.
#
# The release installed by 01-install (webhook.url, the binary on the host) is uninstalled first:
# from here on the only webhook is the one in the pods.

NODE_ENGINE_NS=llm-serving     # opted in: the stand-in engine is labeled and scraped
NODE_PLAIN_NS=llm-unmonitored  # not opted in: the same manifest, left alone, not scraped
# The chart as a user with the Prometheus Operator installs it: PodMonitor and PrometheusRule on
# (scrape every 5 s instead of 30 s, so that the scenarios wait less), the image imported.
NODE_HELM_VALUES=(--set image.pullPolicy=Never --set metrics.podMonitor.enabled=true
  --set metrics.podMonitor.interval=5s --set dashboards.enabled=true)

node_start_output="$E2E_LOGS/node-start.log"
if ! why="$(node_possible)"; then
  node_started=
  node_why="no real node on this machine: $why"
else
  node_tools
  NODE_IMAGES="$E2E_DIR/node-images"
  if { build_node_images "$NODE_IMAGES" && prometheus_images "$NODE_IMAGES" && cp "$WEBHOOK_IMAGE" "$NODE_IMAGES/" \
       && start_node "$E2E_DIR/node" && start_prometheus_operator && start_prometheus e2e; } \
       >"$node_start_output" 2>&1; then
    node_started=1
  else
    node_started=
    node_why="the node did not start: $(tail -3 "$node_start_output" | tr '\n' ' ')"
  fi
fi

need_node() { [ -n "$node_started" ] || { echo "$node_why"; exit "$NOT_EXERCISED"; }; }

# Pod $2's container restart counts and its UID in namespace $1: "uid:restarts,restarts".
pod_fingerprint() { k -n "$1" get pods -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.uid}:{.status.containerStatuses[*].restartCount}{"\n"}{end}' | sort; }

node_runs_pods() {
  need_node
  cat "$node_start_output"
  k get node "$NODE_NAME" -o wide
  expect_eq "node Ready" "$(k get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" True
  echo "  runtime: $(k get node "$NODE_NAME" -o jsonpath='{.status.nodeInfo.containerRuntimeVersion}'), kubelet $(k get node "$NODE_NAME" -o jsonpath='{.status.nodeInfo.kubeletVersion}')"
  make_ns node-smoke
  # The stand-in engine, in a namespace that did not opt in: scheduled, started, and reachable
  # on its pod IP from the host (over the CNI bridge).
  sed 's/NAME/smoke/' e2e/manifests/stand-in-vllm.yaml | k -n node-smoke apply -f -
  k -n node-smoke rollout status deployment/smoke --timeout=120s
  local ip
  ip="$(k -n node-smoke get pods -l app=smoke -o jsonpath='{.items[0].status.podIP}')"
  echo "  pod IP $ip"
  local page
  page="$(curl -fsS --max-time 5 "http://$ip:8000/metrics")"
  expect_contains "its metrics page, from the host over the bridge" "$page" "vllm:num_requests_running{"
  # Pods of the earlier scenarios (vllm/vllm-openai, ...) are scheduled here too: the kubelet asks
  # for their images, and containerd's mirrors (127.0.0.1:1) refuse every pull.
  expect_eq "images pulled (every image was imported; pull attempts end at 127.0.0.1:1)" \
    "$(grep -c 'returns image reference' "$E2E_LOGS/containerd.log" || true)" 0
  echo "  refused pull attempts so far: $(grep -c 'PullImage .* failed' "$E2E_LOGS/containerd.log" || true)"
}

webhook_as_pods() {
  need_node
  "$HELM" uninstall inference-webhook -n "$RELEASE_NS" --wait
  "$HELM" install inference-webhook "$NODE_CHART_PREVIOUS" -n "$RELEASE_NS" "${NODE_HELM_VALUES[@]}" \
    --wait --timeout 180s
  echo "  chart $(basename "$NODE_CHART_PREVIOUS") installed (the previous version; 5-upgrade moves it to this one)"
  k -n "$RELEASE_NS" get pods -o wide
  expect_eq "ready replicas" "$(k -n "$RELEASE_NS" get deployment inference-webhook -o jsonpath='{.status.readyReplicas}')" 2
  expect_eq "mutating entry calls the Service" \
    "$(k get mutatingwebhookconfiguration inference-webhook -o jsonpath='{.webhooks[0].clientConfig.service.name}')" inference-webhook
  expect_eq "image of the pods" \
    "$(k -n "$RELEASE_NS" get pods -l app.kubernetes.io/component=webhook -o jsonpath='{.items[0].status.containerStatuses[0].image}')" \
    docker.io/library/inference-webhook:$WEBHOOK_VERSION
  make_ns node-webhook enabled
  wait_for 60 webhook_in_effect node-webhook
  echo "  the API server's create was labeled by the webhook in a pod, called through the Service"
}

# Creates (server-side dry-run, through every admission step) in a loop while one webhook pod is
# deleted; every create must succeed and be labeled (mutation fails open: unlabeled = a miss).
create_loop() { # create_loop NAMESPACE SECONDS OUT
  local end=$((SECONDS + $2)) n=0 bad=0 got
  while [ $SECONDS -lt "$end" ]; do
    n=$((n + 1))
    if got="$(vllm_deployment "loop-$n" | k -n "$1" create --dry-run=server -f - \
        -o jsonpath='{.spec.template.metadata.labels.alibabacloud\.com/inference-backend}' 2>&1)"; then
      [ "$got" = vllm ] || { bad=$((bad + 1)); echo "create $n not labeled: $got"; }
    else
      bad=$((bad + 1)); echo "create $n failed: $got"
    fi
  done
  echo "$n $bad" >"$3"
}

pod_deleted_under_load() {
  need_node
  local before victim
  before="$(fail_open_count enforce.mutate.inference-webhook.io)"
  victim="$(k -n "$RELEASE_NS" get pods -l app.kubernetes.io/component=webhook -o jsonpath='{.items[0].metadata.name}')"
  create_loop node-webhook 25 "$E2E_DIR/loop-delete" &
  local loop=$!
  sleep 3
  echo "  deleting $victim (preStop sleep 5 s, then SIGTERM: not ready, drain, exit)"
  k -n "$RELEASE_NS" delete pod "$victim" --wait=true
  k -n "$RELEASE_NS" rollout status deployment/inference-webhook --timeout=120s
  wait "$loop"
  read -r n bad <"$E2E_DIR/loop-delete"
  echo "  $n creates, $bad failed or unlabeled"
  expect_eq "failed or unlabeled creates while a webhook pod was deleted" "$bad" 0
  expect_eq "fail-open calls" "$(fail_open_count enforce.mutate.inference-webhook.io)" "$before"
  [ "$n" -ge 10 ] || fail "only $n creates in 25 s"
}

scenario "node: containerd, runc, CNI bridge, kubelet and kube-scheduler (k8s.io/kubernetes); a pod runs, nothing pulled" node_runs_pods
scenario "webhook as pods: helm install, image from image/build, 2 replicas Ready, called through its Service" webhook_as_pods
scenario "one webhook pod deleted under a create loop: 0 failed creates, 0 fail-open" pod_deleted_under_load

# The stand-in vLLM engine from a plain manifest, in an opted-in namespace and in one that is not.
engines_deployed() {
  need_node
  make_ns "$NODE_ENGINE_NS" enabled
  make_ns "$NODE_PLAIN_NS"
  sed 's/NAME/chat/' e2e/manifests/stand-in-vllm.yaml | k -n "$NODE_ENGINE_NS" apply -f -
  sed 's/NAME/chat/' e2e/manifests/stand-in-vllm.yaml | k -n "$NODE_PLAIN_NS" apply -f -
  k -n "$NODE_ENGINE_NS" rollout status deployment/chat --timeout=120s
  k -n "$NODE_PLAIN_NS" rollout status deployment/chat --timeout=120s
  local pod
  pod="$(k -n "$NODE_ENGINE_NS" get pods -l app=chat -o json)"
  expect_eq "workload label of the running pod" \
    "$(jq -r '.items[0].metadata.labels["alibabacloud.com/inference-workload"]' <<<"$pod")" chat
  expect_eq "backend label" "$(jq -r '.items[0].metadata.labels["alibabacloud.com/inference-backend"]' <<<"$pod")" vllm
  expect_eq "port named http" "$(jq -r '.items[0].spec.containers[0].ports[] | select(.name == "http") | .containerPort' <<<"$pod")" 8000
  expect_eq "phase" "$(jq -r '.items[0].status.phase' <<<"$pod")" Running
  expect_eq "not opted in: no labels" \
    "$(k -n "$NODE_PLAIN_NS" get pods -l app=chat -o jsonpath='{.items[0].metadata.labels.alibabacloud\.com/inference-workload}')" ""
}

# helm upgrade from the previous chart to this one while the engines run and creates go on.
helm_upgrade_live() {
  need_node
  local before after
  before="$(pod_fingerprint "$NODE_ENGINE_NS"; pod_fingerprint "$NODE_PLAIN_NS")"
  echo "  engine pods before: $before"
  create_loop node-webhook 40 "$E2E_DIR/loop-upgrade" &
  local loop=$!
  sleep 2
  "$HELM" upgrade inference-webhook charts/inference-webhook -n "$RELEASE_NS" "${NODE_HELM_VALUES[@]}" --wait --timeout 180s
  "$HELM" history inference-webhook -n "$RELEASE_NS"
  wait "$loop"
  read -r n bad <"$E2E_DIR/loop-upgrade"
  echo "  $n creates during the upgrade, $bad failed or unlabeled"
  expect_eq "failed or unlabeled creates during helm upgrade" "$bad" 0
  after="$(pod_fingerprint "$NODE_ENGINE_NS"; pod_fingerprint "$NODE_PLAIN_NS")"
  expect_eq "engine pods (same UIDs, no restart)" "$after" "$before"
  expect_eq "webhook ready replicas" "$(k -n "$RELEASE_NS" get deployment inference-webhook -o jsonpath='{.status.readyReplicas}')" 2
  k -n "$RELEASE_NS" get pods -o wide
}

# Prometheus, configured by the operator from the chart's PodMonitor and PrometheusRule, scrapes
# the labeled engine and not the other; the dashboard has data for it.
scraped_for_real() {
  need_node
  echo "  Prometheus $PROM_URL (pod default/prometheus-e2e-0), configuration from the operator through its config-reloader:"
  wait_for 60 prom_config_has "job_name: podMonitor/$RELEASE_NS/inference-webhook-inference/"
  prom_config | grep -n "job_name\|kubernetes_sd_configs\|api_server\|kubeconfig"
  curl -fsS "$PROM_URL/api/v1/rules" | jq -r '.data.groups[] | "  rule group \(.file): \(.name)"'
  # The SGLang stand-in, applied now that Prometheus runs: the time to its first sample.
  local t0 t1 sel
  t0="$(date +%s.%N)"
  sed 's/NAME/coder/' e2e/manifests/stand-in-sglang.yaml | k -n "$NODE_ENGINE_NS" apply -f -
  sel="namespace=\"$NODE_ENGINE_NS\",workload=\"coder\",backend=\"sglang\""
  wait_for 120 prom_has "sglang:num_running_reqs{$sel}"
  t1="$(date +%s.%N)"
  echo "  kubectl apply -> first sample in Prometheus: $(python3 -c "print(f'{$t1 - $t0:.1f}')") s (SGLang stand-in, scrape interval 5s)" \
    | tee "$E2E_DIR/first-sample.txt"
  wait_for 60 prom_has "vllm:num_requests_running{namespace=\"$NODE_ENGINE_NS\",workload=\"chat\",backend=\"vllm\"}"
  prom_query "up{namespace=~\"$NODE_ENGINE_NS|$NODE_PLAIN_NS\"}"
  expect_eq "series of the namespace that did not opt in" "$(prom_query "{namespace=\"$NODE_PLAIN_NS\"}")" "[]"
  curl -fsS "$PROM_URL/api/v1/targets" | jq -r '.data.activeTargets[] | "\(.labels.namespace) \(.labels.pod) \(.scrapeUrl) \(.health)"'
  expect_eq "active targets in $NODE_PLAIN_NS" \
    "$(curl -fsS "$PROM_URL/api/v1/targets" | jq "[.data.activeTargets[] | select(.labels.namespace == \"$NODE_PLAIN_NS\")] | length")" 0
  # rate(...[5m]) needs two samples, the rules one evaluation after that.
  wait_for 90 prom_has "inference_workload:requests:rate5m{namespace=\"$NODE_ENGINE_NS\",workload=\"coder\"}"
  wait_for 90 prom_has "inference_workload:requests:rate5m{namespace=\"$NODE_ENGINE_NS\",workload=\"chat\"}"
  sleep 6
  "$E2E_PY" tests/dashboards/check.py live-workload "$PROM_URL" "$NODE_ENGINE_NS" chat vllm
  "$E2E_PY" tests/dashboards/check.py live-workload "$PROM_URL" "$NODE_ENGINE_NS" coder sglang
}

scenario "stand-in vLLM from a plain manifest: labeled and running in the opted-in namespace, untouched in the other" engines_deployed
scenario "helm upgrade from the previous chart with engines running: 0 failed creates, no engine pod restarted" helm_upgrade_live
scenario "Prometheus Operator + Prometheus scrape the labeled engines, not the other namespace; every dashboard panel has data" scraped_for_real

# ACK's own collector configuration: the PodMonitor the RoleBasedGroup project publishes for ARMS
# (e2e/manifests/rbg-arms-podmonitor.yaml, unmodified: namespace default, any namespace, the
# workload label present, port http), through the same operator and Prometheus. Its targets in the
# two engine namespaces must be exactly the pods the webhook labeled, all up, with its relabelings.
ack_collector_selects_same_pods() {
  need_node
  k apply -f e2e/manifests/rbg-arms-podmonitor.yaml
  local pool=podMonitor/default/llm-serving-podmonitor/0 sel="job=\"default/llm-serving-podmonitor\",namespace=~\"$NODE_ENGINE_NS|$NODE_PLAIN_NS\""
  local labeled
  labeled="$(k -n "$NODE_ENGINE_NS" get pods -l alibabacloud.com/inference-workload \
    -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name} {.metadata.labels.alibabacloud\.com/inference-workload} {.metadata.labels.alibabacloud\.com/inference-backend} 1{"\n"}{end}' | sort)"
  echo "  pods the webhook labeled in $NODE_ENGINE_NS:"; sed 's/^/    /' <<<"$labeled"
  [ "$(wc -l <<<"$labeled")" -ge 2 ] || fail "expected the chat and coder engines"
  # The operator rewrites its Secret, the kubelet refreshes the pod's copy (about a minute: its
  # sync period plus the Secret cache), the config-reloader reloads, then one 15 s interval.
  local t0=$SECONDS
  wait_for 180 prom_count "up{$sel} == 1" "$(wc -l <<<"$labeled")" || echo "  (not all up after 180 s)"
  echo "  PodMonitor applied -> its targets up: $((SECONDS - t0)) s"
  prom_config | grep -n "job_name: $pool"
  curl -fsS "$PROM_URL/api/v1/targets?scrapePool=$pool" \
    | jq -r '.data.activeTargets[] | "    \(.labels.namespace)/\(.labels.pod) \(.scrapeUrl) \(.health) \(.lastError)"'
  local got
  got="$(prom_query "up{$sel}" | jq -r '.[] | "\(.metric.pod_namespace)/\(.metric.pod_name) \(.metric.workload_name) \(.metric.backend) \(.value[1])"' | sort)"
  expect_eq "ACK PodMonitor's targets in $NODE_ENGINE_NS and $NODE_PLAIN_NS (pod, workload_name, backend, up)" "$got" "$labeled"
  expect_eq "the chart PodMonitor's targets there (pod, workload, backend, up)" \
    "$(prom_query "up{job=~\"$RELEASE_NS/.*\",namespace=~\"$NODE_ENGINE_NS|$NODE_PLAIN_NS\"}" | jq -r '.[] | "\(.metric.namespace)/\(.metric.pod) \(.metric.workload) \(.metric.backend) \(.value[1])"' | sort)" "$labeled"
}

scenario "ACK's collector configuration (RoleBasedGroup's PodMonitor for ARMS) scrapes the same labeled pods, up, not the other namespace" ack_collector_selects_same_pods
