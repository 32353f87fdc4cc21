"""The private network namespace real serving needs, and the guard that refuses to serve outside it.

Why: pod IPs (10.0.0.0/16, kwok's range) are real private addresses on the host's network. Processes may listen
on them, and requests may go to them, only inside a network namespace the test run made itself, in which that
range is a local route (`make test` and `make routes` run under `unshare -n` with
`ip route add local 10.0.0.0/16 dev lo`). Outside one, nothing here starts.
"""

from __future__ import annotations

import ipaddress
import subprocess

POD_RANGE = "10.0.0.0/16"


class NotInPrivateNetns(RuntimeError):
    """Real serving was asked for outside the private network namespace."""


def pod_range_is_local() -> bool:
    """True when `ip route show table local` routes the whole pod range to this namespace's loopback."""
    try:
        out = subprocess.run(["ip", "route", "show", "table", "local"], capture_output=True, text=True,
                             timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    want = ipaddress.ip_network(POD_RANGE)
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "local" and parts[2:4] == ["dev", "lo"]:
            try:
                if want.subnet_of(ipaddress.ip_network(parts[1], strict=False)):
                    return True
            except ValueError:
                continue
    return False


def require_private_netns() -> None:
    """Raise unless the pod range is local here: never listen on or connect to 10.0.x.x otherwise."""
    if not pod_range_is_local():
        raise NotInPrivateNetns(
            f"refusing to serve: {POD_RANGE} is not a local route in this network namespace, so pod IPs would be "
            "real network addresses. Run inside the private namespace `make test` / `make routes` create "
            f"(unshare -n; ip link set lo up; ip route add local {POD_RANGE} dev lo)."
        )
