# Server-side dry-run calls the webhook (sideEffects: None) and stores nothing; a workload opts out
# by label (the API server does not call the webhook at all: objectSelector) or by annotation
# (the webhook is called and leaves it alone), even one enforce mode would deny.

server_dry_run() {
  make_ns dry-run enabled
  local out
  out="$(vllm_deployment dry | k -n dry-run apply --server-side --dry-run=server -f - -o json)"
  expect_contains "dry-run result" "$out" '"alibabacloud.com/inference-backend": "vllm"'
  expect_contains "dry-run result" "$out" '"name": "http"'
  out="$(vllm_deployment dry2 | k -n dry-run apply --dry-run=server -f - -o json)"
  expect_contains "client-side apply dry-run result" "$out" '"alibabacloud.com/inference-workload": "dry2"'
  expect_eq "Deployments stored" "$(k -n dry-run get deployments -o name)" ""
}

reviews() { webhook_metric inference_webhook_reviews_total; }

# with_opt_out HOW: the SGLang Deployment without --enable-metrics (enforce would deny it), opted out.
opt_out() {
  local how="$1" ns="opt-out-$1" before after file
  make_ns "$ns" enabled
  file="$(corpus_file "$SGLANG_NO_METRICS")"
  before="$(reviews)"
  case "$how" in
    label) only_kinds Deployment "$file" | k label --local -f - inference-monitoring=disabled -o yaml | k -n "$ns" create -f - ;;
    annotation) only_kinds Deployment "$file" | k annotate --local -f - inference-webhook/skip=true -o yaml | k -n "$ns" create -f - ;;
  esac
  after="$(reviews)"
  expect_eq "stored backend label" "$(k -n "$ns" get deployments -o jsonpath='{.items[0].spec.template.metadata.labels.alibabacloud\.com/inference-backend}')" ""
  case "$how" in
    label) expect_eq "reviews the webhook answered" "$after" "$before" ;;
    annotation) [ "$after" -gt "$before" ] || fail "the webhook was not called"; echo "  reviews answered: $before -> $after" ;;
  esac
}

scenario "kubectl apply --dry-run=server returns the patched object and stores nothing" server_dry_run
scenario "opt-out label inference-monitoring=disabled: not sent to the webhook, not denied, not labeled" opt_out label
scenario "opt-out annotation inference-webhook/skip=true: the webhook allows it unchanged" opt_out annotation
