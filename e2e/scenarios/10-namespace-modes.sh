# The namespace label picks the mode. Each row: a namespace labeled (or not), a vLLM Deployment that
# passes every rule, and the SGLang Deployment of the sglang repository's docker/k8s-sglang-service.yaml
# (../shared/corpus), which serves no metrics without --enable-metrics (rule metrics-disabled, deny).

# mode      | namespace label | the vLLM Deployment gets labels+port | the SGLang Deployment
MODE_ROWS='
enforce     enabled           yes                                   denied
warn        warn              yes                                   warned
audit       audit             no                                    annotated
unlabeled   -                 no                                    untouched
'

# The audit-log events of CREATEs of Deployment $2 in namespace $1, as "key=value" annotation lines.
audit_annotations() {
  "$E2E_PY" - "$E2E_AUDIT_LOG" "$1" "$2" <<'PY'
import json, sys
log, ns, name = sys.argv[1:]
for line in open(log):
    e = json.loads(line)
    ref = e.get("objectRef", {})
    if e.get("verb") == "create" and ref.get("namespace") == ns and ref.get("name") == name:
        for k, v in e.get("annotations", {}).items():
            print(f"{k}={v}")
PY
}

mode_row() { # mode_row MODE LABEL LABELED SGLANG
  local mode="$1" label="$2" labeled="$3" sglang="$4" ns="mode-$1" out err stored
  make_ns "$ns" "$([ "$label" = - ] || echo "$label")"

  vllm_deployment vllm | k -n "$ns" create -f - >/dev/null
  stored="$(k -n "$ns" get deployment vllm -o jsonpath='{.spec.template.metadata.labels.alibabacloud\.com/inference-backend} {.spec.template.spec.containers[0].ports[0].name}')"
  if [ "$labeled" = yes ]; then expect_eq "stored backend label and port name" "$stored" "vllm http"
  else expect_eq "stored backend label and port name" "$stored" " "; fi

  local file name
  file="$(corpus_file "$SGLANG_NO_METRICS")"
  name="$(only_kinds Deployment "$file" | k create --dry-run=client -f - -o jsonpath='{.metadata.name}')"
  set +e
  out="$(only_kinds Deployment "$file" | k -n "$ns" create -f - 2>"$E2E_DIR/stderr")"; local rc=$?
  set -e
  err="$(cat "$E2E_DIR/stderr")"
  echo "  kubectl create: exit $rc; stdout: $out; stderr: $err"
  case "$sglang" in
    denied)
      [ "$rc" -ne 0 ] || fail "the create was not denied"
      expect_contains "kubectl's error" "$err" 'admission webhook "enforce.mutate.inference-webhook.io" denied the request'
      expect_contains "kubectl's error (rule id)" "$err" "metrics-disabled"
      expect_contains "kubectl's error (fix)" "$err" "add --enable-metrics"
      ! k -n "$ns" get deployment "$name" >/dev/null 2>&1 || fail "a denied object was stored" ;;
    warned)
      [ "$rc" -eq 0 ] || fail "the create failed"
      expect_contains "kubectl's warnings" "$err" "Warning: metrics-disabled"
      expect_eq "stored backend label" "$(k -n "$ns" get deployment "$name" -o jsonpath='{.spec.template.metadata.labels.alibabacloud\.com/inference-backend}')" sglang ;;
    annotated)
      [ "$rc" -eq 0 ] || fail "the create failed"
      expect_contains "kubectl's warnings" "$err" "Warning: metrics-disabled"
      expect_eq "stored backend label" "$(k -n "$ns" get deployment "$name" -o jsonpath='{.spec.template.metadata.labels.alibabacloud\.com/inference-backend}')" ""
      local annotations
      annotations="$(audit_annotations "$ns" "$name")"
      expect_contains "audit log annotations" "$annotations" "audit.mutate.inference-webhook.io/findings=deny:metrics-disabled@"
      expect_contains "audit log annotations" "$annotations" "audit.validate.inference-webhook.io/findings=deny:metrics-disabled@" ;;
    untouched)
      [ "$rc" -eq 0 ] || fail "the create failed"
      expect_not_contains "kubectl's stderr" "$err" "Warning"
      expect_eq "stored backend label" "$(k -n "$ns" get deployment "$name" -o jsonpath='{.spec.template.metadata.labels.alibabacloud\.com/inference-backend}')" "" ;;
  esac
}

while read -r mode label labeled sglang; do
  [ -n "$mode" ] || continue
  scenario "namespace mode $mode: vLLM labeled=$labeled, SGLang without metrics $sglang" mode_row "$mode" "$label" "$labeled" "$sglang"
done <<<"$MODE_ROWS"
