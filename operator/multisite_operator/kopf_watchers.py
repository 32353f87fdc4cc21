"""kopf's resource watchers, mended where one watcher of kopf 1.45.2 can stall or stop the whole operator.

Why, in two ways, both open where CRDs are installed while the operator runs (the Gateway API's: HTTPRoutes and
Gateways are indexed):
- kopf holds the handlers of every object it sees for the first time until each indexed resource has been listed
  once: every resource watcher holds a toggle that it drops when its first list ends. A watcher stopped before then
  never drops it, and from then on no handler runs for any new object of any kind, while everything else (the
  liveness probe included) looks well. kopf re-scans an API group on each of its CRD events, dozens at once while a
  set of CRDs is applied, and a scan that ends after a newer one takes back a resource the newer one added,
  stopping its watcher (the next scan starts one again, with a toggle of its own).
- A watcher whose list or watch fails on an API error (a CRD just established whose storage is not served yet, a
  CRD deleted) ends, and kopf's orchestrator re-raises its error: the operator stops, every project unreconciled
  until something starts it again (the kubelet, in a cluster).
CI saw the result once: the migrate Job created right after the Gateway API's installation never reached the
operator as complete and the project stayed Migrating for the test's 90 s (which way, the run did not keep; 19 runs
of the test here, 14 under CPU load, did not repeat it).

So here a resource watcher drops its toggle whenever it ends, and a watcher that fails on an API error starts again
after a backoff instead of ending (its toggle held meanwhile: the index is not complete until a list succeeds).
Observation watchers (namespaces, CRDs: no toggle) are left as kopf runs them. kopf is pinned (pyproject.toml);
test_kopf_watchers.py runs kopf's own orchestration against this, and fails if a kopf upgrade moves what is patched.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # between attempts after an API error; the last one repeats
HEALTHY_SECONDS = 60.0  # an attempt that watched this long starts the backoff over: its failure is a new one


def install() -> None:
    """Replace kopf's resource watcher with the mended one; idempotent (orchestration looks it up at each spawn)."""
    from kopf._core.reactor import queueing

    if getattr(queueing.watcher, "mended", False):
        return
    original = queueing.watcher

    async def watcher(**kwargs: Any) -> None:
        operator_indexed, resource_indexed = kwargs.get("operator_indexed"), kwargs.get("resource_indexed")
        if operator_indexed is None:  # an observation watcher, or kopf's tests
            return await original(**kwargs)
        try:
            await _retrying(original, kwargs)
        finally:
            if resource_indexed is not None:
                await operator_indexed.drop_toggle(resource_indexed)

    watcher.mended = True  # type: ignore[attr-defined]
    queueing.watcher = watcher


async def _retrying(original: Any, kwargs: dict[str, Any]) -> None:
    import aiohttp
    from kopf._cogs.clients import errors, watching

    loop = asyncio.get_running_loop()
    failures = 0
    while True:
        started = loop.time()
        try:
            return await original(**kwargs)
        except (errors.APIError, watching.WatchingError, aiohttp.ClientError, TimeoutError) as exc:
            if loop.time() - started >= HEALTHY_SECONDS:
                failures = 0
            delay = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)]
            failures += 1
            log.warning("The watch of %s failed (%s: %s); it starts again in %g s",
                        kwargs.get("resource"), type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
