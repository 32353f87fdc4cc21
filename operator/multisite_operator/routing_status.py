"""Whether the routing layer accepted each host: `status.sites[].hosts[]`, the `Routed` condition, `routedHosts`.

The operator writes what should be routed; only the routing layer's controller can say whether it is. It reads
what that controller reports, never guesses:
- HTTPRoutes: each parent's `Accepted` and `ResolvedRefs` conditions (at the route's current generation), and,
  for a Gateway it can read, whether one of the listeners the route attaches to allows the host at all: a route is
  Accepted when any of its hostnames matches a listener, and the others are silently ignored (Gateway API
  `spec.hostnames`), so per-host truth needs the listeners' `hostname`.
- The Ingress: an address in `status.loadBalancer.ingress`. Some controllers never set one, so a host without it
  is `Unknown`, not `False`.
Routed is informational: it is not part of Ready (an Ingress controller that publishes no address would otherwise
keep every project unready forever), and `Unknown` for "nobody reported yet" keeps its Events Normal.
"""

from __future__ import annotations

from typing import Any

from . import conditions as cond
from .models import MultiSiteProjectSpec, Site
from .obj import Key, Obj

ROUTED = cond.ROUTED
R_ACCEPTED, R_ADDRESS_ASSIGNED, R_NO_ADDRESS, R_PENDING = "Accepted", "AddressAssigned", "NoAddress", "Pending"
R_NOT_ROUTED, R_NO_MATCHING_LISTENER, R_NOT_CREATED = "NotRouted", "NoMatchingListenerHostname", "NotCreated"
R_ROUTING_DISABLED = "RoutingDisabled"
GATEWAY_GROUP = "gateway.networking.k8s.io"
HTTPROUTES = (f"{GATEWAY_GROUP}/v1", "httproutes")  # (group/version, plural) as API discovery lists it
Gateways = dict[tuple[str, str], Obj]  # (namespace, name) -> Gateway as the operator's cache holds it


def host_roles(spec: MultiSiteProjectSpec, site: Site) -> list[tuple[str, str]]:
    d = spec.site_domains(site)
    roles = [(d.domain, "primary"), *((h, "alias") for h in d.aliases), *((h, "redirect") for h in d.redirects)]
    return list(dict.fromkeys(roles))


def hostname_matches(listener: str | None, host: str) -> bool:
    """Gateway API listener/route hostname intersection (a wildcard is a suffix match, any depth)."""
    if not listener:
        return True
    if host.startswith("*."):
        suffix = host[1:]
        return listener.endswith(suffix) if not listener.startswith("*.") else (
            listener[1:] == suffix or listener[1:].endswith(suffix) or suffix.endswith(listener[1:]))
    if listener.startswith("*."):
        return host.endswith(listener[1:])
    return listener == host


def _entry(host: str, role: str, routed: str, reason: str, message: str = "") -> Obj:
    entry = {"name": host, "role": role, "routed": routed, "reason": reason}
    if message:
        entry["message"] = message
    return entry


def _parent_status(route: Obj, ref: Obj) -> Obj | None:
    ns = route["metadata"].get("namespace")
    for parent in (route.get("status") or {}).get("parents") or []:
        p = parent.get("parentRef") or {}
        if (p.get("name") == ref["name"] and (p.get("namespace") or ns) == (ref.get("namespace") or ns)
                and p.get("sectionName") == ref.get("sectionName")):
            return parent
    return None


def _listener_problem(gateway: Obj | None, ref: Obj, host: str) -> str | None:
    """Why no listener of this parent allows the host, or None (also when the Gateway is not readable)."""
    if gateway is None:
        return None
    listeners = [li for li in (gateway.get("spec") or {}).get("listeners") or []
                 if not ref.get("sectionName") or li.get("name") == ref["sectionName"]]
    if any(hostname_matches(li.get("hostname"), host) for li in listeners):
        return None
    allowed = ", ".join(sorted({li.get("hostname") or "*" for li in listeners})) or "none"
    gw = f"Gateway {gateway['metadata'].get('namespace')}/{ref['name']}"
    if ref.get("sectionName"):
        return f"listener {ref['sectionName']} of {gw} does not allow {host} (its hostname: {allowed})"
    return f"no listener of {gw} allows {host} (listener hostnames: {allowed})"


def route_host(route: Obj | None, gateways: Gateways, host: str, role: str) -> Obj:
    """One host of an HTTPRoute: True only when every parent accepted the route, resolved its backends, and a
    listener of it allows the host."""
    if route is None:
        return _entry(host, role, "Unknown", R_NOT_CREATED, "its HTTPRoute does not exist yet")
    ns, generation = route["metadata"].get("namespace"), route["metadata"].get("generation")
    for ref in (route.get("spec") or {}).get("parentRefs") or []:
        gw = f"Gateway {ref.get('namespace') or ns}/{ref['name']}"
        problem = _listener_problem(gateways.get((ref.get("namespace") or ns, ref["name"])), ref, host)
        if problem:
            return _entry(host, role, "False", R_NO_MATCHING_LISTENER, problem)
        parent = _parent_status(route, ref)
        found = {c.get("type"): c for c in (parent or {}).get("conditions") or []}
        for kind in ("Accepted", "ResolvedRefs"):
            c = found.get(kind)
            if c is None or (generation and (c.get("observedGeneration") or 0) < generation):
                return _entry(host, role, "Unknown", R_PENDING, f"{gw} has not reported {kind} for HTTPRoute "
                              f"{route['metadata']['name']} yet")
            if c.get("status") != "True":
                return _entry(host, role, "False", c.get("reason") or R_NOT_ROUTED,
                              f"{gw}: {kind}=False: {c.get('message') or c.get('reason')}")
    return _entry(host, role, "True", R_ACCEPTED)


def ingress_host(ingress: Obj | None, host: str, role: str) -> Obj:
    if ingress is None:
        return _entry(host, role, "Unknown", R_NOT_CREATED, "the Ingress does not exist yet")
    if ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
        return _entry(host, role, "True", R_ADDRESS_ASSIGNED)
    return _entry(host, role, "Unknown", R_NO_ADDRESS, "the Ingress has no load-balancer address (some ingress "
                  "controllers never publish one)")


def site_hosts(spec: MultiSiteProjectSpec, site: Site, routes_by_host: dict[str, Obj | None],
               ingress: Obj | None, gateways: Gateways) -> list[Obj]:
    """status.sites[].hosts for one site, in the order of its domains."""
    out = []
    for host, role in host_roles(spec, site):
        if spec.routing() == "gateway":
            out.append(route_host(routes_by_host.get(host), gateways, host, role))
        elif spec.routing() == "ingress":
            out.append(ingress_host(ingress, host, role))
        else:
            out.append(_entry(host, role, "Unknown", R_ROUTING_DISABLED, "spec.ingress.enabled is false"))
    return out


def hosts_by_route(desired: list[Obj], current: dict[Key, Obj]) -> dict[str, Obj | None]:
    """host -> the observed HTTPRoute that lists it (None when that route is not in the cluster yet)."""
    out: dict[str, Obj | None] = {}
    for d in desired:
        if d["kind"] == "HTTPRoute":
            have = current.get(("HTTPRoute", d["metadata"]["name"]))
            # What the route says only counts once it lists the host (an older generation may not).
            listed = set((have or {}).get("spec", {}).get("hostnames") or [])
            for host in d["spec"]["hostnames"]:
                out[host] = have if host in listed else None
    return out


def annotate(spec: MultiSiteProjectSpec, sites: list[Obj], desired: list[Obj], current: dict[Key, Obj],
             gateways: Gateways, handover: str | None = None) -> tuple[cond.Condition, str]:
    """Adds `hosts` to every status.sites entry; returns the Routed condition and the `routed/total` count."""
    routes = hosts_by_route(desired, current) if spec.routing() == "gateway" else {}
    ingress = next((c for k, c in current.items() if k[0] == "Ingress"), None)
    entries: list[Obj] = []
    for entry, site in zip(sites, spec.sites):
        entry["hosts"] = site_hosts(spec, site, routes, ingress, gateways)
        entries += entry["hosts"]
    ok = [e for e in entries if e["routed"] == "True"]
    count = f"{len(ok)}/{len(entries)}"
    routed = routed_condition(spec, entries, handover)
    # A host keeps its message only when refused: "not reported yet" is the same for every host and said once, in
    # Routed (at 1000 sites x 3 hosts the repeated text alone would add about 400 KB to the status).
    for e in entries:
        if e["routed"] != "False":
            e.pop("message", None)
    return routed, count


def routed_condition(spec: MultiSiteProjectSpec, entries: list[Obj], handover: str | None) -> cond.Condition:
    layer = "HTTPRoutes" if spec.routing() == "gateway" else "Ingress"
    bad = [e for e in entries if e["routed"] == "False"]
    unknown = [e for e in entries if e["routed"] == "Unknown"]
    suffix = f"; {handover}" if handover else ""
    if bad:
        first = bad[0]
        names = ", ".join(e["name"] for e in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        return cond.condition(ROUTED, False, first["reason"], f"{len(bad)} of {len(entries)} hosts not routed "
                              f"({names}): {first.get('message', '')}{suffix}"[:1024])
    if unknown:
        first = unknown[0]
        return cond.condition(ROUTED, "Unknown", first["reason"], f"{len(unknown)} of {len(entries)} hosts not "
                              f"confirmed by the {layer}'s controller yet: {first.get('message', '')}{suffix}"[:1024])
    return cond.condition(ROUTED, True, R_ACCEPTED if spec.routing() == "gateway" else R_ADDRESS_ASSIGNED,
                          f"all {len(entries)} hosts accepted by the {layer}'s controller{suffix}")


def slim_gateway(body: Any) -> Obj:
    """What the listener check reads of a Gateway: its listeners' names and hostnames."""
    meta = body.get("metadata", {})
    listeners = [{"name": li.get("name"), "hostname": li.get("hostname")}
                 for li in (body.get("spec") or {}).get("listeners") or []]
    return {"metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
            "spec": {"listeners": listeners}}
