"""Events on a project, posted through our own API client rather than `kopf.event`.

Why not kopf.event: it finds kopf's settings and posting queue through context variables that kopf sets only inside
its own handlers. A reconcile started from our own tasks (the Lease loop activating a new leader, a timed retry
scheduled from there) has none, and kopf.event raised `LookupError: <ContextVar name='settings_var'>`: the reconcile
failed after its writes and its Events were lost (issue 14 item 4). Posting ourselves needs no context, so every
reconcile path posts the same way, and the post is a write like any other: refused once this replica's Lease has
expired (kube.KubeApi's guard).

The Event has the shape kopf posted (and `kubectl describe` shows): involvedObject the project, source and
reportingComponent `multisite-operator`. Posting runs as a task so a reconcile never waits on it; a failed post is
logged (reason and project only: the message may quote a Job's output) and not retried, as with kopf.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import datetime, timezone

from .kube import KubeApi
from .leader import NotLeader
from .obj import Obj

log = logging.getLogger(__name__)
COMPONENT = "multisite-operator"
MAX_MESSAGE_BYTES = 1024  # the API server's limit for an Event message, in bytes


def event_body(project: Obj, type_: str, reason: str, message: str, instance: str,
               now: datetime | None = None) -> Obj:
    """A core/v1 Event on `project` (a MultiSiteProject as the indexes hold it)."""
    meta = project["metadata"]
    at = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": meta["namespace"], "generateName": f"{meta['name']}."},
        "involvedObject": {"apiVersion": project.get("apiVersion"), "kind": project.get("kind"),
                           "name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid")},
        "type": type_,
        "reason": reason,
        "message": message.encode()[:MAX_MESSAGE_BYTES].decode(errors="ignore"),
        "action": "Reconcile",
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": at[:19] + "Z",
        "lastTimestamp": at[:19] + "Z",
        "eventTime": at,
        "count": 1,
    }


class EventPoster:
    """The reconciler's `emit` (reconcile.Emit): posts each Event in a task of its own, never blocking a reconcile."""

    def __init__(self, api: KubeApi, instance: str | None = None) -> None:
        self.api = api
        self.instance = (instance or os.environ.get("POD_NAME") or socket.gethostname())[:128]
        self._pending: set[asyncio.Task[None]] = set()  # strong references until each post finishes

    def __call__(self, project: Obj, type_: str, reason: str, message: str) -> None:
        body = event_body(project, type_, reason, message, self.instance)
        task = asyncio.get_running_loop().create_task(self._post(body))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, body: Obj) -> None:
        ref = body["involvedObject"]
        try:
            await self.api.create_event(ref["namespace"], body)
        except NotLeader:
            log.info("Event %s on %s/%s not posted: this replica no longer holds the Lease", body["reason"],
                     ref["namespace"], ref["name"])
        except Exception as exc:  # noqa: BLE001 - an Event is informational; the status already says it
            log.warning("could not post Event %s on %s/%s: %s %s", body["reason"], ref["namespace"], ref["name"],
                        type(exc).__name__, getattr(exc, "status", "") or "")

    async def drain(self) -> None:
        """Wait for the posts under way (tests, shutdown)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
