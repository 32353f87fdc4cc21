#!/usr/bin/env bash
# Builds the Traefik ingress controller into .cache/traefik/<version>/bin/traefik, once per version (the real-serving
# tests route their requests through it). With the binary present it builds nothing.
# Usage: tests/ingress/build.sh [cache-root]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# The version is whatever go.mod requires: one place to bump it.
version="$(awk '$1 == "require" && $2 == "github.com/traefik/traefik/v3" {print $3; exit}' "$here/go.mod")"
[ -n "$version" ] || { echo "tests/ingress/go.mod does not require github.com/traefik/traefik/v3" >&2; exit 1; }
cache="${1:-${TRAEFIK_CACHE:-$root/.cache/traefik}}"
bin="$cache/$version/bin"
if [ -x "$bin/traefik" ]; then
  echo "traefik $version: cached in $bin"
  exit 0
fi
[ -d /usr/local/go/bin ] && export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "Go is required to build Traefik from Go modules" >&2; exit 1; }
mkdir -p "$bin"
cd "$here"
start=$SECONDS
echo "building traefik $version (cold: about 7 minutes and 3 GB of memory on 2 cores)"
# -mod=readonly: go.sum is committed, so a fresh clone builds exactly the same module graph.
go build -mod=readonly -trimpath -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$version" \
  -o "$bin/traefik.tmp" github.com/traefik/traefik/v3/cmd/traefik
mv "$bin/traefik.tmp" "$bin/traefik"
echo "traefik $version: built in $((SECONDS - start)) s into $bin"
