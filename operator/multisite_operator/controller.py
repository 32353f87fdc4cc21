"""Per-project queueing of reconciles, without kopf: a bounded work queue with priorities, coalescing, backoff after
failures, leader activation.

kopf delivers events (handlers.py); this decides when a project is reconciled: one reconcile at a time per
project, one more if anything happened meanwhile (however many events), a growing delay after a failure, a timed
retry while blocked on something outside the spec, and nothing at all on a standby replica.

Why a queue of its own: at start-up every project arrives at once. Started together (as kopf would run them), 200
reconciles hold their rendered children and responses while they wait for API threads, so memory peaks and no
project is Ready before nearly all are. Here RECONCILE_WORKERS reconciles run at once, and the queue is ordered
like controller-runtime's priority queue: a user's edit (a new generation, or a project created while running)
first, then follow-ups of projects already under way (their children's events, retries), then the start-up
backlog (the initial listing, activation). A project whose edit arrives while it waits in the backlog moves up.

The backlog also waits while STARTUP_UNDERWAY projects are under way (migrating, populating, rolling out, nothing
wrong): started all at once, 200 projects' Jobs and pods queue together in the Job controller, the scheduler and the
API server, and the first project is Ready only after most of them; admitted a few at a time, the first ones are
Ready in seconds and the cluster stays as busy. The first wave is smaller still (STARTUP_FIRST_WAVE), and every
project of the backlog that is done lets two more start, until STARTUP_UNDERWAY are under way: with 24 admitted at
once the first project's Jobs queued behind 23 others' (first Ready 4.1-6.0 s at 200 x 20, 3.2-3.6 s so). A project
counts for at most UNDERWAY_HOLD_SECONDS, so a long migration never stalls the rest of the start-up. Projects Ready
at their first reconcile (an operator restart) hold nothing; edits and follow-ups never wait for this.

A project whose children's events arrive faster than its reconciles end (1000 Deployments rolling out: a reconcile
of the 1000-site project every ~0.1 s, back to back) cools down: when triggers came in while a reconcile that
changed no child ran for at least COOLDOWN_MIN_SECONDS, the next one starts COOLDOWN_FACTOR times that later, with
every event of the pause coalesced into it. The project's reconciles then take at most a third of the time, and
the controller manager and the API server rolling its Deployments out get the CPU back. A trigger arriving after
a reconcile ended goes at once, and an edit never waits.

Cheaper reconciles made that pause rarer, not the work: at ~20 ms, below the minimum, the 1000-site project was
reconciled at the rate its Deployments' statuses moved (~13 a second, a quarter of the operator's CPU in the
rollout), each computing a progress report that the status writer replaced before writing it (status_writer.py
writes a large project's progress every few seconds). So while a reconcile reports several sites still on their
way (Outcome.progress_pause), the events that only move a child's status (`progressed`: a Deployment rolling out)
wait PROGRESS_PAUSE_SECONDS after it and go in one reconcile; any other trigger (a Job's end, a child changed or
deleted, a pod failing, an edit) ends the pause at once, and the last site's way to Available is not paused.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from . import claims, metrics, pods, tracing
from .conditions import only_progress
from .informer import ByProject
from .leader import NotLeader
from .obj import ProjectKey as Key
from .packed import ExpandCache
from .reconcile import Outcome, Reconciler
from .specs import SpecCache

log = logging.getLogger(__name__)
KOPF_CHILD_INDEXES = ("ingresses_idx", "jobs_idx", "httproutes_idx")  # kopf's (handlers.py)
CHILD_INDEXES = ("deployments_idx", "services_idx", *KOPF_CHILD_INDEXES)  # the first two: informer.ByProject
# Reconciles at once: enough to keep the API server busy, few enough that their working sets stay small; matches
# kube.API_THREADS (measured in bench/ANALYSIS.md: 16/16 keeps the start-up time at a third less peak memory).
RECONCILE_WORKERS = 16
# More workers that take only edits: an edit then never waits for one of the backlog's reconciles to end (each can
# take seconds on a loaded machine while 16 share the CPU), only for the API threads.
EDIT_WORKERS = 2
# Projects under way before the start-up backlog admits another (see above): enough to keep the cluster busy (about
# 4 projects a second finish at 200 x 20 on 2 cores, each takes a few seconds), few enough that the first are Ready
# early; measured in bench/ANALYSIS.md (round seven).
STARTUP_UNDERWAY = 24
# ... but the first wave is smaller, so that its projects are Ready in a few seconds instead of queueing behind 23
# others' Jobs; each project of the backlog that is done (Ready, a problem, past its hold) lets two more start, up to
# STARTUP_UNDERWAY (measured in bench/ANALYSIS.md, round twelve).
STARTUP_FIRST_WAVE = 8
UNDERWAY_HOLD_SECONDS = 10.0
# The cool-down of a project whose events outpace its reconciles (see above); measured in bench/ANALYSIS.md (round
# eight). Below the minimum (every project up to a few hundred sites) nothing waits.
COOLDOWN_FACTOR = 2.0
COOLDOWN_MIN_SECONDS = 0.05


class Priority(IntEnum):
    """Lower goes first."""

    EDIT = 0  # the spec changed (new generation), or a project was created while the operator runs
    FOLLOW_UP = 1  # a child, pod or status of a project changed, or its timed retry came due
    BACKLOG = 2  # the start-up listing, or activation after winning the Lease


@dataclass
class _State:
    running: bool = False
    dirty: bool = False
    queued: Priority | None = None  # the priority it waits at in the queue, None when not queued
    wanted: Priority = Priority.BACKLOG  # most urgent trigger since it was last queued or started
    ticket: int = 0  # of its live queue entry; older entries are skipped
    failures: int = 0
    retry: asyncio.TimerHandle | None = None
    cooling: asyncio.TimerHandle | None = None  # the pause after a busy reconcile; triggers meanwhile wait for it
    cost: float = 0.0  # seconds its last reconcile took, when it changed no child (0 otherwise)
    urgent: bool = False  # a trigger other than a child's status moving came since its reconcile started
    progress_pause: float | None = None  # its last reconcile's Outcome.progress_pause
    pausing_progress: bool = False  # `cooling` is that pause (which any urgent trigger ends)


@dataclass
class Controller:
    """Coalesces triggers per project and runs them from a priority queue, RECONCILE_WORKERS at a time.

    `active` is False on a standby replica (leader election, see leader.py): it keeps its caches warm from the
    watches but reconciles nothing, so it writes nothing, until it holds the Lease.
    """

    reconciler: Reconciler | None = None
    indexes: dict[str, Any] = field(default_factory=dict)  # kopf's live indexes, by handler name
    specs: SpecCache = field(default_factory=SpecCache)
    states: dict[Key, _State] = field(default_factory=dict)
    in_conflict: set[Key] = field(default_factory=set)
    active: bool = True
    pod_problems: ByProject = field(init=False)  # pods that cannot pull or crash, from the pod watch (pods.watched)
    synced: list[asyncio.Event] = field(default_factory=list)  # of the watches outside kopf: reconciles wait for all
    pull_messages: dict[Key, dict[str, str]] = field(default_factory=dict)  # first kubelet message per image
    secret_recheck: float = 60.0  # --secret-recheck-seconds, handed to the Reconciler (rotation.py)
    guard: Callable[[], None] | None = None  # with leader election: raises leader.NotLeader once the Lease lapsed
    inflight: set[asyncio.Task[Any]] = field(default_factory=set)  # reconciles under way, cancelled on losing the Lease
    workers: int = RECONCILE_WORKERS
    edit_workers: int = EDIT_WORKERS
    generations: dict[Key, Any] = field(default_factory=dict)  # last generation seen per project (for priority)
    expanded: ExpandCache = field(default_factory=ExpandCache)  # specs as dicts, parsed once per text (packed.py)
    _queue: list[tuple[int, int, Key]] = field(default_factory=list)  # heap of (priority, ticket, key)
    _tickets: itertools.count = field(default_factory=itertools.count)
    _wake: asyncio.Event | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _busy: int = 0
    underway_limit: int = STARTUP_UNDERWAY
    first_wave: int = STARTUP_FIRST_WAVE
    _from_backlog: int = 0  # projects admitted from the backlog since this replica became leader
    clock: Callable[[], float] = time.monotonic
    _underway: dict[Key, float] = field(default_factory=dict)  # project -> when it was first seen under way
    _admitted: set[Key] = field(default_factory=set)  # taken from the backlog, its reconcile not yet done
    _recheck: asyncio.TimerHandle | None = None  # wakes the workers when a project's hold ends

    def __post_init__(self) -> None:
        self.pod_problems = ByProject(self.enqueue, lambda *_: None)

    def may_write(self) -> None:
        """kube.KubeApi's write guard (handlers.py): refuses every write of a replica that is not the leader."""
        if self.guard is not None:
            self.guard()

    def activate(self) -> None:
        """Leader from now on: reconcile every known project once (the standby skipped their events), from the
        cluster's state and not from anything remembered during an earlier term."""
        if self.reconciler is not None:
            self.reconciler.forget_all()
        self.active, self._from_backlog = True, 0
        for key in list((self.indexes.get("projects_idx") or {}).keys()):
            self.enqueue(key, Priority.BACKLOG)

    def forget(self, key: Key, uid: str | None) -> None:
        """The project is gone: drop what is remembered about it."""
        if self.reconciler is not None:
            self.reconciler.forget(*key, uid)
        self.specs.forget(uid)
        self.in_conflict.discard(key)
        self.pull_messages.pop(key, None)
        self.generations.pop(key, None)
        self._underway.pop(key, None)

    def child_deleted(self, key: Key, child: dict[str, Any]) -> None:
        """A child's DELETED event: what this replica applied of it no longer stands in for the cache (recent.py)."""
        if self.reconciler is not None:
            meta = child.get("metadata") or {}
            self.reconciler.recent.gone(key, (child.get("kind"), meta.get("name")), meta.get("uid"))

    def deactivate(self) -> None:
        """Lost the Lease: stop acting at once (cancel the reconciles under way, drop timed retries and what was
        remembered); the next leader reconciles from the cluster's state."""
        self.active = False
        for task in list(self.inflight):
            task.cancel()
        self._queue.clear()
        self._underway.clear()
        self._admitted.clear()
        for state in self.states.values():
            state.queued = None
            for timer in (state.retry, state.cooling):
                if timer is not None:
                    timer.cancel()
            state.retry = state.cooling = None
        if self.reconciler is not None:
            self.reconciler.forget_all()

    def project_priority(self, key: Key, generation: Any, event_type: str | None) -> Priority:
        """How urgent a project's own event is: kopf's initial listing (type None) is backlog; a new generation or
        a project created while running is a user's edit; anything else (our status writes) is a follow-up."""
        before = self.generations.get(key)
        self.generations[key] = generation
        if event_type is None:
            return Priority.BACKLOG
        if event_type == "ADDED" or (before is not None and before != generation):
            return Priority.EDIT
        return Priority.FOLLOW_UP

    async def trigger(self, key: Key, priority: Priority = Priority.FOLLOW_UP) -> None:
        """Ask for a reconcile of `key`; returns at once (kopf's event handling never waits for a reconcile)."""
        self.enqueue(key, priority)

    def progressed(self, key: Key) -> None:
        """Only a child's status moved (informer.ByProject.progressed): may wait for a progress pause (see above)."""
        self.enqueue(key, progress=True)

    def enqueue(self, key: Key, priority: Priority = Priority.FOLLOW_UP, progress: bool = False) -> None:
        tracer = tracing.current()
        if tracer is not None:
            tracer.trigger(key)
        if not self.active:
            return
        state = self.states.setdefault(key, _State())
        state.dirty = True
        state.wanted = min(state.wanted, priority)
        state.urgent |= not progress
        if state.running:  # queued again, at `wanted`, when the running reconcile ends
            return
        if state.cooling is not None:
            if priority != Priority.EDIT and (progress or not state.pausing_progress):
                return  # queued when the pause ends
            state.cooling.cancel()
            state.cooling = None
        if state.queued is not None and state.queued <= priority:
            return
        self._push(key, state)

    def _push(self, key: Key, state: _State) -> None:
        state.queued, state.ticket = state.wanted, next(self._tickets)
        state.wanted = Priority.BACKLOG
        heapq.heappush(self._queue, (state.queued, state.ticket, key))
        self._start_workers()
        assert self._wake is not None
        self._wake.set()

    def _start_workers(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        if not self._tasks:
            self._tasks = [asyncio.ensure_future(self._work(Priority.BACKLOG)) for _ in range(self.workers)]
            self._tasks += [asyncio.ensure_future(self._work(Priority.EDIT)) for _ in range(self.edit_workers)]

    def _next(self, least: Priority) -> Key | None:
        """The most urgent project waiting (if at least as urgent as `least`), skipping entries a more urgent one
        replaced."""
        while self._queue and self._queue[0][0] <= least:
            priority, ticket, key = self._queue[0]
            state = self.states.get(key)
            if state is None or state.queued is None or state.ticket != ticket:
                heapq.heappop(self._queue)
                continue
            if priority == Priority.BACKLOG and not self._may_admit():
                return None
            heapq.heappop(self._queue)
            state.queued = None
            if priority == Priority.BACKLOG:
                self._admitted.add(key)
                self._from_backlog += 1
            return key
        return None

    def _may_admit(self) -> bool:
        """Fewer projects under way (or starting from the backlog) than the window: one more may start. The window
        is `first_wave` plus the backlog's projects done so far (admitted and no longer under way: a slow start; a
        project created meanwhile and under way counts against it, as the cluster's work it is), at most
        `underway_limit`. When full, the workers are woken again as soon as the oldest hold ends."""
        now = self.clock()
        holding = {k: since for k, since in self._underway.items() if now - since < UNDERWAY_HOLD_SECONDS}
        busy = len(holding.keys() | self._admitted)
        if busy < min(self.underway_limit, self.first_wave + max(0, self._from_backlog - busy)):
            return True
        if holding:
            self._wake_in(min(holding.values()) + UNDERWAY_HOLD_SECONDS - now)
        return False

    def _wake_in(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        if self._recheck is not None and self._recheck.when() <= loop.time() + delay:
            return
        if self._recheck is not None:
            self._recheck.cancel()
        self._recheck = loop.call_later(max(delay, 0.0), self._rewake)

    def _rewake(self) -> None:
        self._recheck = None
        if self._wake is not None:
            self._wake.set()

    def _settled(self, key: Key, outcome: Outcome) -> None:
        """Keep `_underway` current from a reconcile's outcome: progress holds a slot, Ready or a problem frees it."""
        if only_progress((outcome.status or {}).get("conditions") or []):
            self._underway.setdefault(key, self.clock())
        else:
            self._underway.pop(key, None)

    async def _work(self, least: Priority) -> None:
        """One worker: takes the most urgent project waiting, if at least as urgent as `least`."""
        assert self._wake is not None
        for synced in self.synced:  # as kopf holds its handlers until its indexes listed: a first reconcile (after
            await synced.wait()  # a restart) sees every child there is and the pods that fail already
        while True:
            key = self._next(least)
            if key is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            state = self.states[key]
            state.running, state.dirty, state.wanted, state.urgent = True, False, Priority.BACKLOG, False
            self._busy += 1
            try:
                await self._once(key, state)
            except Exception:  # noqa: BLE001 - a worker must outlive any bug in one reconcile
                log.exception("reconcile of %s/%s crashed", *key)
            finally:
                self._busy -= 1
                state.running = False
                self._admitted.discard(key)
                if self._queue:
                    self._wake.set()  # a slot for the backlog may have freed
            if self._wanted_again(key, state):
                # Triggered meanwhile: once more, at the most urgent priority asked for; after a pause when the
                # project's events outpace its reconciles, or when they only moved statuses of a project with
                # several sites on their way (see above).
                cooldown = COOLDOWN_FACTOR * state.cost if state.cost >= COOLDOWN_MIN_SECONDS else 0.0
                progress = 0.0 if state.urgent else state.progress_pause or 0.0
                if state.wanted == Priority.EDIT or not (cooldown or progress):
                    self._push(key, state)
                else:
                    state.pausing_progress = progress > cooldown
                    loop = asyncio.get_running_loop()
                    state.cooling = loop.call_later(max(cooldown, progress), self._cooled, key, state)

    def _wanted_again(self, key: Key, state: _State) -> bool:
        """Triggered since its last reconcile started, and still this replica's to reconcile (not deleted meanwhile,
        still the leader)."""
        return state.dirty and self.active and self.states.get(key) is state

    def _cooled(self, key: Key, state: _State) -> None:
        state.cooling = None
        if self._wanted_again(key, state) and not state.running and state.queued is None:
            self._push(key, state)

    async def idle(self) -> None:
        """Wait until nothing is queued or running (tests; timed retries do not count)."""
        while self._queue or self._busy or any(s.cooling is not None for s in self.states.values()):
            await asyncio.sleep(0.005)

    def _later(self, key: Key, state: _State, delay: float) -> None:
        if state.retry is not None:
            state.retry.cancel()
        loop = asyncio.get_running_loop()
        state.retry = loop.call_later(delay, self.enqueue, key, Priority.FOLLOW_UP)

    def conflicts(self, key: Key, project: dict[str, Any]) -> list[str]:
        return claims.conflicts(self.specs, key, project, self.indexes.get("domains_idx"),
                                self.indexes.get("foreign_hosts_idx"), self.indexes.get("foreign_routes_idx"))

    def crashes(self, key: Key, children: list[dict[str, Any]]) -> list[str]:
        """Start-up crashes of pods running a Deployment's current template (pods.current_crashes)."""
        return pods.describe_crashes(pods.current_crashes(self.pod_problems.get(key, []), children))

    def gateways(self, project: dict[str, Any]) -> dict[Key, dict[str, Any]]:
        """The Gateways the project's spec.gateway names, as cached (only their listeners), for routing status."""
        index = self.indexes.get("gateways_idx") or {}
        out = {}
        for k in claims.project_gateways(project):
            found = list(index.get(k, []))
            if found:
                out[k] = found[0]
        return out

    def certificates(self, key: Key) -> Any:
        """Name -> the cached cert-manager Certificate of the project's namespace (None when not cached)."""
        index = self.indexes.get("certificates_idx") or {}
        return lambda name: next(iter(index.get((key[0], name), [])), None)

    def image_problems(self, key: Key) -> list[str]:
        problems = [p for p in self.pod_problems.get(key, []) if p.get("kind") != "crash"]
        if not problems:
            self.pull_messages.pop(key, None)
            return []
        return pods.describe(problems, self.pull_messages.setdefault(key, {}))

    async def _once(self, key: Key, state: _State) -> None:
        projects = self.indexes.get("projects_idx")
        found = list(projects.get(key, [])) if projects is not None else []
        if not found or self.reconciler is None or not self.active:
            self.states.pop(key, None)
            self._underway.pop(key, None)
            return
        if getattr(self.reconciler, "retry", False) is None:  # a failed status write reconciles again (backoff)
            self.reconciler.retry = lambda k: self._later(k, self.states.setdefault(k, _State()), 5)
        # The indexes keep specs (and a project's status) as JSON text (packed.py); a status is read once per change.
        held = [c for name in CHILD_INDEXES for c in self.indexes.get(name, {}).get(key, [])]
        self.expanded.reserve(len(held) + 2)
        # The status too: a large project's reconciles outnumber its status writes while it rolls out (round nine).
        project = self.expanded.expand(found[0], ("spec", "status"))
        children = [self.expanded.expand(c) for c in held]
        conflicts = self.conflicts(key, project)
        (self.in_conflict.add if conflicts else self.in_conflict.discard)(key)
        state.cost, begun = 0.0, self.clock()  # the injected clock: the cool-down's cost, which tests set
        tracer, outcome = tracing.current(), None
        t0, cpu0 = time.monotonic(), time.process_time()
        task = asyncio.ensure_future(self.reconciler.reconcile(project, children, conflicts, self.image_problems(key),
                                                               self.specs.parse(project), self.crashes(key, children),
                                                               self.gateways(project), self.certificates(key)))
        self.inflight.add(task)
        try:
            outcome = await task
        except (NotLeader, asyncio.CancelledError):
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our own caller was cancelled (shutdown), not the reconcile by deactivate()
            log.info("reconcile of %s/%s stopped: this replica is no longer the leader", *key)
            return
        except Exception as exc:  # noqa: BLE001 - every failure is retried with backoff, never dropped
            state.failures += 1
            delay = min(2 ** state.failures, 60)
            metrics.RECONCILE_ERRORS.inc()
            metrics.RECONCILES.labels("error").inc()
            log.warning("reconcile of %s/%s failed (%s: %s); retrying in %ss", *key, type(exc).__name__,
                        str(exc)[:300], delay)
            self._later(key, state, delay)
            return
        finally:
            self.inflight.discard(task)
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - t0)
            if tracer is not None:
                tracer.reconciled(key, t0, time.monotonic(), time.process_time() - cpu0, outcome)
        state.failures = 0
        state.cost = 0.0 if outcome.writes > int(outcome.status_written) else self.clock() - begun
        state.progress_pause = outcome.progress_pause
        self._settled(key, outcome)
        metrics.WRITES.inc(outcome.writes)
        metrics.RECONCILES.labels("changed" if outcome.writes else "unchanged").inc()
        if outcome.retry_after:
            self._later(key, state, outcome.retry_after)
