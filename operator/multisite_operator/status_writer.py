"""Status writes off the reconcile's critical path: at most one in flight per project, the latest status wins.

Every write of a large MultiSiteProject costs the API server ~170 ms (its CEL rules run on every write, status
included; bench/ANALYSIS.md). Awaited in the reconcile, three of them in series held up the reconcile that the
last child event queued. Here a reconcile hands its status over and goes on; a status computed while a write is in
flight replaces any still waiting (an older one is never written after a newer one), so a project has at most one
write in flight and one waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .obj import Obj

log = logging.getLogger(__name__)
Key = tuple[str, str]
Patch = Callable[[str, str, Obj], Awaitable[str | None]]  # returns the project's resourceVersion after the write


class StatusWriter:
    def __init__(self, patch: Patch, failed: Callable[[Key], None] | None = None,
                 written: Callable[[Key, str | None, str | None], None] | None = None) -> None:
        self.patch = patch
        self.failed = failed  # called when a write failed for good (after kube's retries): reconcile again
        self.written = written  # called with (key, project uid, resourceVersion returned) after each write
        self._waiting: dict[Key, tuple[Obj, str | None]] = {}
        self._writing: dict[Key, asyncio.Task[None]] = {}

    def submit(self, key: Key, status: Obj, uid: str | None = None) -> None:
        """Write `status` soon; returns at once."""
        self._waiting[key] = (status, uid)
        if key not in self._writing:
            self._writing[key] = asyncio.ensure_future(self._drain(key))

    async def _drain(self, key: Key) -> None:
        try:
            while (waiting := self._waiting.pop(key, None)) is not None:
                status, uid = waiting
                try:
                    version = await self.patch(*key, status)
                    if self.written is not None:
                        self.written(key, uid, version)
                except Exception as exc:  # noqa: BLE001 - reported, and the project is reconciled again
                    log.warning("status write of %s/%s failed (%s: %s)", *key, type(exc).__name__, str(exc)[:300])
                    if self.failed is not None:
                        self.failed(key)
        finally:
            self._writing.pop(key, None)

    def in_flight(self, key: Key) -> bool:
        return key in self._writing

    async def flush(self) -> None:
        """Wait until every status handed over is written (tests, shutdown)."""
        while self._writing:
            await asyncio.gather(*list(self._writing.values()), return_exceptions=True)
