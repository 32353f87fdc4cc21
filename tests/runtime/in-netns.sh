#!/bin/sh
# Runs a command inside a private network namespace in which kwok's pod range (10.0.0.0/16) is local, so real
# processes can listen on pod IPs and nothing sent to them leaves the namespace (tests/runtime/netns.py checks it).
# Nothing inside can reach the outside network: install everything first. As root `unshare -n` is enough;
# otherwise `-r` maps the user to root in a new user namespace. Usage: tests/runtime/in-netns.sh CMD [ARGS...]
set -eu
[ "$#" -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
command -v unshare >/dev/null || { echo "unshare (util-linux) is required" >&2; exit 1; }
command -v ip >/dev/null || { echo "ip (iproute2) is required" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then flags=-n; else flags=-rn; fi
exec unshare $flags sh -c 'ip link set lo up && ip route add local 10.0.0.0/16 dev lo && exec "$@"' in-netns "$@"
