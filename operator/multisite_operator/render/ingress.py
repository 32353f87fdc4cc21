"""One Ingress per project with a host rule for every served domain, alias and redirect.

TLS: one entry and Secret per site by default, so cert-manager asks for one certificate per site. One certificate
for every host would hit Let's Encrypt's 100 names per certificate, and a single host whose DNS is not pointed
yet would block issuance and renewal for every site. `ingress.tls.secretName` keeps one entry and Secret for all
hosts, for a pre-issued or wildcard certificate. The operator never creates or deletes these Secrets (cert-manager
or the user does): the Secret of the other layout stays where it is after a switch.
"""

from __future__ import annotations

from ..models import MultiSiteProjectSpec
from ..naming import component_labels, ingress_name, site_tls_secret_name
from .pod import Obj, Owner, metadata
from .workload import SERVICE_PORT


def ingress(spec: MultiSiteProjectSpec, owner: Owner, routes: list[tuple[str, str]]) -> Obj:
    """routes: (host, service name) pairs in order; a host listed twice keeps its first service."""
    seen: dict[str, str] = {}
    for host, svc in routes:
        seen.setdefault(host, svc)
    rules = [
        {
            "host": host,
            "http": {
                "paths": [
                    {
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": svc, "port": {"number": SERVICE_PORT}}},
                    }
                ]
            },
        }
        for host, svc in seen.items()
    ]
    body: Obj = {"rules": rules}
    if spec.ingress.class_name:
        body["ingressClassName"] = spec.ingress.class_name
    if spec.ingress.tls.enabled:
        body["tls"] = tls(spec, owner, list(seen))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(
            owner, ingress_name(owner.name), component_labels(owner.name, "ingress"), dict(spec.ingress.annotations)
        ),
        "spec": body,
    }


def tls(spec: MultiSiteProjectSpec, owner: Owner, hosts: list[str]) -> list[Obj]:
    """The Ingress's TLS entries for the routed hosts: one per site, or one for all with an explicit secretName."""
    if spec.ingress.tls.secret_name:
        return [{"hosts": hosts, "secretName": spec.ingress.tls.secret_name}]
    routed = set(hosts)
    entries = []
    for site in spec.sites:
        names = [h for h in dict.fromkeys(spec.site_domains(site).names()) if h in routed]
        routed.difference_update(names)
        if names:
            entries.append({"hosts": names, "secretName": site_tls_secret_name(owner.name, site.slug)})
    return entries
