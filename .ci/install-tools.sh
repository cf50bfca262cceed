#!/usr/bin/env bash
# Installs the CI-format consumers the audit tests read their output back with (cached, idempotent):
#   npm @microsoft/sarif-multitool-linux  -> $CACHE/sarif/node_modules/.bin/sarif-multitool-linux (`validate`)
#   PyPI junitparser and pre-commit       -> $CACHE/venv-tools/bin/{python,pre-commit}
# $CACHE is $INFERENCE_WEBHOOK_CI_CACHE (default ~/.cache/inference-webhook-ci), the cache that
# .ci/check-manifests.sh fills with helm and kubectl. Called by .ci/run before `cargo test`.
set -euo pipefail

CACHE="${INFERENCE_WEBHOOK_CI_CACHE:-${HOME:-/root}/.cache/inference-webhook-ci}"
SARIF_PKG="@microsoft/sarif-multitool-linux@5.7.0"
PY_PKGS=("junitparser==5.0.3" "pre-commit==4.7.0")

log() { printf '== %s\n' "$*"; }
apt_updated=
apt_install() {
  local sudo; sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  if [ -z "$apt_updated" ]; then $sudo apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
command -v python3 >/dev/null || missing+=(python3 python3-venv)
command -v git >/dev/null || missing+=(git) # pre-commit try-repo clones a git repository
if [ "$(cat "$CACHE/sarif/.package" 2>/dev/null)" != "$SARIF_PKG" ]; then
  command -v npm >/dev/null || missing+=(npm)
fi
if [ "${#missing[@]}" -gt 0 ]; then log "apt-get install ${missing[*]}"; apt_install "${missing[@]}"; fi

if [ "$(cat "$CACHE/sarif/.package" 2>/dev/null)" != "$SARIF_PKG" ]; then
  log "npm install $SARIF_PKG ($CACHE/sarif)"
  rm -rf "$CACHE/sarif" && mkdir -p "$CACHE/sarif"
  npm install --silent --no-audit --no-fund --prefix "$CACHE/sarif" "$SARIF_PKG" >/dev/null
  echo "$SARIF_PKG" > "$CACHE/sarif/.package"
fi

if [ "$(cat "$CACHE/venv-tools/.package" 2>/dev/null)" != "${PY_PKGS[*]}" ]; then
  log "pip install ${PY_PKGS[*]} (venv $CACHE/venv-tools)"
  rm -rf "$CACHE/venv-tools"
  python3 -m venv "$CACHE/venv-tools" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$CACHE/venv-tools"; }
  "$CACHE/venv-tools/bin/pip" install --quiet --disable-pip-version-check "${PY_PKGS[@]}"
  echo "${PY_PKGS[*]}" > "$CACHE/venv-tools/.package"
fi

"$CACHE/sarif/node_modules/.bin/sarif-multitool-linux" --version | head -1
"$CACHE/venv-tools/bin/pre-commit" --version
