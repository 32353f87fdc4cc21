"""Who owns a domain two projects list: the project that serves it keeps it; the second claim gets DomainConflict.

"Serves" must survive an operator restart, so it is read from the cluster, not from memory: a project serves a
host when its own status.sites[].domains lists it (status.sites is written only by a reconcile that was not
blocked, and a blocked project keeps its previous status.sites). So a project that adds a domain another project
already serves is the second claim and is blocked, however old it is. When both or neither list the host (both
created while the operator was down, or both stale), the older project keeps it (then the lower namespace/name).
Each project's served domains come from its spec parsed once per (uid, generation) (specs.SpecCache), so checking
claims costs no validation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .obj import ProjectKey
from .specs import SpecCache

# (0 when the project serves the host already else 1, creationTimestamp, namespace, name): sorts winner first.
Claim = tuple[int, str, str, str]


def serving_hosts(project: Mapping[str, Any]) -> set[str]:
    """The hosts the project's status says it serves (what its last unblocked reconcile routed)."""
    status = project.get("status") or {}
    return {d for s in status.get("sites") or [] for d in s.get("domains") or []}


def claims(project: Mapping[str, Any], hosts: Iterable[str]) -> dict[str, Claim]:
    """The project's claim on each host; its served hosts are collected once (thousands of hosts for a
    1000-site project: per host, that was the operator's largest CPU cost)."""
    meta = project.get("metadata") or {}
    serving = serving_hosts(project)
    stamp, namespace, name = meta.get("creationTimestamp", ""), meta.get("namespace", ""), meta.get("name", "")
    return {host: (0 if host in serving else 1, stamp, namespace, name) for host in hosts}


def claimed_domains(specs: SpecCache, project: Mapping[str, Any]) -> dict[str, Claim]:
    """The index entry of one project: each domain its spec asks for -> its claim on it."""
    return claims(project, specs.domains(dict(project)))


def ingress_hosts(ingress: Mapping[str, Any]) -> set[str]:
    """The hosts an Ingress routes (its rules' hosts)."""
    return {r["host"] for r in (ingress.get("spec") or {}).get("rules") or [] if r.get("host")}


def route_hosts(route: Mapping[str, Any]) -> set[str]:
    """The hostnames an HTTPRoute matches."""
    return set((route.get("spec") or {}).get("hostnames") or [])


def route_gateways(route: Mapping[str, Any], namespace: str) -> tuple[tuple[str, str], ...]:
    """The Gateways (namespace, name) an HTTPRoute attaches to (parentRefs of kind Gateway, the default)."""
    refs = (route.get("spec") or {}).get("parentRefs") or []
    return tuple(sorted({(r.get("namespace") or namespace, r.get("name", "")) for r in refs
                         if r.get("kind", "Gateway") == "Gateway"}))


def project_gateways(project: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The Gateways a project's spec.gateway names; empty when it routes through an Ingress."""
    namespace = (project.get("metadata") or {}).get("namespace", "")
    return set(route_gateways({"spec": (project.get("spec") or {}).get("gateway") or {}}, namespace))


def _foreign_holder(host: str, ingresses: Mapping[str, Any], routes: Mapping[str, Any],
                    gateways: set[tuple[str, str]]) -> str | None:
    """The Ingress, else the HTTPRoute on one of `gateways`, that routes `host` (first by namespace/name)."""
    if found := sorted(tuple(i[:2]) for i in ingresses.get(host, [])):
        return f"Ingress {found[0][0]}/{found[0][1]}"
    if found := sorted(tuple(r[:2]) for r in routes.get(host, []) if gateways & set(map(tuple, r[2]))):
        return f"HTTPRoute {found[0][0]}/{found[0][1]} on the same Gateway"
    return None


def conflicts(specs: SpecCache, key: ProjectKey, project: Mapping[str, Any],
              index: Mapping[str, Any] | None, foreign: Mapping[str, Any] | None = None,
              routes: Mapping[str, Any] | None = None) -> list[str]:
    """Domains another project has the better claim on, or that an Ingress the operator does not manage already
    routes, or an HTTPRoute it does not manage on one of the project's Gateways (the Gateway API gives a hostname
    to the oldest route, so ours would lose the traffic); one message each (empty when `index` is not filled yet).
    A host the project serves already stays its own even when a foreign Ingress or HTTPRoute lists it later: that
    is the second claim, and not ours to block."""
    if index is None:
        return []
    out = []
    gateways = project_gateways(project) if routes else set()
    for host, mine in claims(project, specs.domains(dict(project))).items():
        held = _foreign_holder(host, foreign or {}, routes or {}, gateways) if mine[0] != 0 else None
        if held:  # not served by the project yet, and routed by someone else
            out.append(f"domain {host} is already routed by {held}, which the operator does not manage")
            continue
        mine = (*mine[:2], *key)
        better = sorted(c for c in index.get(host, []) if tuple(c) < mine and tuple(c[2:]) != key)
        if better:
            how = "already served" if better[0][0] == 0 else "claimed first (an older project)"
            out.append(f"domain {host} is {how} by MultiSiteProject {better[0][2]}/{better[0][3]}")
    return out
