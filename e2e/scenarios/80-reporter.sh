# `inference-webhook report` against this API server: gauges and PolicyReports follow workloads
# as they are created, fixed and deleted; it works with only the chart's ClusterRole (a
# ServiceAccount token), and without it the 403 is named in /readyz while the process stays up.
# The namespace is not opted in, so the webhook leaves the workloads as written; the workload
# with metrics off is `denied` only once the namespace is opted in to enforce mode.

REPORTER_NS=report-a

# start_reporter KUBECONFIG NAME: the reporter on a free port; sets REPORTER_PID and REPORTER_ADDR.
start_reporter() {
  REPORTER_ADDR="127.0.0.1:$(free_port)"
  "$WEBHOOK_BIN" report --kubeconfig "$1" --metrics-listen "$REPORTER_ADDR" \
    --debounce 200ms --open-reports >"$E2E_LOGS/$2.log" 2>&1 &
  REPORTER_PID=$!
  echo "  reporter $2: pid $REPORTER_PID, $REPORTER_ADDR"
}

stop_reporter() { kill "$REPORTER_PID" 2>/dev/null || true; wait "$REPORTER_PID" 2>/dev/null || true; }

reporter_get() { curl -fsS "http://$REPORTER_ADDR$1"; }

# gauge SERIES: the value of one series of the reporter's metrics, or "none".
gauge() { reporter_get /metrics | awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print "none" }'; }

gauge_is() { [ "$(gauge "$1")" = "$2" ]; }

workload_series() { # workload_series STATE
  echo "inference_webhook_workloads{namespace=\"$REPORTER_NS\",kind=\"Deployment\",backend=\"vllm\",state=\"$1\"}"
}

# report_rows KIND: "name rule result" per result of the namespace's report, sorted.
report_rows() {
  k -n "$REPORTER_NS" get "$1" inference-webhook -o json 2>/dev/null | "$E2E_PY" -c '
import json, sys
r = json.load(sys.stdin)
rows = sorted(" ".join((x["resources"][0]["name"], x["rule"], x["result"])) for x in r["results"])
s = r["summary"]
assert sum(s.values()) == len(rows), (s, rows)
print("\n".join(rows))'
}

report_has() { report_rows "$1" | grep -qxF "$2"; }
report_lacks() { report_rows "$1" >"$E2E_DIR/rows" && ! grep -q "^$2 " "$E2E_DIR/rows"; }

reporter_follows_the_workloads() {
  make_ns "$REPORTER_NS"
  vllm_deployment unlabeled | k -n "$REPORTER_NS" create -f -
  vllm_deployment monitored | sed 's|metadata: {labels: {app: monitored}}|metadata: {labels: {app: monitored, alibabacloud.com/inference-workload: monitored, alibabacloud.com/inference-backend: vllm}}|; s|ports: \[{containerPort: 8000}\]|ports: [{name: http, containerPort: 8000}]|' \
    | k -n "$REPORTER_NS" create -f -
  vllm_deployment denied | sed 's|args: \[--model, facebook/opt-125m,|args: [--model, facebook/opt-125m, --disable-log-stats,|' | k -n "$REPORTER_NS" create -f -
  start_reporter "$KUBECONFIG" reporter-admin
  trap stop_reporter EXIT
  wait_for 60 reporter_get /readyz
  reporter_get /readyz
  wait_for 30 gauge_is "$(workload_series unmonitored)" 2
  wait_for 30 gauge_is "$(workload_series monitored)" 1
  gauge_is "$(workload_series denied)" none
  echo "  not opted in: 2 unmonitored, 1 monitored, none denied (the webhook denies nothing here)"
  k label namespace "$REPORTER_NS" inference-monitoring=enabled >/dev/null
  wait_for 30 gauge_is "$(workload_series denied)" 1
  wait_for 30 gauge_is "$(workload_series unmonitored)" 1
  echo "  enforce mode: 1 unmonitored, 1 monitored, 1 denied"
  for kind in policyreports.wgpolicyk8s.io reports.openreports.io; do
    wait_for 30 report_has "$kind" "denied metrics-disabled fail"
    wait_for 30 report_has "$kind" "unlabeled monitoring-labels-missing warn"
    wait_for 30 report_has "$kind" "monitored monitoring-labels-missing pass"
    echo "  $kind: fail, warn and pass results"; report_rows "$kind" | sed 's/^/    /'
  done

  # Fixed: the labels and the named port added by hand.
  k -n "$REPORTER_NS" patch deployment unlabeled --type=json -p '[
    {"op": "add", "path": "/spec/template/metadata/labels/alibabacloud.com~1inference-workload", "value": "unlabeled"},
    {"op": "add", "path": "/spec/template/metadata/labels/alibabacloud.com~1inference-backend", "value": "vllm"},
    {"op": "add", "path": "/spec/template/spec/containers/0/ports/0/name", "value": "http"}]'
  wait_for 30 gauge_is "$(workload_series monitored)" 2
  wait_for 30 gauge_is "$(workload_series unmonitored)" none
  wait_for 30 report_has policyreports.wgpolicyk8s.io "unlabeled monitoring-labels-missing pass"
  echo "  fixed: 2 monitored, the unmonitored series is gone, its result passes"

  # Deleted: its series and its results disappear.
  k -n "$REPORTER_NS" delete deployment denied --wait=false
  wait_for 30 gauge_is "$(workload_series denied)" none
  wait_for 30 report_lacks policyreports.wgpolicyk8s.io denied
  wait_for 30 report_lacks reports.openreports.io denied
  echo "  deleted: the denied series and its results are gone"

  # Nothing left to report: the reports are deleted.
  k -n "$REPORTER_NS" delete deployment unlabeled monitored --wait=false
  gone() { ! k -n "$REPORTER_NS" get policyreports.wgpolicyk8s.io inference-webhook; }
  wait_for 30 gone
  echo "  empty namespace: its PolicyReport is deleted"
  kill -0 "$REPORTER_PID"
}

# A ServiceAccount with the chart's reporter ClusterRole (or none), as a token kubeconfig.
reporter_kubeconfig() { # reporter_kubeconfig SA FILE [with-role]
  k -n reporter-system create serviceaccount "$1" >/dev/null
  if [ "${3:-}" = with-role ]; then
    "$HELM" template e2e charts/inference-webhook --namespace reporter-system --set reporter.enabled=true \
      --set reporter.openReports=true --show-only templates/reporter.yaml \
      | "$E2E_PY" -c '
import sys, yaml
for d in yaml.safe_load_all(sys.stdin):
    if d and d["kind"] in ("ClusterRole", "ClusterRoleBinding"):
        if d["kind"] == "ClusterRoleBinding":
            d["subjects"][0]["name"] = sys.argv[1]
        print("---"); print(yaml.safe_dump(d))' "$1" | k apply -f - >/dev/null
  fi
  write_kubeconfig "$2" "$E2E_API" "$E2E_DIR/pki/ca.crt" "$(k -n reporter-system create token "$1")"
}

reporter_with_the_chart_role() {
  k create namespace reporter-system >/dev/null 2>&1 || true
  reporter_kubeconfig reporter "$E2E_DIR/reporter.kubeconfig" with-role
  make_ns report-rbac
  vllm_deployment unlabeled | k -n report-rbac create -f -
  start_reporter "$E2E_DIR/reporter.kubeconfig" reporter-rbac
  trap stop_reporter EXIT
  wait_for 60 reporter_get /readyz
  reporter_get /readyz
  wait_for 30 gauge_is 'inference_webhook_workloads{namespace="report-rbac",kind="Deployment",backend="vllm",state="unmonitored"}' 1
  have_report() { k -n report-rbac get policyreports.wgpolicyk8s.io inference-webhook; }
  wait_for 30 have_report
  echo "  with only the chart's ClusterRole: ready, gauge and PolicyReport written"
}

reporter_without_rbac() {
  k create namespace reporter-system >/dev/null 2>&1 || true
  reporter_kubeconfig reporter-none "$E2E_DIR/reporter-none.kubeconfig"
  start_reporter "$E2E_DIR/reporter-none.kubeconfig" reporter-none
  trap stop_reporter EXIT
  failing() { curl -sS "http://$REPORTER_ADDR/readyz" | grep -q "deployments.apps/v1: failing: forbidden"; }
  wait_for 60 failing
  local code; code="$(curl -s -o "$E2E_DIR/readyz" -w '%{http_code}' "http://$REPORTER_ADDR/readyz")"
  cat "$E2E_DIR/readyz"
  expect_eq "/readyz status without RBAC" "$code" 503
  expect_contains "/readyz" "$(cat "$E2E_DIR/readyz")" "needs get, list and watch on deployments"
  expect_contains "the log" "$(cat "$E2E_LOGS/reporter-none.log")" "forbidden"
  sleep 3
  kill -0 "$REPORTER_PID" || fail "the reporter exited"
  expect_eq "/healthz" "$(reporter_get /healthz)" ok
  echo "  without RBAC: 403 named in /readyz and the log, the process stays up"
}

scenario "reporter: gauges and PolicyReports follow create, fix and delete" reporter_follows_the_workloads
scenario "reporter: works with only the chart's ClusterRole (ServiceAccount token)" reporter_with_the_chart_role
scenario "reporter: without RBAC the 403 is reported and the process stays up" reporter_without_rbac
