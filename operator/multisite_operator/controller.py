"""Per-project queueing of reconciles, without kopf: coalescing, backoff after failures, leader activation.

kopf delivers events (handlers.py); this decides when a project is reconciled: one reconcile at a time per
project, one more if anything happened meanwhile (however many events), a growing delay after a failure, a timed
retry while blocked on something outside the spec, and nothing at all on a standby replica.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from . import claims, metrics, pods, tracing
from .reconcile import Reconciler
from .specs import SpecCache

log = logging.getLogger(__name__)
Key = tuple[str, str]
CHILD_INDEXES = ("deployments_idx", "services_idx", "ingresses_idx", "jobs_idx", "httproutes_idx")


@dataclass
class _State:
    running: bool = False
    dirty: bool = False
    failures: int = 0
    retry: asyncio.TimerHandle | None = None


@dataclass
class Controller:
    """Coalesces triggers per project: one reconcile at a time, and one more if anything happened meanwhile.

    `active` is False on a standby replica (leader election, see leader.py): it keeps its caches warm from the
    watches but reconciles nothing, so it writes nothing, until it holds the Lease.
    """

    reconciler: Reconciler | None = None
    indexes: dict[str, Any] = field(default_factory=dict)  # kopf's live indexes, by handler name
    specs: SpecCache = field(default_factory=SpecCache)
    states: dict[Key, _State] = field(default_factory=dict)
    in_conflict: set[Key] = field(default_factory=set)
    active: bool = True
    pulling: dict[str, Key] = field(default_factory=dict)  # pod uid -> project, for pods that cannot pull or crash
    pull_messages: dict[Key, dict[str, str]] = field(default_factory=dict)  # first kubelet message per image

    def activate(self) -> None:
        """Leader from now on: reconcile every known project once (the standby skipped their events)."""
        self.active = True
        for key in list((self.indexes.get("projects_idx") or {}).keys()):
            asyncio.ensure_future(self.trigger(key))

    def forget(self, key: Key, uid: str | None) -> None:
        """The project is gone: drop what is remembered about it."""
        if self.reconciler is not None:
            self.reconciler.forget(*key)
        self.specs.forget(uid)
        self.in_conflict.discard(key)
        self.pull_messages.pop(key, None)

    def deactivate(self) -> None:
        """Lost the Lease: stop acting at once; the next leader reconciles from the cluster's state."""
        self.active = False
        for state in self.states.values():
            if state.retry is not None:
                state.retry.cancel()
                state.retry = None

    async def trigger(self, key: Key) -> None:
        tracer = tracing.current()
        if tracer is not None:
            tracer.trigger(key)
        if not self.active:
            return
        state = self.states.setdefault(key, _State())
        state.dirty = True
        if state.running:
            return
        state.running = True
        try:
            while state.dirty:
                state.dirty = False
                await self._once(key, state)
        finally:
            state.running = False

    def _later(self, key: Key, state: _State, delay: float) -> None:
        if state.retry is not None:
            state.retry.cancel()
        loop = asyncio.get_running_loop()
        state.retry = loop.call_later(delay, lambda: asyncio.ensure_future(self.trigger(key)))

    def conflicts(self, key: Key, project: dict[str, Any]) -> list[str]:
        return claims.conflicts(self.specs, key, project, self.indexes.get("domains_idx"),
                                self.indexes.get("foreign_hosts_idx"))

    def crashes(self, key: Key, children: list[dict[str, Any]]) -> list[str]:
        """Start-up crashes of pods running a Deployment's current template (pods.current_crashes)."""
        found = list((self.indexes.get("pull_problems_idx") or {}).get(key, []))
        return pods.describe_crashes(pods.current_crashes(found, children))

    def gateways(self, project: dict[str, Any]) -> dict[Key, dict[str, Any]]:
        """The Gateways the project's spec.gateway names, as cached (only their listeners), for routing status."""
        index = self.indexes.get("gateways_idx") or {}
        ns = project["metadata"]["namespace"]
        refs = ((project.get("spec") or {}).get("gateway") or {}).get("parentRefs") or []
        out = {}
        for ref in refs:
            k = (ref.get("namespace") or ns, ref.get("name"))
            found = list(index.get(k, []))
            if found:
                out[k] = found[0]
        return out

    def certificates(self, key: Key) -> Any:
        """Name -> the cached cert-manager Certificate of the project's namespace (None when not cached)."""
        index = self.indexes.get("certificates_idx") or {}
        return lambda name: next(iter(index.get((key[0], name), [])), None)

    def image_problems(self, key: Key) -> list[str]:
        problems = [p for p in (self.indexes.get("pull_problems_idx") or {}).get(key, []) if p.get("kind") != "crash"]
        if not problems:
            self.pull_messages.pop(key, None)
            return []
        return pods.describe(problems, self.pull_messages.setdefault(key, {}))

    async def _once(self, key: Key, state: _State) -> None:
        projects = self.indexes.get("projects_idx")
        found = list(projects.get(key, [])) if projects is not None else []
        if not found or self.reconciler is None or not self.active:
            self.states.pop(key, None)
            return
        project = found[0]
        children = [c for name in CHILD_INDEXES for c in self.indexes.get(name, {}).get(key, [])]
        conflicts = self.conflicts(key, project)
        (self.in_conflict.add if conflicts else self.in_conflict.discard)(key)
        started = time.perf_counter()
        tracer, outcome = tracing.current(), None
        t0, cpu0 = time.monotonic(), time.process_time()
        try:
            outcome = await self.reconciler.reconcile(project, children, conflicts, self.image_problems(key),
                                                      self.specs.parse(project), self.crashes(key, children),
                                                      self.gateways(project), self.certificates(key))
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
            metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)
            if tracer is not None:
                tracer.reconciled(key, t0, time.monotonic(), time.process_time() - cpu0, outcome)
        state.failures = 0
        metrics.WRITES.inc(outcome.writes)
        metrics.RECONCILES.labels("changed" if outcome.writes else "unchanged").inc()
        if outcome.retry_after:
            self._later(key, state, outcome.retry_after)
