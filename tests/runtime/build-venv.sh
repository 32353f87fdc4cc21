#!/usr/bin/env bash
# Builds the Divio Django runtime's venv for the real-serving tests into .cache/runtime/<key>/, once per key.
# The key is a hash of what goes in (requirements, constraints, this script, the vendored archives, the Python
# version), so a change of any pin builds a new venv and an unchanged one builds nothing.
#
# Output (prints the directory on its last line):
#   .cache/runtime/<key>/venv/            the venv (Django 3.2, aldryn-django, django CMS, django-multisite-plus)
#   .cache/runtime/<key>/addons/<name>/   the vendored add-ons' aldryn_config.py/addon.json a Divio project holds
#   .cache/runtime/current                symlink to <key> (what tests/runtime/site uses)
#
# The three Divio sources no registry serves come from ../shared/vendor/divio/ next to the clone (MULTISITE_SHARED
# overrides where `shared` is). Usage: tests/runtime/build-venv.sh [cache-root]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${1:-${RUNTIME_CACHE:-$root/.cache/runtime}}"
PYTHON="${PYTHON:-python3}"

find_vendor() {  # the shared/ directory beside the clone (or beside a parent, for git worktrees)
  local dir
  if [ -n "${MULTISITE_SHARED:-}" ]; then
    [ -d "$MULTISITE_SHARED/vendor/divio" ] && { echo "$MULTISITE_SHARED/vendor/divio"; return; }
    echo "MULTISITE_SHARED=$MULTISITE_SHARED has no vendor/divio directory" >&2; return 1
  fi
  dir="$root"
  for _ in 1 2 3; do
    dir="$(dirname "$dir")"
    [ -d "$dir/shared/vendor/divio" ] && { echo "$dir/shared/vendor/divio"; return; }
  done
  echo "the Divio sources no registry serves were not found: expected ../shared/vendor/divio beside the clone" \
    "($(dirname "$root")/shared/vendor/divio); set MULTISITE_SHARED=/path/to/shared" >&2
  return 1
}

vendor="$(find_vendor)"
archives=(aldryn-django-3.2.24.0.tar.gz aldryn-django-cms-3.11.5.0.tar.gz django-multisite-plus-0.7.2-14346ab.tar.gz)
for a in "${archives[@]}"; do
  [ -f "$vendor/$a" ] || { echo "missing vendored archive $vendor/$a" >&2; exit 1; }
done

pyver="$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
key="$( { cat "$here/requirements.txt" "$here/constraints.txt" "$0"; (cd "$vendor" && sha256sum "${archives[@]}");
          echo "$pyver"; } | sha256sum | cut -c1-16)"
# Built where the cache really is (.ci/run links .cache/runtime to a per-machine directory), so the venv's own
# absolute paths stay valid for every clone that links to it.
mkdir -p "$cache"
cache="$(cd "$cache" && pwd -P)"
out="$cache/$key"
if [ -x "$out/venv/bin/python" ] && [ -f "$out/.complete" ]; then
  ln -sfn "$key" "$cache/current"
  echo "runtime venv: cached"
  echo "$out"
  exit 0
fi

start=$SECONDS
rm -rf "$out"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for a in "${archives[@]}"; do tar -xzf "$vendor/$a" -C "$work"; done

"$PYTHON" -m venv "$out/venv"
"$out/venv/bin/pip" install --quiet --disable-pip-version-check pip==24.0
# django-multisite-plus's archive has no .git for setuptools-scm to read its version from.
SETUPTOOLS_SCM_PRETEND_VERSION=0.7.2 "$out/venv/bin/pip" install --quiet --disable-pip-version-check \
  -r "$here/requirements.txt" -c "$here/constraints.txt" \
  "$work/aldryn-django-cms-3.11.5.0" "$work/django-multisite-plus-0.7.2-14346ab"
"$out/venv/bin/pip" check

# addons/<name>/ as a Divio project holds them: aldryn-addons reads each add-on's aldryn_config.py from there.
# The registry's aldryn-django wheel lacks these files, hence the archive.
for pair in aldryn-django:aldryn-django-3.2.24.0 aldryn-django-cms:aldryn-django-cms-3.11.5.0 \
            django-multisite-plus:django-multisite-plus-0.7.2-14346ab; do
  name="${pair%%:*}" src="$work/${pair#*:}"
  mkdir -p "$out/addons/$name"
  cp "$src/aldryn_config.py" "$src/addon.json" "$out/addons/$name/"
  echo '{}' > "$out/addons/$name/settings.json"
done
# The one edit the recipe requires: multisite-plus's aldryn_config.py reads settings["MIDDLEWARE_CLASSES"], which
# Django >= 2 projects do not have. Fail loudly if the line moved, rather than run an unedited copy.
conf="$out/addons/django-multisite-plus/aldryn_config.py"
grep -q 'settings\["MIDDLEWARE_CLASSES"\]' "$conf" || { echo "$conf: MIDDLEWARE_CLASSES line not found" >&2; exit 1; }
sed -i 's/settings\["MIDDLEWARE_CLASSES"\]/(settings.get("MIDDLEWARE_CLASSES") or settings["MIDDLEWARE"])/g' "$conf"

touch "$out/.complete"
ln -sfn "$key" "$cache/current"
echo "runtime venv: built in $((SECONDS - start)) s"
echo "$out"
