"""The controller's queueing, without kopf or a cluster: coalescing per project, the priority queue (a user's edit
before follow-ups before the start-up backlog), bounded concurrency, the backlog's admission while projects are under
way, backoff after a failure, and standby replicas that reconcile nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from multisite_operator.controller import COOLDOWN_FACTOR, UNDERWAY_HOLD_SECONDS, Controller, Priority
from multisite_operator.reconcile import Outcome

KEY = ("shop", "example")


def project(name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "shop", "name": name, "uid": f"u-{name}", "generation": 1,
                         "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}}


class Clock:
    """The controller's clock, moved on by hand: a reconcile's cost without spending it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A reconciler that records its runs in order; `gate` holds every run open so triggers pile up meanwhile."""

    def __init__(self, fail: int = 0, retry_after: float | None = None, clock: Clock | None = None,
                 cost: float = 0.0, writes: int = 0, progress_pause: float | None = None) -> None:
        self.order: list[str] = []
        self.progress_pause = progress_pause
        self.clock, self.cost, self.writes = clock, cost, writes  # each run moves `clock` on by `cost` seconds
        self.started: list[float] = []  # the event loop's time at each run's start and end
        self.ended: list[float] = []
        self.statuses: dict[str, dict[str, Any]] = {}  # name -> the status its reconcile reports
        self.fail = fail
        self.retry_after = retry_after
        self.gate: asyncio.Event | None = None
        self.running = 0
        self.most_at_once = 0

    @property
    def runs(self) -> int:
        return len(self.order)

    async def reconcile(self, project: Any, children: Any, *_: Any) -> Outcome:
        self.order.append(project["metadata"]["name"])
        self.started.append(asyncio.get_running_loop().time())
        if self.clock is not None:
            self.clock.now += self.cost
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(0)
            if self.runs <= self.fail:
                raise RuntimeError("API server unavailable")
            return Outcome(writes=self.writes, retry_after=self.retry_after, progress_pause=self.progress_pause,
                           status=self.statuses.get(project["metadata"]["name"], {}))
        finally:
            self.running -= 1
            self.ended.append(asyncio.get_running_loop().time())

    def forget_all(self) -> None:
        self.forgot = getattr(self, "forgot", 0) + 1


def controller(rec: Recorder, names: tuple[str, ...] = ("example",), workers: int = 16) -> Controller:
    index = {("shop", n): [project(n)] for n in names}
    c = Controller(reconciler=rec, indexes={"projects_idx": index}, workers=workers)  # type: ignore[arg-type]
    if rec.clock is not None:
        c.clock = rec.clock
    return c


async def until(check: Any, timeout: float = 5) -> None:
    """Wait for a condition of the event loop's own making (no wall-clock guessing)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


def test_triggers_during_a_reconcile_coalesce_into_one_more():
    async def scenario() -> int:
        rec = Recorder()
        rec.gate = asyncio.Event()
        c = controller(rec)
        await c.trigger(KEY)
        await until(lambda: rec.runs == 1)
        for _ in range(5):
            await c.trigger(KEY)  # returns at once: the change is picked up when the running reconcile ends
        assert rec.runs == 1
        rec.gate.set()
        await c.idle()
        return rec.runs

    assert asyncio.run(scenario()) == 2


def test_an_edit_goes_before_follow_ups_and_the_start_up_backlog():
    """One worker busy with the first project; meanwhile the start-up listing queues four projects, one of them
    gets a child event, and another one is edited: the edit runs next, then the follow-up, then the backlog in
    the order it arrived."""

    async def scenario() -> list[str]:
        names = ("first", "b1", "b2", "b3", "b4")
        rec = Recorder()
        rec.gate = asyncio.Event()
        c = controller(rec, names, workers=1)
        await c.trigger(("shop", "first"), Priority.BACKLOG)
        await until(lambda: rec.runs == 1)
        for n in ("b1", "b2", "b3", "b4"):
            await c.trigger(("shop", n), Priority.BACKLOG)
        await c.trigger(("shop", "b3"), Priority.FOLLOW_UP)
        await c.trigger(("shop", "b4"), Priority.EDIT)
        await c.trigger(("shop", "b4"), Priority.BACKLOG)  # a later, less urgent event does not demote it
        rec.gate.set()
        await c.idle()
        return rec.order

    assert asyncio.run(scenario()) == ["first", "b4", "b3", "b1", "b2"]


def test_an_edit_during_a_reconcile_is_queued_at_edit_priority_when_it_ends():
    async def scenario() -> list[str]:
        rec = Recorder()
        rec.gate = asyncio.Event()
        c = controller(rec, ("a", "b", "c"), workers=1)
        await c.trigger(("shop", "a"), Priority.BACKLOG)
        await until(lambda: rec.runs == 1)
        await c.trigger(("shop", "b"), Priority.BACKLOG)
        await c.trigger(("shop", "c"), Priority.BACKLOG)
        await c.trigger(("shop", "a"), Priority.EDIT)  # edited while its first reconcile runs
        rec.gate.set()
        await c.idle()
        return rec.order

    assert asyncio.run(scenario()) == ["a", "a", "b", "c"]


def test_at_most_workers_reconciles_run_at_once_and_every_project_is_reconciled():
    async def scenario() -> Recorder:
        names = tuple(f"p{i}" for i in range(20))
        rec = Recorder()
        rec.gate = asyncio.Event()
        c = controller(rec, names, workers=3)
        for n in names:
            await c.trigger(("shop", n), Priority.BACKLOG)
        await until(lambda: rec.running == 3)
        for _ in range(20):
            await asyncio.sleep(0)
        assert rec.running == 3
        rec.gate.set()
        await c.idle()
        return rec

    rec = asyncio.run(scenario())
    assert rec.most_at_once == 3 and sorted(rec.order) == sorted(f"p{i}" for i in range(20))


def test_an_edit_starts_even_while_every_worker_is_busy_with_the_backlog():
    """Edits have workers of their own (EDIT_WORKERS): a slow start-up backlog never holds one back."""

    async def scenario() -> list[str]:
        names = tuple(f"p{i}" for i in range(6))
        rec = Recorder()
        rec.gate = asyncio.Event()
        c = controller(rec, names, workers=2)
        for n in names:
            await c.trigger(("shop", n), Priority.BACKLOG)
        await until(lambda: rec.running == 2)
        await c.trigger(("shop", "p5"), Priority.EDIT)
        await until(lambda: rec.running == 3)  # started although both backlog workers are still busy
        started = list(rec.order)
        rec.gate.set()
        await c.idle()
        return started

    assert asyncio.run(scenario()) == ["p0", "p1", "p5"]


def test_project_events_get_their_priority_from_the_event_and_the_generation():
    c = Controller()
    assert c.project_priority(KEY, 1, None) == Priority.BACKLOG  # kopf's initial listing
    assert c.project_priority(KEY, 1, "MODIFIED") == Priority.FOLLOW_UP  # status only (our own write)
    assert c.project_priority(KEY, 2, "MODIFIED") == Priority.EDIT  # the spec changed
    assert c.project_priority(("shop", "new"), 1, "ADDED") == Priority.EDIT  # created while running


def test_a_failed_reconcile_is_retried_with_growing_backoff_then_reset():
    async def scenario() -> None:
        rec = Recorder(fail=2)
        c = controller(rec)
        loop = asyncio.get_running_loop()
        await c.trigger(KEY)
        await c.idle()
        state = c.states[KEY]
        assert state.failures == 1 and state.retry is not None
        assert 1.5 < state.retry.when() - loop.time() <= 2.0
        state.retry.cancel()
        await c.trigger(KEY)
        await c.idle()
        assert state.failures == 2 and 3.5 < state.retry.when() - loop.time() <= 4.0
        state.retry.cancel()
        await c.trigger(KEY)
        await c.idle()
        assert state.failures == 0 and rec.runs == 3

    asyncio.run(scenario())


def test_blocked_outcome_schedules_its_retry():
    async def scenario() -> None:
        c = controller(Recorder(retry_after=10))
        await c.trigger(KEY)
        await c.idle()
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
        await c.idle()
        assert rec.runs == 0
        c.activate()
        await until(lambda: rec.runs == 1)
        await c.idle()
        return rec.runs

    assert asyncio.run(scenario()) == 1


def test_a_deleted_project_is_forgotten():
    async def scenario() -> None:
        rec = Recorder()
        c = controller(rec)
        c.indexes["projects_idx"] = {}
        await c.trigger(KEY)
        await c.idle()
        assert rec.runs == 0 and KEY not in c.states

    asyncio.run(scenario())


MIGRATING = {"conditions": [{"type": "Ready", "status": "False", "reason": "Migrating", "message": "migration runs"},
                            {"type": "Migrated", "status": "False", "reason": "Running", "message": "Job runs"}]}
READY = {"conditions": [{"type": "Ready", "status": "True", "reason": "AsExpected", "message": ""}]}
FAILED = {"conditions": [{"type": "Ready", "status": "False", "reason": "MigrationFailed", "message": "it raised"},
                         {"type": "Migrated", "status": "False", "reason": "Failed", "message": "it raised"}]}


async def quiet(c: Controller) -> None:
    """No reconcile running, and none starts while the loop turns over a few times (what is left waits)."""
    await until(lambda: c._busy == 0)
    for _ in range(20):
        await asyncio.sleep(0)
        assert c._busy == 0


def test_the_start_up_backlog_waits_while_enough_projects_are_under_way_and_edits_do_not():
    """Two slots: the first two of the backlog start migrating and the third waits (however many workers are free);
    an edit of another project runs meanwhile and, under way, counts too; a project Ready or failed frees a slot."""

    async def scenario() -> None:
        names = ("p0", "p1", "p2", "p3", "edited")
        rec = Recorder()
        rec.statuses = {n: MIGRATING for n in names}
        c = controller(rec, names, workers=4)
        c.underway_limit = 2
        for n in names[:4]:
            await c.trigger(("shop", n), Priority.BACKLOG)
        await until(lambda: rec.runs == 2)
        await quiet(c)
        assert rec.order == ["p0", "p1"]
        await c.trigger(("shop", "edited"), Priority.EDIT)
        await until(lambda: rec.runs == 3)
        assert rec.order[-1] == "edited"
        rec.statuses["p0"] = READY
        await c.trigger(("shop", "p0"), Priority.FOLLOW_UP)  # its Job succeeded: a follow-up, never held back
        await until(lambda: rec.runs == 4)
        await quiet(c)
        assert rec.order == ["p0", "p1", "edited", "p0"]  # the edited project is under way now: it counts too

        rec.statuses["edited"] = READY
        await c.trigger(("shop", "edited"), Priority.FOLLOW_UP)
        await until(lambda: rec.order[-1] == "p2")
        rec.statuses["p1"] = FAILED
        await c.trigger(("shop", "p1"), Priority.FOLLOW_UP)
        await until(lambda: rec.order[-1] == "p3")
        assert rec.order == ["p0", "p1", "edited", "p0", "edited", "p2", "p1", "p3"]

    asyncio.run(scenario())


def test_the_start_up_backlog_starts_with_a_small_wave_that_grows_as_projects_are_done():
    """Slow start: the first wave is `first_wave` projects, so they are Ready soon; each project done lets two more
    start (the one it leaves and one more), up to `underway_limit`, where one done lets one start."""

    async def scenario() -> list[str]:
        names = tuple(f"p{i}" for i in range(8))
        rec = Recorder()
        rec.statuses = {n: MIGRATING for n in names}
        c = controller(rec, names, workers=8)
        c.underway_limit, c.first_wave = 4, 2
        for n in names:
            await c.trigger(("shop", n), Priority.BACKLOG)
        await until(lambda: rec.runs == 2)
        for done, runs in (("p0", 5), ("p1", 8), ("p2", 10)):
            await quiet(c)
            rec.statuses[done] = READY
            await c.trigger(("shop", done), Priority.FOLLOW_UP)  # its rollout ended: a follow-up, never held back
            await until(lambda: rec.runs == runs)
        await quiet(c)
        return rec.order

    assert asyncio.run(scenario()) == ["p0", "p1",  # the first wave
                                       "p0", "p2", "p3",  # one done: a window of three
                                       "p1", "p4", "p5",  # two done: four, the limit
                                       "p2", "p6"]  # at the limit: one done, one starts


def test_a_project_under_way_for_long_holds_its_slot_no_longer_than_the_hold():
    """A long migration must not stall the start-up: past UNDERWAY_HOLD_SECONDS the next project starts."""

    async def scenario() -> None:
        now = [1000.0]
        rec = Recorder()
        rec.statuses = {"slow": MIGRATING, "next": MIGRATING}
        c = controller(rec, ("slow", "next"))
        c.underway_limit, c.clock = 1, lambda: now[0]
        await c.trigger(("shop", "slow"), Priority.BACKLOG)
        await c.trigger(("shop", "next"), Priority.BACKLOG)
        await until(lambda: rec.runs == 1)
        await quiet(c)
        assert rec.order == ["slow"] and c._recheck is not None  # a wake-up is set for when the hold ends
        now[0] += UNDERWAY_HOLD_SECONDS
        c._recheck.cancel()
        c._rewake()
        await until(lambda: rec.runs == 2)
        assert rec.order == ["slow", "next"]

    asyncio.run(scenario())


def test_projects_ready_at_their_first_reconcile_hold_no_slot():
    """An operator restart: every project already Ready reconciles without waiting for any other."""

    async def scenario() -> list[str]:
        names = tuple(f"p{i}" for i in range(10))
        rec = Recorder()
        rec.statuses = {n: READY for n in names}
        c = controller(rec, names, workers=2)
        c.underway_limit = 1
        for n in names:
            await c.trigger(("shop", n), Priority.BACKLOG)
        await c.idle()
        return rec.order

    assert asyncio.run(scenario()) == [f"p{i}" for i in range(10)]


def test_a_project_whose_events_outpace_its_reconciles_cools_down_and_they_coalesce():
    """A reconcile that changed nothing took 0.1 s and a child's event came in meanwhile: the next one starts
    COOLDOWN_FACTOR x 0.1 s after it ended, and the events of the pause join it."""

    async def scenario() -> Recorder:
        rec = Recorder(clock=Clock(), cost=0.1)
        rec.gate = asyncio.Event()
        c = controller(rec)
        await c.trigger(KEY, Priority.FOLLOW_UP)
        await until(lambda: rec.runs == 1)
        await c.trigger(KEY, Priority.FOLLOW_UP)
        rec.gate.set()
        await until(lambda: len(rec.ended) >= 1)
        for _ in range(5):
            await c.trigger(KEY, Priority.FOLLOW_UP)
            await asyncio.sleep(0.01)
        await c.idle()
        return rec

    rec = asyncio.run(scenario())
    assert rec.runs == 2
    assert rec.started[1] - rec.ended[0] >= COOLDOWN_FACTOR * 0.1 - 0.005


def run_after_a_costly_reconcile(writes: int, during: Priority | None, after: Priority | None) -> Recorder:
    """One reconcile that took 5 s by the controller's clock (a 10 s pause, were it to cool down), triggered again
    `during` it and/or `after` it ended; returns once the second run started, which must come within 2 s."""

    async def scenario() -> Recorder:
        rec = Recorder(clock=Clock(), cost=5.0, writes=writes)
        rec.gate = asyncio.Event()
        c = controller(rec)
        await c.trigger(KEY, Priority.FOLLOW_UP)
        await until(lambda: rec.runs == 1)
        if during is not None:
            await c.trigger(KEY, during)
        rec.gate.set()
        await until(lambda: len(rec.ended) >= 1)
        # The worker has taken the first reconcile's end and decided what follows (a pause, the second run, nothing).
        await until(lambda: not c.states[KEY].running or rec.runs >= 2)
        if after is not None:
            await c.trigger(KEY, after)
        await until(lambda: rec.runs >= 2, timeout=2)
        c.deactivate()
        return rec

    return asyncio.run(scenario())


def test_an_edit_during_the_cool_down_goes_at_once():
    assert run_after_a_costly_reconcile(0, Priority.FOLLOW_UP, Priority.EDIT).runs == 2


def test_an_edit_during_a_costly_reconcile_does_not_cool_down():
    assert run_after_a_costly_reconcile(0, Priority.EDIT, None).runs == 2


def test_an_event_after_a_costly_reconcile_ended_goes_at_once():
    assert run_after_a_costly_reconcile(0, None, Priority.FOLLOW_UP).runs == 2


def test_a_reconcile_that_changed_children_never_cools_down():
    assert run_after_a_costly_reconcile(3, Priority.FOLLOW_UP, None).runs == 2


def after_a_progress_report(pause: float | None, during: str, after: str | None = None) -> Recorder:
    """A reconcile reporting several sites on their way (Outcome.progress_pause = `pause`); `during` it and `after`
    it ended, a child's status moves ("status": Controller.progressed) or anything else happens ("other": a Job's
    end, a child deleted, a pod failing); returns once the second reconcile started."""

    async def scenario() -> Recorder:
        rec = Recorder(progress_pause=pause)
        rec.gate = asyncio.Event()
        c = controller(rec)
        happen = {"status": lambda: c.progressed(KEY), "other": lambda: c.enqueue(KEY)}
        c.enqueue(KEY)
        await until(lambda: rec.runs == 1)
        for _ in range(3):
            happen[during]()
        rec.gate.set()
        await until(lambda: len(rec.ended) >= 1)
        # The worker has taken the first reconcile's end and decided what follows (a pause, the second run, nothing).
        await until(lambda: not c.states[KEY].running or rec.runs >= 2)
        if after is not None:
            happen[after]()
        await until(lambda: rec.runs >= 2, timeout=2)
        c.deactivate()
        return rec

    return asyncio.run(scenario())


def test_status_moves_of_a_project_with_sites_on_their_way_wait_for_the_progress_pause_and_go_in_one_reconcile():
    rec = after_a_progress_report(0.3, "status", "status")
    assert rec.runs == 2 and rec.started[1] - rec.ended[0] >= 0.3 - 0.005


def test_anything_but_a_status_move_ends_the_progress_pause_at_once():
    assert after_a_progress_report(10.0, "status", "other").runs == 2


def test_no_progress_pause_after_a_reconcile_during_which_something_else_happened():
    assert after_a_progress_report(10.0, "other").runs == 2


def test_status_moves_go_at_once_when_the_reconcile_asked_for_no_pause():
    """A small project, or the last site on its way: its Available must not wait."""
    assert after_a_progress_report(None, "status").runs == 2


def test_no_reconcile_starts_before_the_watches_outside_kopf_have_listed():
    """After a restart the first reconcile must see every Deployment, Service and failing pod there is: one that ran
    before their lists would take a missing child for one to create and a crash-looping site for a healthy one."""
    async def scenario() -> tuple[int, int]:
        rec = Recorder()
        c = controller(rec)
        listed = [asyncio.Event(), asyncio.Event()]
        c.synced = listed
        await c.trigger(KEY, Priority.EDIT)
        listed[0].set()
        for _ in range(20):
            await asyncio.sleep(0)
        before = rec.runs
        listed[1].set()
        await until(lambda: rec.runs == 1)
        await c.idle()
        return before, rec.runs

    assert asyncio.run(scenario()) == (0, 1)
