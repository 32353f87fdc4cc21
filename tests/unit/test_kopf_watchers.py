"""kopf_watchers on kopf's own orchestration: a resource watcher stopped before its first list must not hold every
handler of the operator back, and one whose first list fails must start again rather than end (kopf 1.45.2 does
the first, and on the second its orchestrator stops the operator): one of the two was the CI failure of the Gateway
API test.

Only the watch stream is replaced (no API server); the toggles, the watcher and its spawning/stopping are kopf's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.clients import errors, watching
from kopf._cogs.configs import configuration
from kopf._cogs.structs import references
from kopf._core.reactor import orchestration, queueing

from multisite_operator import kopf_watchers

ROUTES = references.Resource("gateway.networking.k8s.io", "v1", "httproutes", namespaced=True)


@pytest.fixture
def mended(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queueing, "watcher", queueing.watcher)  # undone after the test, whatever install() set
    monkeypatch.setattr(kopf_watchers, "BACKOFF_SECONDS", (0.01,))
    kopf_watchers.install()


def stream(monkeypatch: pytest.MonkeyPatch, lists: Callable[[int], bool]) -> list[int]:
    """Each watch attempt fails with a 404 unless `lists(attempt)`; then it lists (nothing) and waits for events."""
    attempts: list[int] = []

    async def infinite_watch(**_: Any) -> AsyncIterator[Any]:
        attempts.append(len(attempts))
        if not lists(attempts[-1]):
            raise errors.APINotFoundError({"code": 404, "message": "the server could not find the requested resource"},
                                          status=404, headers={})
        yield watching.Bookmark.LISTED
        await asyncio.Event().wait()

    monkeypatch.setattr(watching, "infinite_watch", infinite_watch)
    return attempts


async def spawn(ensemble: orchestration.Ensemble) -> None:
    async def processor(**_: Any) -> None:
        return None

    await orchestration.spawn_missing_watchers(
        processor=processor, settings=configuration.OperatorSettings(), indexed_resources={ROUTES},
        watched_resources={ROUTES}, watched_namespaces={None}, ensemble=ensemble)


async def new_ensemble() -> orchestration.Ensemble:
    return orchestration.Ensemble(operator_indexed=aiotoggles.ToggleSet(all),
                                  operator_paused=aiotoggles.ToggleSet(any),
                                  peering_missing=await aiotoggles.ToggleSet(any).make_toggle())


async def indexed_within(ensemble: orchestration.Ensemble, seconds: float) -> bool:
    """Whether kopf lets handlers run (every indexed resource listed) within `seconds`."""
    try:
        await asyncio.wait_for(ensemble.operator_indexed.wait_for(True), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def stop_all(ensemble: orchestration.Ensemble) -> None:
    await orchestration.terminate_redundancies(remaining_resources=set(), remaining_namespaces=set(),
                                               ensemble=ensemble)


def test_a_watcher_stopped_before_its_first_list_does_not_hold_the_handlers_back(
        mended: None, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        stream(monkeypatch, lists=lambda attempt: False)  # still failing, as a fresh CRD's storage can
        ensemble = await new_ensemble()
        await spawn(ensemble)
        await asyncio.sleep(0.05)
        assert not ensemble.operator_indexed.is_on()  # while it has not listed, handlers wait: kopf's intent
        await stop_all(ensemble)  # a late scan took the resource back
        assert await indexed_within(ensemble, 5), list(ensemble.operator_indexed)

    asyncio.run(scenario())


def test_a_watcher_whose_first_list_fails_starts_again_and_lists(
        mended: None, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        attempts = stream(monkeypatch, lists=lambda attempt: attempt >= 2)
        ensemble = await new_ensemble()
        await spawn(ensemble)
        assert await indexed_within(ensemble, 5), list(ensemble.operator_indexed)
        assert attempts == [0, 1, 2]
        (task,) = ensemble.watcher_tasks.values()
        assert not task.done()  # still watching
        await stop_all(ensemble)

    asyncio.run(scenario())


def test_install_replaces_the_watcher_kopf_spawns_once(mended: None) -> None:
    first = queueing.watcher
    kopf_watchers.install()
    assert queueing.watcher is first and getattr(first, "mended", False)


def test_the_backoff_starts_over_after_a_watch_that_ran_well(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(kopf_watchers, "BACKOFF_SECONDS", (0.01, 0.02, 0.04))
    monkeypatch.setattr(kopf_watchers, "HEALTHY_SECONDS", 1.0)  # the quick attempts take microseconds: a wide margin
    ran_for = [0.0, 0.0, 1.2, 0.0]  # each attempt watches this long, then fails; the fifth returns
    attempts: list[int] = []

    async def original(**_: Any) -> None:
        attempts.append(len(attempts))
        if len(attempts) > len(ran_for):
            return
        await asyncio.sleep(ran_for[len(attempts) - 1])
        raise errors.APIServerError({"code": 503, "message": "unavailable"}, status=503, headers={})

    caplog.set_level("WARNING", logger=kopf_watchers.__name__)
    asyncio.run(kopf_watchers._retrying(original, {"resource": ROUTES}))
    delays = [r.getMessage().rsplit(" in ", 1)[1] for r in caplog.records]
    assert delays == ["0.01 s", "0.02 s", "0.01 s", "0.02 s"], delays
    assert len(attempts) == 5
