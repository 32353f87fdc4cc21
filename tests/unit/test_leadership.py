"""Leader validity by this replica's own clock, without a cluster: a lapsed Lease refuses every write before it is
sent, losing the Lease cancels the reconciles under way, and Events need no kopf context (issue 14 items 2, 4).
The real-control-plane proofs are in tests/e2e/test_leadership.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from multisite_operator.controller import Controller
from multisite_operator.events import EventPoster, event_body
from multisite_operator.kube import KubeApi
from multisite_operator.leader import LeaderElector, LeaseConfig, NotLeader
from multisite_operator.reconcile import Outcome

from test_kube_retry import DEPLOYMENT, FakeApiServer, _server, connection

KEY = ("shop", "example")
PROJECT = {"apiVersion": "multisite.dev/v1alpha1", "kind": "MultiSiteProject",
           "metadata": {"namespace": "shop", "name": "example", "uid": "u-1", "generation": 1}, "spec": {}}


def elector() -> LeaderElector:
    return LeaderElector(None, LeaseConfig(identity="me"), lambda: None, lambda: None)  # type: ignore[arg-type]


def test_a_lease_is_valid_for_the_renew_deadline_after_the_start_of_its_last_renewal():
    e = elector()
    with pytest.raises(NotLeader):
        e.check()  # never acquired
    e.leading, e._renewed_at = True, time.monotonic()
    e.check()
    assert 9.5 < e.valid_for() <= 10.0
    e._renewed_at = time.monotonic() - 10.0  # e.g. paused (SIGSTOP) for the renew deadline
    with pytest.raises(NotLeader, match="not renewed within 10 s"):
        e.check()
    e._renewed_at, e.leading = time.monotonic(), False  # released or stood by
    with pytest.raises(NotLeader):
        e.check()


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    yield from _server([])


def test_a_refused_write_is_never_sent_and_reads_are_not_guarded(server: FakeApiServer):
    e = elector()
    api = KubeApi(connection(server.server_address[1]), guard=e.check)
    with pytest.raises(NotLeader):
        api.apply_sync(DEPLOYMENT)
    with pytest.raises(NotLeader):
        api.delete_sync("apps/v1", "Deployment", "ns", "web")
    assert server.requests == []
    assert api.get_sync("apps/v1", "Deployment", "ns", "web") == DEPLOYMENT  # a standby still reads
    e.leading, e._renewed_at = True, time.monotonic()
    api.apply_sync(DEPLOYMENT)
    assert [r[0] for r in server.requests] == ["GET", "PATCH"]


class Slow:
    """A reconciler whose reconcile waits until released; counts how it ended."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.started = asyncio.Event()
        self.cancelled = 0
        self.forgot = 0
        self.error = error

    async def reconcile(self, *_: Any) -> Outcome:
        self.started.set()
        if self.error is not None:
            raise self.error
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return Outcome()

    def forget_all(self) -> None:
        self.forgot += 1


def test_losing_the_lease_cancels_the_reconcile_under_way_and_forgets_what_was_remembered():
    async def scenario() -> Slow:
        rec = Slow()
        c = Controller(reconciler=rec, indexes={"projects_idx": {KEY: [PROJECT]}})  # type: ignore[arg-type]
        running = asyncio.ensure_future(c.trigger(KEY))
        await asyncio.wait_for(rec.started.wait(), 5)
        c.deactivate()
        await asyncio.wait_for(running, 5)  # the trigger returns quietly: no error, no retry scheduled
        assert c.states[KEY].failures == 0 and c.states[KEY].retry is None
        c.activate()
        return rec

    rec = asyncio.run(scenario())
    assert rec.cancelled == 1 and rec.forgot == 2  # on losing and on gaining the Lease


def test_a_reconcile_refused_for_want_of_the_lease_is_not_an_error_retried_with_backoff():
    async def scenario() -> Controller:
        c = Controller(reconciler=Slow(NotLeader("lapsed")), indexes={"projects_idx": {KEY: [PROJECT]}})  # type: ignore[arg-type]
        await c.trigger(KEY)
        return c

    c = asyncio.run(scenario())
    assert c.states[KEY].failures == 0 and c.states[KEY].retry is None


def test_events_are_posted_outside_any_kopf_handler(server: FakeApiServer):
    """The LookupError of issue 14 item 4 came from kopf.event outside kopf's context: this runs with none."""
    poster = EventPoster(KubeApi(connection(server.server_address[1])), instance="pod-1")

    async def scenario() -> None:
        poster(PROJECT, "Normal", "PopulateStarted", "é" * 1000)  # 2000 bytes: cut to the API's 1024
        await poster.drain()

    asyncio.run(scenario())
    [(method, path, body)] = server.requests
    assert (method, path) == ("POST", "/api/v1/namespaces/shop/events")
    assert body["involvedObject"] == {"apiVersion": "multisite.dev/v1alpha1", "kind": "MultiSiteProject",
                                      "name": "example", "namespace": "shop", "uid": "u-1"}
    assert body["reason"] == "PopulateStarted" and len(body["message"].encode()) <= 1024
    assert body["reportingInstance"] == "pod-1" and body["source"] == {"component": "multisite-operator"}


def test_event_body_times_are_what_the_api_server_parses():
    from datetime import datetime, timezone

    body = event_body(PROJECT, "Warning", "X", "m", "i", now=datetime(2026, 1, 2, 3, 4, 5, 678900, timezone.utc))
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2026-01-02T03:04:05Z"
    assert body["eventTime"] == "2026-01-02T03:04:05.678900Z"


def test_crd_watch_fails_the_probe_once_the_crd_it_saw_is_recreated_or_gone():
    import kopf

    from multisite_operator.crdwatch import CrdWatch

    late = CrdWatch(None)  # type: ignore[arg-type]
    late.observe(None)  # not installed yet at start-up: kopf starts a watcher when it appears
    late.observe("uid-1")
    assert late.probe() == "watching"
    late.observe("uid-1")
    assert late.problem is None
    late.observe(None)  # one reading without the CRD, then it is there again: no change
    late.observe("uid-1")
    assert late.problem is None
    late.observe("uid-2")  # deleted and re-created: confirmed by the next reading
    assert late.problem is None
    late.observe("uid-2")
    with pytest.raises(kopf.PermanentError, match="was re-created"):
        late.probe()
    late.observe("uid-1")
    assert late.problem is not None, "sticky: only a restart watches the new CRD"

    gone = CrdWatch(None)  # type: ignore[arg-type]
    gone.observe("uid-1")
    gone.observe(None)
    gone.observe(None)
    with pytest.raises(kopf.PermanentError, match="was deleted"):
        gone.probe()
