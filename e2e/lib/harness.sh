# Scenario runner and assertions. A scenario is a shell function; `scenario NAME FUNCTION ARGS...`
# runs it in a subshell under `set -euo pipefail` (any failing command fails it), logs its output
# to $E2E_LOGS/scenarios/, prints `ok`/`FAIL` and counts it. A scenario that exits with
# $NOT_EXERCISED (77) after printing why is counted apart and listed, never as passed.

E2E_PASSED=0
E2E_FAILED=0
E2E_NOT_EXERCISED=()
NOT_EXERCISED=77

scenario() {
  local name="$1"; shift
  local log="$E2E_LOGS/scenarios/$(printf '%03d' $((E2E_PASSED + E2E_FAILED + ${#E2E_NOT_EXERCISED[@]} + 1)))-${name//[^A-Za-z0-9._-]/_}.log"
  mkdir -p "$E2E_LOGS/scenarios"
  local rc start=$SECONDS
  set +e
  ( set -euo pipefail; "$@" ) >"$log" 2>&1 </dev/null
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    E2E_PASSED=$((E2E_PASSED + 1)); printf 'ok   %s (%ss)\n' "$name" $((SECONDS - start))
  elif [ "$rc" -eq "$NOT_EXERCISED" ]; then
    E2E_NOT_EXERCISED+=("$name: $(tail -1 "$log")"); printf 'NOT EXERCISED %s: %s\n' "$name" "$(tail -1 "$log")"
  else
    E2E_FAILED=$((E2E_FAILED + 1)); printf 'FAIL %s (exit %s, log %s)\n' "$name" "$rc" "$log"
    tail -25 "$log" | sed 's/^/     | /'
  fi
}

summary() {
  local item
  if [ "${#E2E_NOT_EXERCISED[@]}" -gt 0 ]; then
    echo "not exercised (counted neither passed nor failed):"
    for item in "${E2E_NOT_EXERCISED[@]}"; do echo "  - $item"; done
  fi
  echo "$E2E_PASSED passed, $E2E_FAILED failed"
  [ "$E2E_FAILED" -eq 0 ]
}

# --- assertions (each prints what it compared, so a failure's log says why) ------------------
fail() { echo "FAILED: $*" >&2; exit 1; }

expect_eq() { # expect_eq WHAT GOT WANT
  [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
  echo "  $1 = '$2'"
}

expect_contains() { # expect_contains WHAT HAYSTACK NEEDLE
  grep -qF -- "$3" <<<"$2" || { printf '%s\n' "$2" | tail -20 >&2; fail "$1: no '$3' in the output above"; }
  echo "  $1 contains '$3'"
}

expect_not_contains() { # expect_not_contains WHAT HAYSTACK NEEDLE
  ! grep -qF -- "$3" <<<"$2" || { printf '%s\n' "$2" | tail -20 >&2; fail "$1: unexpected '$3' in the output above"; }
  echo "  $1 lacks '$3'"
}

# --- cluster helpers ---------------------------------------------------------------------------
k() { "$KUBECTL" "$@"; }

# make_ns NAME [LABEL_VALUE]: a namespace, opted in with inference-monitoring=LABEL_VALUE when
# given (and not empty); waits for its default ServiceAccount (Pods cannot be created before it exists).
make_ns() {
  # Created with its label in one request: the API server's namespace cache never sees it unlabeled.
  k create -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $1
  labels: {${2:+inference-monitoring: $2}}
YAML
  wait_for 60 k -n "$1" get serviceaccount default
}

# The corpus lives beside the clone (../shared/corpus; CI always has it): a missing file fails.
corpus_file() {
  local file="$E2E_SHARED/corpus/$1"
  [ -f "$file" ] || fail "corpus file $1 absent (../shared/corpus)"
  echo "$file"
}

# The workload documents of a manifest file (kinds in $1, comma-separated), other kinds dropped:
# a corpus file may also hold Services, RuntimeClasses or ConfigMaps. Namespaces are dropped.
only_kinds() { # only_kinds KINDS FILE
  "$E2E_PY" - "$1" "$2" <<'EOF'
import sys, yaml
kinds = set(sys.argv[1].split(","))
docs = [d for d in yaml.safe_load_all(open(sys.argv[2])) if isinstance(d, dict) and d.get("kind") in kinds]
for d in docs:  # placed in the scenario's namespace (kubectl -n), whatever the file says
    d.get("metadata", {}).pop("namespace", None)
sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))
EOF
}
