"""Gateway API routing: per site, HTTPRoutes to the site's Service, and the redirect hosts answered at the edge.

Checked against the Gateway API v1.6.3 standard CRD (gateway.networking.k8s.io_httproutes.yaml):
- `spec.hostnames` holds at most 16 names and applies to every rule of the route, so a site's served hosts
  (domain, aliases) and its redirect hosts go into separate routes, each cut into chunks of 16.
- a rule with a `RequestRedirect` filter must have no backendRefs (CEL on `rules[]`); `statusCode` is one of
  301/302/303/307/308; without `scheme` Traefik answers a scheme-less Location (`//host/path`), so it is set; with
  a scheme and no port the port is the scheme's well-known one; no `path` modifier keeps path and query.
- wildcard hostnames (`*.example.com`) are allowed as the first label, like our aliases; the Gateway API matches
  them as a suffix (any depth), the Ingress one label deep.
"""

from __future__ import annotations

from ..models import MultiSiteProjectSpec, Site
from ..naming import component_labels, route_name
from .pod import Obj, Owner, metadata
from .workload import SERVICE_PORT

API_VERSION = "gateway.networking.k8s.io/v1"
KIND = "HTTPRoute"
HOSTNAMES_MAX = 16  # HTTPRoute spec.hostnames maxItems


def chunks(hosts: list[str], size: int = HOSTNAMES_MAX) -> list[list[str]]:
    return [hosts[i:i + size] for i in range(0, len(hosts), size)]


def parent_refs(spec: MultiSiteProjectSpec) -> list[Obj]:
    assert spec.gateway is not None
    refs = []
    for ref in spec.gateway.parent_refs:
        out: Obj = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": ref.name}
        if ref.namespace:
            out["namespace"] = ref.namespace
        if ref.section_name:
            out["sectionName"] = ref.section_name
        refs.append(out)
    return refs


def serve_rule(service: str) -> Obj:
    return {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [{"group": "", "kind": "Service", "name": service, "port": SERVICE_PORT, "weight": 1}],
    }


def redirect_rule(spec: MultiSiteProjectSpec, canonical: str) -> Obj:
    """301 to the site's primary domain, path and query kept, answered by the Gateway (no request reaches Django)."""
    return {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "filters": [{
            "type": "RequestRedirect",
            "requestRedirect": {"scheme": "https" if spec.https() else "http", "hostname": canonical,
                                "statusCode": 301},
        }],
    }


def route(spec: MultiSiteProjectSpec, owner: Owner, site: Site, name: str, hosts: list[str], rule: Obj) -> Obj:
    assert spec.gateway is not None
    labels = {**spec.gateway.labels, **component_labels(owner.name, "route", site.slug)}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata(owner, name, labels, dict(spec.gateway.annotations)),
        "spec": {"parentRefs": parent_refs(spec), "hostnames": hosts, "rules": [rule]},
    }


def site_routes(spec: MultiSiteProjectSpec, owner: Owner, site: Site, service: str) -> dict[str, Obj]:
    """The site's HTTPRoutes by role (`route:<slug>[:N]`, `redirect:<slug>[:N]`)."""
    d = spec.site_domains(site)
    served = list(dict.fromkeys([d.domain, *d.aliases]))
    redirects = [h for h in dict.fromkeys(d.redirects) if h not in served]
    out: dict[str, Obj] = {}
    for i, hosts in enumerate(chunks(served)):
        role = f"route:{site.slug}" + (f":{i}" if i else "")
        out[role] = route(spec, owner, site, route_name(owner.name, site.slug, "", i), hosts, serve_rule(service))
    for i, hosts in enumerate(chunks(redirects)):
        role = f"redirect:{site.slug}" + (f":{i}" if i else "")
        out[role] = route(spec, owner, site, route_name(owner.name, site.slug, "redirect", i), hosts,
                          redirect_rule(spec, d.domain))
    return out
