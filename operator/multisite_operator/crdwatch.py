"""Liveness that notices a deleted and re-created CRD: kopf may go on watching nothing, so the kubelet must restart us.

Why: kopf re-scans the API group when the MultiSiteProject CRD changes, but a CRD deleted and re-created (an
uninstall and reinstall, a `kubectl replace`) often leaves the same resource in its set: no watcher restarts, the old
one follows the deleted CRD, and the operator reconciles nothing while /healthz says 200 (issue 14 item 11: 2 runs of
3). A fresh process watches the new CRD correctly, so the fix is to be restarted: every `period` seconds this reads
the CRD's uid (one metadata-only LIST by name); once the uid it first saw has changed or gone, the liveness probe
fails from then on (kopf's /healthz answers 500) and the kubelet restarts the container (deploy/deployment.yaml's
livenessProbe). A CRD absent at start-up and created later is no problem (kopf starts a watcher for a resource it
did not have), so only a change from a uid seen counts.
"""

from __future__ import annotations

import asyncio
import logging

import kopf

from .kube import KubeApi
from .models import GROUP, PLURAL

log = logging.getLogger(__name__)
CRD_NAME = f"{PLURAL}.{GROUP}"
PERIOD = 5.0  # seconds between checks; see the README's reliability table for the time to a failing probe


class CrdWatch:
    def __init__(self, api: KubeApi, name: str = CRD_NAME, period: float = PERIOD) -> None:
        self.api = api
        self.name = name
        self.period = period
        self.seen: str | None = None  # the uid of the CRD kopf started watching
        self.problem: str | None = None  # set once the CRD changed under the watch; never cleared (restart)
        self.changed: tuple[str | None] | None = None  # a reading that differs, until the next one confirms it

    def observe(self, uid: str | None) -> None:
        """One reading of the CRD's uid."""
        if self.problem is not None:
            return
        if self.seen is None:
            self.seen = uid
        elif uid == self.seen:
            self.changed = None
        elif self.changed != (uid,):
            # Confirmed by the next reading first: CI saw one LIST come back without the CRD 5 s after it was
            # installed (while the API server initialised its storage), and the next one with it again.
            self.changed = (uid,)
        else:
            what = f"re-created (uid {self.seen} -> {uid})" if uid else f"deleted (uid {self.seen})"
            self.problem = (f"CustomResourceDefinition {self.name} was {what} after the watch on it started: the "
                            "watch may follow the old one; liveness fails so that the operator is restarted")
            log.error("%s", self.problem)

    async def run(self) -> None:
        while self.problem is None:
            try:
                self.observe(await self.api.crd_uid(self.name))
            except Exception as exc:  # noqa: BLE001 - an unreachable API server is no CRD change; kopf reports it
                log.debug("CRD check failed: %s", type(exc).__name__)
            await asyncio.sleep(self.period)

    def probe(self, **_: object) -> str:
        """kopf's probe handler (on /healthz): PermanentError makes kopf answer 500 at once, without retrying."""
        if self.problem is not None:
            raise kopf.PermanentError(self.problem)
        return "watching" if self.seen else "waiting for the CRD"


class _FailedProbeTraceback(logging.Filter):
    """aiohttp logs kopf's failed probe (the 500) with a traceback of kopf's internals on every request; the reason
    is already logged once, above, and by kopf ("Activity 'crd' failed permanently: ..."). Keep the one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__name__ == "ActivityError":  # kopf's, not exported by name
            record.exc_info, record.exc_text = None, None
            record.msg = f"{record.msg} (/healthz: a probe failed, see above)"
        return True


def install(registry: kopf.OperatorRegistry, api: KubeApi) -> CrdWatch:
    """Register the probe on the operator's registry; the caller runs `run()` as a task beside kopf."""
    watch = CrdWatch(api)
    kopf.on.probe(registry=registry, id="crd")(watch.probe)
    logging.getLogger("aiohttp.server").addFilter(_FailedProbeTraceback())
    return watch
