#!/usr/bin/env bash
# Builds the control-plane binaries into .cache/controlplane/<release>/bin, once per release.
# A second run with every binary present builds nothing. Usage: tests/controlplane/build.sh [cache-root]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# The release is whatever go.mod requires: one place to bump it.
release="$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$here/go.mod")"
cache="${1:-${CONTROLPLANE_CACHE:-$root/.cache/controlplane}}"
bin="$cache/$release/bin"
tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)

missing=()
for t in "${tools[@]}"; do [ -x "$bin/$t" ] || missing+=("$t"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "control plane $release: cached in $bin"
  exit 0
fi
mkdir -p "$bin"
# The same -X flags Kubernetes' hack/lib/version.sh sets, so `kubectl version` reports the real release.
major="${release#v}"; major="${major%%.*}"
minor="${release#v*.}"; minor="${minor%%.*}"
date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ld="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld+=" -X $pkg.gitVersion=$release -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ld+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000 -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
done
cd "$here"
start=$SECONDS
for t in "${missing[@]}"; do
  case "$t" in
    etcd) pkg=./cmd/etcd ;;
    kwok) pkg=sigs.k8s.io/kwok/cmd/kwok ;;
    *) pkg=k8s.io/kubernetes/cmd/$t ;;
  esac
  echo "building $t ($pkg)"
  go build -mod=mod -trimpath -ldflags "$ld" -o "$bin/$t.tmp" "$pkg"
  mv "$bin/$t.tmp" "$bin/$t"
done
echo "control plane $release: built ${missing[*]} in $((SECONDS - start)) s into $bin"
