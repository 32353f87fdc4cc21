"""The projects' Deployments and Services, watched outside kopf (informer.py): the informer cache their reconciles
read, and the trigger of a reconcile when one changes in a way a reconcile can act on.

These two kinds bring most of a rollout's child events (a Deployment's status is written several times while it
rolls out: ~5 events per site and roll); Jobs, Ingresses and HTTPRoutes, a few per project, stay on kopf's
indexes (handlers.py). Both kinds of cache hand the controller the same thing: per project, the slim bodies
(handlers.slim) of the children whose controller reference is that project (handlers.owning_project).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .handlers import owning_project, slim
from .observe import what_reconciles_read
from .obj import Obj

Key = tuple[str, str]


def watched(body: Obj) -> Obj:
    """What is kept of an object (informer.ListWatch's view, computed in its thread): whose child it is, the part
    of it a reconcile acts on, and its slim body."""
    meta = body.get("metadata") or {}
    project = owning_project(body, meta.get("labels") or {})
    return {"uid": meta.get("uid", ""), "project": (meta.get("namespace", ""), project) if project else None,
            "read": what_reconciles_read(body), "body": slim(body) if project else None}


@dataclass
class Children:
    """One kind of child, by project; `get` reads like a kopf index (controller.CHILD_INDEXES)."""

    trigger: Callable[[Key], None]
    deleted: Callable[[Key, Obj], None]  # controller.child_deleted
    by_project: dict[Key, dict[str, Obj]] = field(default_factory=dict)
    _where: dict[str, tuple[Key, Any]] = field(default_factory=dict)  # uid -> (project, what a reconcile reads)

    def get(self, key: Key, default: Any = ()) -> Any:
        found = self.by_project.get(key)
        return list(found.values()) if found else default

    def event(self, kind: str, view: Obj) -> None:
        """`view` as `watched` sees it. An event that leaves what a reconcile reads the same triggers none (Job and
        Deployment status writes on their way, observe.what_reconciles_read); a Service's every event counts."""
        uid, key = view["uid"], view["project"]
        before = self._where.get(uid)
        if kind == "DELETED" or key is None:  # gone, or no longer ours (a label or owner reference removed)
            self._drop(uid, view["body"] if kind == "DELETED" else None)
            return
        self.by_project.setdefault(key, {})[uid] = view["body"]
        self._where[uid] = (key, view["read"])
        if before is not None and before[0] != key:
            self._remove(uid, before[0])
            self.trigger(before[0])
        elif before is not None and view["read"] is not None and before[1] == view["read"]:
            return
        self.trigger(key)

    def listed(self, namespace: str | None, views: list[Obj]) -> None:
        """Everything there is in `namespace` (None: everywhere): what is not among it was deleted meanwhile."""
        for view in views:
            self.event("ADDED", view)
        there = {v["uid"] for v in views}
        for uid, (key, _) in list(self._where.items()):
            if uid not in there and namespace in (None, key[0]):
                self._drop(uid, self.by_project.get(key, {}).get(uid))

    def _drop(self, uid: str, body: Obj | None) -> None:
        before = self._where.pop(uid, None)
        if before is None:
            return
        key = before[0]
        kept = self._remove(uid, key)
        self.deleted(key, body or kept or {})
        self.trigger(key)

    def _remove(self, uid: str, key: Key) -> Obj | None:
        found = self.by_project.get(key, {})
        kept = found.pop(uid, None)
        if not found:
            self.by_project.pop(key, None)
        return kept
