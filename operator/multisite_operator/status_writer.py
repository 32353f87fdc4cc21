"""Status writes off the reconcile's critical path: at most one in flight per project, the latest status wins.

Every write of a large MultiSiteProject costs the API server 0.5-1 s at 1000 sites (its CEL rules run on every
write, status included, and the status lists every host; bench/ANALYSIS.md). Awaited in the reconcile, three of
them in series held up the reconcile that the last child event queued. Here a reconcile hands its status over and
goes on; a status computed while a write is in flight replaces any still waiting (an older one is never written
after a newer one), so a project has at most one write in flight and one waiting.

A progress report (work under way, nothing wrong: `may_wait`) waits PACE_FACTOR times as long as the project's
previous status write took, and a newer status replaces it meanwhile: a state that does not outlast its own write
by far is not worth writing. At 1000 sites one status write takes the API server 0.5-1.2 s whatever it carries,
about as long as a populate Job or the web Deployment's rollout in the benchmark: the `Populating` or `RollingOut`
report was still being written when the project became Ready, and the Ready write queued behind it
(bench/ANALYSIS.md, round six). For a small project the wait is some milliseconds. Ready and every problem are
written at once, and no progress report waits more than MAX_PACE_SECONDS in all (a rollout that changes the status
faster than it can be written still shows progress, a migration that runs minutes shows it after 5 s).

Four times and 5 s (round nine; two times and 2 s before): a 1000-site multi-project rollout changes the status
for a minute or more, and every write of it also reaches every watcher of the project as a ~400 KB event.
Alternating runs of the same rollout: 27 / 25 status writes -> 13 / 12, done in 120 / 119 s -> 92 / 85 s, the API
server's CPU 112 / 117 s -> 84 / 77 s, the operator's 49 / 49 s -> 37 / 37 s (bench/ANALYSIS.md, round nine).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .obj import Obj, ProjectKey as Key

log = logging.getLogger(__name__)
Patch = Callable[[str, str, Obj], Awaitable[str | None]]  # returns the project's resourceVersion after the write
PACE_FACTOR = 4.0
MAX_PACE_SECONDS = 5.0


class StatusWriter:
    def __init__(self, patch: Patch, failed: Callable[[Key], None] | None = None,
                 written: Callable[[Key, str | None, str | None], None] | None = None,
                 may_wait: Callable[[Obj], bool] = lambda status: False) -> None:
        self.patch = patch
        self.failed = failed  # called when a write failed for good (after kube's retries): reconcile again
        self.written = written  # called with (key, project uid, resourceVersion returned) after each write
        self.may_wait = may_wait  # True for a status that only reports progress (paced, see above)
        # status, project uid, when it was submitted, when the oldest status it replaced was submitted
        self._waiting: dict[Key, tuple[Obj, str | None, float, float]] = {}
        self._writing: dict[Key, asyncio.Task[None]] = {}
        self._submitted: dict[Key, asyncio.Event] = {}  # set on each submit: a paced wait looks again
        self._took: dict[Key, float] = {}  # how long the project's last status write took

    def submit(self, key: Key, status: Obj, uid: str | None = None) -> None:
        """Write `status` soon; returns at once."""
        now = asyncio.get_running_loop().time()
        before = self._waiting.get(key)
        self._waiting[key] = (status, uid, now, before[3] if before else now)
        if key in self._submitted:
            self._submitted[key].set()
        if key not in self._writing:
            self._writing[key] = asyncio.ensure_future(self._drain(key))

    async def _pace(self, key: Key) -> None:
        """Wait while what waits to be written is a progress report younger than PACE_FACTOR times what the last
        write took."""
        pace = min(self._took.get(key, 0.0) * PACE_FACTOR, MAX_PACE_SECONDS)
        if not pace or not self.may_wait(self._waiting[key][0]):  # most writes: a small project's, Ready, a problem
            return
        loop = asyncio.get_running_loop()
        submitted = self._submitted.setdefault(key, asyncio.Event())
        while (waiting := self._waiting.get(key)) is not None and self.may_wait(waiting[0]):
            left = min(waiting[2] + pace, waiting[3] + MAX_PACE_SECONDS) - loop.time()
            if left <= 0:
                return
            submitted.clear()
            try:
                await asyncio.wait_for(submitted.wait(), left)
            except asyncio.TimeoutError:
                return

    async def _drain(self, key: Key) -> None:
        loop = asyncio.get_running_loop()
        try:
            while key in self._waiting:
                await self._pace(key)
                status, uid, _, _ = self._waiting.pop(key)
                started = loop.time()
                try:
                    version = await self.patch(*key, status)
                    if self.written is not None:
                        self.written(key, uid, version)
                except Exception as exc:  # noqa: BLE001 - reported, and the project is reconciled again
                    log.warning("status write of %s/%s failed (%s: %s)", *key, type(exc).__name__, str(exc)[:300])
                    if self.failed is not None:
                        self.failed(key)
                self._took[key] = loop.time() - started
        finally:
            self._writing.pop(key, None)
            self._submitted.pop(key, None)

    def in_flight(self, key: Key) -> bool:
        return key in self._writing

    def forget(self, key: Key) -> None:
        self._took.pop(key, None)

    async def flush(self) -> None:
        """Wait until every status handed over is written (tests, shutdown)."""
        while self._writing:
            await asyncio.gather(*list(self._writing.values()), return_exceptions=True)
