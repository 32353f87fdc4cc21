"""Switching a live project between the Ingress and the Gateway API: the old routing serves until the new one does.

Like a mode switch (modes/switch.py): to the Gateway API, the Ingress stays until every HTTPRoute exists as
rendered and every parent Gateway has Accepted it at its current generation; then the Ingress is pruned. Back to
the Ingress, the HTTPRoutes stay until the Ingress exists as rendered (an Ingress has no portable acceptance signal:
many controllers never publish an address, so waiting for one could keep the routes forever).
"""

from __future__ import annotations

from .apply import needs_apply
from .models import MultiSiteProjectSpec
from .obj import Key, Obj, key


def accepted(route: Obj | None) -> bool:
    """Every parentRef of the route reports Accepted=True for the route's current generation."""
    if route is None:
        return False
    generation = route["metadata"].get("generation") or 0
    parents = (route.get("status") or {}).get("parents") or []
    refs = (route.get("spec") or {}).get("parentRefs") or []
    if len(parents) < len(refs):
        return False
    return all(any(c.get("type") == "Accepted" and c.get("status") == "True"
                   and (c.get("observedGeneration") or 0) >= generation for c in p.get("conditions") or [])
               for p in parents)


def keeps(spec: MultiSiteProjectSpec, desired: list[Obj], children: list[Obj], observed: dict[Key, Obj]) -> set[Key]:
    """The old routing layer's objects to keep although no longer desired (empty when nothing is handed over)."""
    routes = [d for d in desired if d["kind"] == "HTTPRoute"]
    ingresses = [d for d in desired if d["kind"] == "Ingress"]
    old = [c for c in children if c["kind"] == ("Ingress" if routes else "HTTPRoute")]
    if not old or not (routes or ingresses):  # nothing to hand over (comparing a 1000-site Ingress costs ~0.1 s)
        return set()
    if routes:
        ready = all(accepted(observed.get(key(r))) and not needs_apply(r, observed.get(key(r))) for r in routes)
    else:
        ready = all(key(i) in observed and not needs_apply(i, observed.get(key(i))) for i in ingresses)
    return set() if ready else {key(c) for c in old}


def note(spec: MultiSiteProjectSpec, kept: set[Key]) -> str | None:
    if not kept:
        return None
    if spec.routing() == "gateway":
        return "switching to the Gateway API: the Ingress serves until every HTTPRoute is Accepted"
    return "switching to the Ingress: the HTTPRoutes serve until the Ingress exists"
