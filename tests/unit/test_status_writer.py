"""Status writes off the reconcile's path: one in flight per project, the latest status wins, nobody waits."""

from __future__ import annotations

import asyncio
from typing import Any

from multisite_operator import conditions as cond
from multisite_operator.reconcile import PACED_SITES, paced
from multisite_operator.status_writer import PACE_FACTOR, StatusWriter

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


class TimedApi:
    """Status PATCHes that take `seconds` each, recording (status, start, end) in the event loop's time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.writes: list[tuple[Any, float, float]] = []
        self.done = asyncio.Event()

    async def patch(self, namespace: str, name: str, status: Any) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(self.seconds)
        self.writes.append((status, start, loop.time()))
        self.done.set()


def progress(status: Any) -> bool:
    return status.get("progress", False)


def test_a_progress_report_waits_for_pace_factor_times_what_the_last_write_took_and_ready_replaces_it_at_once():
    async def scenario() -> tuple[TimedApi, float]:
        api = TimedApi(1.5)
        writer = StatusWriter(api.patch, may_wait=progress)
        writer.submit(KEY, {"n": 1, "progress": True})  # Migrating: no write to go by yet, written at once
        await api.done.wait()
        writer.submit(KEY, {"n": 2, "progress": True})  # RollingOut
        await asyncio.sleep(0.3)
        assert len(api.writes) == 1  # n=2 waits: the last write took 1.5 s (a 5 s pace, the most)
        ready_at = asyncio.get_running_loop().time()
        writer.submit(KEY, {"n": 3})  # Ready: must not wait
        await writer.flush()
        return api, ready_at

    api, ready_at = asyncio.run(scenario())
    assert [w[0]["n"] for w in api.writes] == [1, 3]  # the report Ready made stale was never written
    assert api.writes[1][1] - ready_at < 1.0  # Ready did not wait out the pace (1.7 s were left)


def second_after_first(seconds: float, second: dict) -> tuple[TimedApi, float]:
    """A progress report written (taking `seconds`), then `second` submitted; returns when it was submitted."""
    async def scenario() -> tuple[TimedApi, float]:
        api = TimedApi(seconds)
        writer = StatusWriter(api.patch, may_wait=progress)
        writer.submit(KEY, {"n": 1, "progress": True})
        await api.done.wait()
        submitted = asyncio.get_running_loop().time()
        writer.submit(KEY, second)
        await writer.flush()
        return api, submitted

    return asyncio.run(scenario())


def test_a_paced_progress_report_is_written_after_the_pause_not_lost():
    api, submitted = second_after_first(0.3, {"n": 2, "progress": True})
    assert [w[0]["n"] for w in api.writes] == [1, 2]
    first_took = api.writes[0][2] - api.writes[0][1]
    assert api.writes[1][1] - submitted >= first_took * PACE_FACTOR * 0.99  # paced by what the first write took


def test_progress_reports_faster_than_their_writes_still_show_within_the_bound(monkeypatch):
    monkeypatch.setattr("multisite_operator.status_writer.MAX_PACE_SECONDS", 0.5)

    async def scenario() -> TimedApi:
        api = TimedApi(1.0)
        writer = StatusWriter(api.patch, may_wait=progress)
        writer.submit(KEY, {"n": 0, "progress": True})
        await api.done.wait()
        for n in range(1, 16):  # a new report every 0.1 s for 1.5 s: each younger than the last write took
            writer.submit(KEY, {"n": n, "progress": True})
            await asyncio.sleep(0.1)
        written_meanwhile = len(api.writes) - 1
        await writer.flush()
        assert written_meanwhile >= 1  # the oldest waiting report went out after MAX_PACE_SECONDS
        return api

    api = asyncio.run(scenario())
    assert api.writes[-1][0]["n"] == 15  # and the latest is written in the end


def test_a_status_that_must_not_wait_is_written_at_once():
    api, submitted = second_after_first(1.5, {"n": 2})
    assert [w[0]["n"] for w in api.writes] == [1, 2]
    assert api.writes[1][1] - submitted < 1.0  # not paced (a pace would be 5 s)


def test_only_large_projects_progress_reports_are_paced():
    rolling = [cond.condition(cond.READY, False, cond.R_ROLLING_OUT, "Deployment example-web is not available yet")]
    ready = [cond.condition(cond.READY, True, cond.R_READY, "")]
    assert paced({"siteCount": PACED_SITES, "conditions": rolling})
    assert not paced({"siteCount": 3, "conditions": rolling})  # every state of a small project stays visible
    assert not paced({"siteCount": 1000, "conditions": ready})
