#!/usr/bin/env bash
# `make image`: builds localhost/multisite-operator:dev with podman from this checkout.
#
# Why a script: the image has to be built where no Docker daemon runs and no image registry but the package
# registries answers. So it (1) installs podman and friends from Debian's packages when missing, (2) picks the base:
# the official python image pinned in the Dockerfile when it is present or can be pulled, else a python:3.11-slim
# equivalent made here from Debian packages (cached, keyed by what it is made of), (3) builds the Dockerfile
# unchanged on that base through its `ARG PYTHON_IMAGE`, and skips the build when nothing that goes into the image
# changed. The machine's needs (runc, ulimits: tests/image/containers.conf; the host CA bundle for pip) are flags
# of this script, never part of the image.
#
# Environment: IMAGE_TAG (default localhost/multisite-operator:dev), IMAGE_BASE=auto|official|local (default
# auto), IMAGE_REBUILD=1 to build even when the inputs are unchanged.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

TAG=${IMAGE_TAG:-localhost/multisite-operator:dev}
IMAGE_BASE=${IMAGE_BASE:-auto}
PACKAGES=(podman buildah runc fuse-overlayfs slirp4netns debootstrap)
SUITE=bookworm
BASE_INCLUDE=python3,python3-venv,python3-pip,python-is-python3
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/multisite-operator/image-base"
INPUTS_LABEL=dev.multisite-operator.inputs
export CONTAINERS_CONF="$PWD/tests/image/containers.conf"

say() { echo "image: $*" >&2; }

timed() {  # timed <name> <command...>: run it and say how long it took (the README and .ci/run report these)
  local name=$1 start=$SECONDS
  shift
  "$@"
  say "$name took $((SECONDS - start)) s"
}

install_packages() {
  local need=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
  done
  if [ ${#need[@]} -eq 0 ]; then
    return
  fi
  say "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

official_base() {  # the default of the Dockerfile's ARG PYTHON_IMAGE
  sed -n 's/^ARG PYTHON_IMAGE=//p' Dockerfile | head -n1
}

debian_mirror() {  # the machine's own Debian mirror (deb822 sources, or an old-style sources.list)
  local mirror=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '$1 == "URIs:" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' \
      /etc/apt/sources.list)
  fi
  echo "${mirror:-http://deb.debian.org/debian}"
}

# Makes a root filesystem equivalent to python:3.11-slim-bookworm from Debian packages into the tar file $1.
# Differences from the official image: Python is Debian's 3.11 (`python` through python-is-python3), packages go to
# /usr/local/lib/python3.11/dist-packages, and Debian's pip trusts the system CA bundle.
make_base_rootfs() {
  local out=$1 mirror=$2 rootfs
  rootfs=$(mktemp -d /tmp/multisite-base.XXXXXX)
  ROOTFS=$rootfs  # removed by cleanup, also when a step fails
  debootstrap --variant=minbase --include="$BASE_INCLUDE" "$SUITE" "$rootfs" "$mirror" >/dev/null
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then  # the security and updates suites too, as the host has them
    cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/"
    rm -f "$rootfs/etc/apt/sources.list"
  fi
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  mount -t proc proc "$rootfs/proc"
  chroot "$rootfs" sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get upgrade -y -qq >/dev/null && apt-get clean'
  umount "$rootfs/proc"
  rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/etc/resolv.conf
  # The official image has no PEP 668 marker; with it `pip install` in the Dockerfile refuses to run.
  rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
  tar --numeric-owner -C "$rootfs" -cf "$out.partial" .
  mv "$out.partial" "$out"
  rm -rf "$rootfs"
  ROOTFS=""
}

ROOTFS=""
cleanup() {
  if [ -n "$ROOTFS" ]; then
    umount "$ROOTFS/proc" 2>/dev/null || true
    rm -rf "$ROOTFS"
  fi
}
trap cleanup EXIT

forget_other_bases() {  # a changed recipe supersedes the older local bases: keep disk use to one base
  local key=$1 dir name
  for dir in "$CACHE"/*/; do
    [ -d "$dir" ] && [ "$(basename "$dir")" != "$key" ] && rm -rf "$dir"
  done
  for name in $(podman images --format '{{.Repository}}:{{.Tag}}' localhost/python | grep -- '-slim-local-' || true); do
    [ "$name" = "localhost/python:3.11-slim-local-$key" ] || podman rmi "$name" >/dev/null 2>&1 || true
  done
}

local_base() {  # prints the local base's name, making and importing it when it is not cached
  local mirror key name tarball
  mirror=$(debian_mirror)
  key=$( { declare -f make_base_rootfs; echo "$SUITE $BASE_INCLUDE $mirror"; } | sha256sum | cut -c1-16)
  name="localhost/python:3.11-slim-local-$key"
  if podman image exists "$name"; then
    echo "$name"
    return
  fi
  tarball="$CACHE/$key/rootfs.tar"
  if [ ! -f "$tarball" ]; then
    mkdir -p "$CACHE/$key"
    say "making the local base from Debian packages ($SUITE, $mirror) into $tarball"
    trap cleanup EXIT  # this runs in a $(...) subshell, which does not inherit the script's trap
    timed "base build" make_base_rootfs "$tarball" "$mirror" >&2  # stdout carries only the base's name
  fi
  forget_other_bases "$key"
  podman import --quiet --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' "$tarball" "$name" >/dev/null
  echo "$name"
}

choose_base() {
  local official
  official=$(official_base)
  case "$IMAGE_BASE" in
    official) echo "$official"; return ;;
    local) local_base; return ;;
    auto) ;;
    *) say "IMAGE_BASE must be auto, official or local, not '$IMAGE_BASE'"; exit 2 ;;
  esac
  if podman image exists "$official"; then
    echo "$official"
  elif ls "$CACHE"/*/rootfs.tar >/dev/null 2>&1; then
    local_base  # this machine could not pull the official base before; do not ask a registry again
  elif timeout 120 podman pull --quiet "$official" >/dev/null 2>&1; then
    echo "$official"
  else
    say "the official base $official cannot be pulled here: using a local one made from Debian packages"
    local_base
  fi
}

inputs_digest() {  # everything that goes into the image: the build context, the Dockerfile, the base, the flags
  local base=$1
  {
    podman image inspect --format '{{.Id}}' "$base"
    echo "${BUILD_FLAGS[*]}"
    find Dockerfile .dockerignore pyproject.toml README.md operator -type f \
      ! -path '*/__pycache__/*' ! -path '*.egg-info/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-64
}

main() {
  timed "podman install" install_packages
  local base digest current previous
  base=$(choose_base)
  BUILD_FLAGS=(--format docker --build-arg "PYTHON_IMAGE=$base")
  # The registries are reached through an intercepting proxy here: pip in RUN needs the host's CA bundle. A
  # build-time mount only: the image keeps its own.
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    BUILD_FLAGS+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  fi
  digest=$(inputs_digest "$base")
  current=$(podman image inspect --format "{{index .Labels \"$INPUTS_LABEL\"}}" "$TAG" 2>/dev/null || true)
  if [ "$current" = "$digest" ] && [ "${IMAGE_REBUILD:-0}" != 1 ]; then
    say "$TAG is up to date (base $base)"
    return
  fi
  previous=$(podman image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
  say "building $TAG on $base"
  # --no-cache: podman 4.3 reuses a cached stage under `RUN --mount=type=bind,from=build` and then finds no wheels
  # (podman issues 16281, 17119); the skip above is what makes a repeated `make image` fast.
  timed "image build" podman build --quiet --no-cache --layers=false "${BUILD_FLAGS[@]}" --label "$INPUTS_LABEL=$digest" \
    -t "$TAG" . >/dev/null
  if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$TAG")" ]; then
    podman rmi "$previous" >/dev/null 2>&1 || true  # the replaced image, unless something else still uses it
  fi
  say "$TAG built: $(podman image inspect --format '{{.Id}} {{.Size}}' "$TAG" | awk '{printf "%.12s, %d MB", $1, $2/1e6}')"
}

main "$@"
