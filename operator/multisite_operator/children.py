"""The projects' Deployments and Services, watched outside kopf (informer.py): the informer cache their reconciles
read, and the trigger of a reconcile when one changes in a way a reconcile can act on.

These two kinds bring most of a rollout's child events (a Deployment's status is written several times while it
rolls out: ~5 events per site and roll); Jobs, Ingresses and HTTPRoutes, a few per project, stay on kopf's
indexes (handlers.py). Both kinds of cache hand the controller the same thing: per project, the slim bodies
(handlers.slim) of the children whose controller reference is that project (handlers.owning_project), kept by
informer.ByProject.
"""

from __future__ import annotations

from .handlers import owning_project, slim
from .observe import what_reconciles_read
from .obj import Obj

def watched(body: Obj) -> Obj:
    """What is kept of an object (informer.ListWatch's view, computed in its thread): whose child it is, the part
    of it a reconcile acts on, and its slim body."""
    meta = body.get("metadata") or {}
    project = owning_project(body, meta.get("labels") or {})
    return {"uid": meta.get("uid", ""), "project": (meta.get("namespace", ""), project) if project else None,
            "read": what_reconciles_read(body), "body": slim(body) if project else None}
