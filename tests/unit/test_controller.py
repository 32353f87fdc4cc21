"""The controller's queueing, without kopf or a cluster: coalescing per project, backoff after a failure, and
standby replicas that reconcile nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from multisite_operator.controller import Controller
from multisite_operator.reconcile import Outcome

KEY = ("shop", "example")
PROJECT = {"metadata": {"namespace": "shop", "name": "example", "uid": "u", "generation": 1,
                        "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}}


class Recorder:
    """A reconciler that counts its runs; `gate` holds a run open so triggers pile up meanwhile."""

    def __init__(self, fail: int = 0, retry_after: float | None = None) -> None:
        self.runs = 0
        self.fail = fail
        self.retry_after = retry_after
        self.gate: asyncio.Event | None = None

    async def reconcile(self, project: Any, children: Any, *_: Any) -> Outcome:
        self.runs += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.runs <= self.fail:
            raise RuntimeError("API server unavailable")
        return Outcome(retry_after=self.retry_after)

    def forget_all(self) -> None:
        self.forgot = getattr(self, "forgot", 0) + 1


def controller(rec: Recorder) -> Controller:
    return Controller(reconciler=rec, indexes={"projects_idx": {KEY: [PROJECT]}})  # type: ignore[arg-type]


def test_triggers_during_a_reconcile_coalesce_into_one_more():
    async def scenario() -> int:
        rec = Recorder()
        rec.gate = asyncio.Event()
        c = controller(rec)
        first = asyncio.ensure_future(c.trigger(KEY))
        while not rec.runs:  # the reconcile runs in a task of its own (cancellable on losing the Lease)
            await asyncio.sleep(0)
        assert rec.runs == 1
        for _ in range(5):
            await c.trigger(KEY)  # returns at once: the running loop picks the change up
        rec.gate.set()
        await first
        return rec.runs

    assert asyncio.run(scenario()) == 2


def test_a_failed_reconcile_is_retried_with_growing_backoff_then_reset():
    async def scenario() -> None:
        rec = Recorder(fail=2)
        c = controller(rec)
        loop = asyncio.get_running_loop()
        await c.trigger(KEY)
        state = c.states[KEY]
        assert state.failures == 1 and state.retry is not None
        assert 1.5 < state.retry.when() - loop.time() <= 2.0
        state.retry.cancel()
        await c.trigger(KEY)
        assert state.failures == 2 and 3.5 < state.retry.when() - loop.time() <= 4.0
        state.retry.cancel()
        await c.trigger(KEY)
        assert state.failures == 0 and rec.runs == 3

    asyncio.run(scenario())


def test_blocked_outcome_schedules_its_retry():
    async def scenario() -> None:
        c = controller(Recorder(retry_after=10))
        await c.trigger(KEY)
        retry = c.states[KEY].retry
        assert retry is not None and 9.5 < retry.when() - asyncio.get_running_loop().time() <= 10
        retry.cancel()

    asyncio.run(scenario())


def test_standby_reconciles_nothing_until_activated():
    async def scenario() -> int:
        rec = Recorder()
        c = controller(rec)
        c.active = False
        await c.trigger(KEY)
        assert rec.runs == 0
        c.activate()
        for _ in range(100):
            if rec.runs:
                break
            await asyncio.sleep(0.01)
        return rec.runs

    assert asyncio.run(scenario()) == 1


def test_a_deleted_project_is_forgotten():
    async def scenario() -> None:
        rec = Recorder()
        c = controller(rec)
        c.indexes["projects_idx"] = {}
        await c.trigger(KEY)
        assert rec.runs == 0 and KEY not in c.states

    asyncio.run(scenario())
