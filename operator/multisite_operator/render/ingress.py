"""One Ingress per project with a host rule for every served domain, alias and redirect."""

from __future__ import annotations

from ..models import MultiSiteProjectSpec
from ..naming import component_labels, ingress_name, tls_secret_name
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
        body["tls"] = [
            {"hosts": list(seen), "secretName": spec.ingress.tls.secret_name or tls_secret_name(owner.name)}
        ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(
            owner, ingress_name(owner.name), component_labels(owner.name, "ingress"), dict(spec.ingress.annotations)
        ),
        "spec": body,
    }
