"""cert-manager's view of each site's certificate, read-only: `status.sites[].certificate`.

With `ingress.tls` cert-manager's ingress-shim makes one Certificate per TLS entry, named after its Secret
(`<project>-tls-<slug>`, or `ingress.tls.secretName` for every site), and says in its `Ready` condition whether it
was issued: a domain whose DNS is not pointed yet shows here, per site, instead of in cert-manager's logs. Only
asked when cert-manager's Certificate CRD is served (API discovery); without cert-manager nothing is read or
written. Certificates are never created, changed or deleted by the operator. With `spec.gateway`, TLS and its
certificates belong to the Gateway's listeners, not to a site, so nothing is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .models import MultiSiteProjectSpec, Site
from .naming import site_tls_secret_name
from .obj import Obj

CERTIFICATES = ("cert-manager.io/v1", "certificates")  # (group/version, plural) as API discovery lists it
Lookup = Callable[[str], Obj | None]  # certificate name in the project's namespace -> the cached Certificate


def certificate_name(spec: MultiSiteProjectSpec, project: str, site: Site) -> str:
    return spec.ingress.tls.secret_name or site_tls_secret_name(project, site.slug)


def wanted(spec: MultiSiteProjectSpec) -> bool:
    """Whether the project's TLS is cert-manager's business at all (an Ingress with TLS)."""
    return spec.routing() == "ingress" and spec.ingress.tls.enabled


def site_certificate(name: str, cert: Obj | None) -> Obj:
    if cert is None:
        return {"name": name, "ready": "Unknown", "reason": "NotFound",
                "message": "cert-manager has no Certificate of this name (yet)"}
    ready = next((c for c in (cert.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None:
        return {"name": name, "ready": "Unknown", "reason": "Pending", "message": "cert-manager has not reported yet"}
    out = {"name": name, "ready": ready.get("status", "Unknown"), "reason": ready.get("reason") or "Ready"}
    if out["ready"] != "True" and ready.get("message"):
        out["message"] = str(ready["message"])[:512]
    return out


def annotate(spec: MultiSiteProjectSpec, project: str, sites: list[Obj], lookup: Lookup) -> None:
    """Adds `certificate` to every status.sites entry."""
    for entry, site in zip(sites, spec.sites):
        name = certificate_name(spec, project, site)
        entry["certificate"] = site_certificate(name, lookup(name))


def slim_certificate(body: Any) -> Obj:
    """What the status reads of a Certificate: its Ready condition."""
    conditions = [{k: c.get(k) for k in ("type", "status", "reason", "message")}
                  for c in (body.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
    return {"metadata": {"name": body.get("metadata", {}).get("name")}, "status": {"conditions": conditions}}
