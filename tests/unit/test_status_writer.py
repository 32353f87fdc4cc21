"""Status writes off the reconcile's path: one in flight per project, the latest status wins, nobody waits."""

from __future__ import annotations

import asyncio
from typing import Any

from multisite_operator.status_writer import StatusWriter

KEY = ("shop", "example")


class SlowApi:
    """A status PATCH that takes as long as the test says (`release`), recording what was written."""

    def __init__(self) -> None:
        self.written: list[Any] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.release = asyncio.Event()
        self.fail = False

    async def patch(self, namespace: str, name: str, status: Any) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
            if self.fail:
                raise RuntimeError("API server unavailable")
            self.written.append(status)
        finally:
            self.in_flight -= 1


def test_submit_returns_at_once_and_the_latest_status_wins():
    async def scenario() -> SlowApi:
        api = SlowApi()
        writer = StatusWriter(api.patch)
        writer.submit(KEY, {"observedGeneration": 1})
        await asyncio.sleep(0)
        assert api.in_flight == 1 and writer.in_flight(KEY)
        for generation in range(2, 6):
            writer.submit(KEY, {"observedGeneration": generation})  # never waits for the slow write
        await asyncio.sleep(0)
        assert api.in_flight == 1
        api.release.set()
        await writer.flush()
        return api

    api = asyncio.run(scenario())
    # The first went out at once; 2-4 were replaced while it was in flight; never an older one after a newer one.
    assert api.written == [{"observedGeneration": 1}, {"observedGeneration": 5}] and api.most_in_flight == 1


def test_projects_are_written_independently():
    async def scenario() -> SlowApi:
        api = SlowApi()
        writer = StatusWriter(api.patch)
        writer.submit(("shop", "a"), {"n": 1})
        writer.submit(("shop", "b"), {"n": 2})
        await asyncio.sleep(0)
        assert api.in_flight == 2
        api.release.set()
        await writer.flush()
        return api

    assert sorted(s["n"] for s in asyncio.run(scenario()).written) == [1, 2]


def test_a_failed_write_is_reported_so_the_project_is_reconciled_again():
    async def scenario() -> list[Any]:
        api, failed = SlowApi(), []
        api.fail = True
        api.release.set()
        writer = StatusWriter(api.patch, failed.append)
        writer.submit(KEY, {"n": 1})
        await writer.flush()
        assert not writer.in_flight(KEY)
        return failed

    assert asyncio.run(scenario()) == [KEY]
