#!/usr/bin/env bash
# Fill the release's checksums and URLs into the files users install from (RELEASING.md):
#   deploy/krew/inference-webhook.yaml  version, homepage, each platform's uri and sha256
#   action.yml                          the linux-amd64 archive the Action downloads, and its sha256
#   DIST/SHA256SUMS                     sha256 of every archive, for the release page
# The repository URL comes from one place, Cargo.toml's `repository`; the version must be the
# crate's and the chart's appVersion.
#
# usage: scripts/release-fill.sh VERSION DIST [ROOT]
#   VERSION  e.g. 0.2.0 (no v)
#   DIST     directory holding inference-webhook-{linux-amd64,linux-arm64,darwin-arm64}.tar.gz
#   ROOT     repository root to edit (default: this checkout)
set -euo pipefail

version="${1:?usage: release-fill.sh VERSION DIST [ROOT]}"
dist="${2:?usage: release-fill.sh VERSION DIST [ROOT]}"
root="${3:-$(cd "$(dirname "$0")/.." && pwd)}"
platforms=(linux-amd64 linux-arm64 darwin-arm64)

[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] \
  || { echo "release-fill.sh: $version is not a SemVer version (no leading v)" >&2; exit 2; }
field() { sed -n "s/^$1 = \"\\(.*\\)\"\$/\\1/p" "$root/Cargo.toml" | head -n 1; }
repository="$(field repository)"
[[ "$repository" =~ ^https://github\.com/[^/]+/[^/]+$ ]] \
  || { echo "release-fill.sh: Cargo.toml repository is not https://github.com/OWNER/NAME: $repository" >&2; exit 1; }
[ "$(field version)" = "$version" ] \
  || { echo "release-fill.sh: Cargo.toml version is $(field version), not $version" >&2; exit 1; }
app_version="$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' "$root/charts/inference-webhook/Chart.yaml")"
[ "$app_version" = "$version" ] \
  || { echo "release-fill.sh: Chart.yaml appVersion is $app_version, not $version" >&2; exit 1; }

declare -A sums
for platform in "${platforms[@]}"; do
  archive="$dist/inference-webhook-$platform.tar.gz"
  [ -f "$archive" ] || { echo "release-fill.sh: missing $archive" >&2; exit 1; }
  tar -tzf "$archive" | grep -qx 'inference-webhook' \
    || { echo "release-fill.sh: $archive does not hold the binary inference-webhook at its top" >&2; exit 1; }
  sums[$platform]="$(sha256sum "$archive" | cut -d' ' -f1)"
done
(cd "$dist" && sha256sum inference-webhook-*.tar.gz > SHA256SUMS)

download="$repository/releases/download/v$version"
krew="$root/deploy/krew/inference-webhook.yaml"
# Each platform's uri line is followed by its sha256 line.
awk -v version="v$version" -v repository="$repository" -v download="$download" \
    -v sums="$(for p in "${platforms[@]}"; do printf '%s=%s ' "$p" "${sums[$p]}"; done)" '
  BEGIN { n = split(sums, pairs, " "); for (i = 1; i <= n; i++) { split(pairs[i], kv, "="); sum[kv[1]] = kv[2] } }
  /^  version: / { print "  version: " version; next }
  /^  homepage: / { print "  homepage: " repository; next }
  /^      uri: / { match($0, /inference-webhook-[a-z0-9]+-[a-z0-9]+\.tar\.gz/); file = substr($0, RSTART, RLENGTH)
                   platform = substr(file, 19, length(file) - 25); print "      uri: " download "/" file; next }
  /^      sha256: / { print "      sha256: \"" sum[platform] "\""; next }
  { print }' "$krew" > "$krew.new"
mv "$krew.new" "$krew"

action="$root/action.yml"
sed -i \
  -e "s|^\(        RELEASE_ARCHIVE: \).*|\1$download/inference-webhook-linux-amd64.tar.gz|" \
  -e "s|^\(        RELEASE_SHA256: \).*|\1\"${sums[linux-amd64]}\"|" \
  "$action"

grep -q "sha256: \"0\{64\}\"" "$krew" && { echo "release-fill.sh: a krew checksum is still empty" >&2; exit 1; }
echo "filled v$version from $repository: $krew, $action, $dist/SHA256SUMS"
