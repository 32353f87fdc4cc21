#!/usr/bin/env bash
# Fetches the Gateway API's standard-channel CRDs (sigs.k8s.io/gateway-api, the version below) from the Go module
# proxy into .cache/gateway-api/<version>/, once per version: the serving tests install them on their control plane
# (tests/ingress/gateway.py). vap_safeupgrades.yaml (a ValidatingAdmissionPolicy against downgrades) is left out,
# as in ../shared/reference/real-ingress-recipe.md: the CRDs themselves are what Traefik and the operator need.
# Usage: tests/ingress/gateway-crds.sh [cache-root]
set -euo pipefail
GATEWAY_API_VERSION=v1.6.3
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${1:-${GATEWAY_API_CACHE:-$root/.cache/gateway-api}}"
out="$cache/$GATEWAY_API_VERSION"
if [ -f "$out/.complete" ]; then
  echo "gateway-api $GATEWAY_API_VERSION CRDs: cached in $out"
  exit 0
fi
[ -d /usr/local/go/bin ] && export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "Go is required to fetch the Gateway API module" >&2; exit 1; }
# Outside any module: `go mod download` of one module@version prints its Dir in the module cache.
dir="$(cd / && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -d "$dir/config/crd/standard" ] || { echo "no config/crd/standard in sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION ($dir)" >&2; exit 1; }
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
for f in "$dir"/config/crd/standard/*.yaml; do
  case "$(basename "$f")" in *vap_*) continue ;; esac
  cp "$f" "$out.tmp/"
done
chmod -R u+w "$out.tmp"
touch "$out.tmp/.complete"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "gateway-api $GATEWAY_API_VERSION CRDs: $(ls "$out" | wc -l) files in $out"
