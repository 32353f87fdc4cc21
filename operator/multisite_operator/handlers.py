"""The kopf layer: watches and in-memory indexes in, one coalesced reconcile per project out.

kopf's change handlers (on.create/update) would write their own bookkeeping onto every project (a diff-base
annotation that outgrows the 256 KiB annotation limit near 1000 sites, progress in status, a finalizer). This
operator is level-based instead: kopf indexes are the informer caches, every event of a project or of a child
triggers the same reconcile, and that reconcile writes only what differs. So an idle operator writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import kopf
from pydantic import ValidationError

from . import metrics, pods
from .kube import KubeApi, load_api_client
from .models import GROUP, KIND, PLURAL, VERSION, MultiSiteProjectSpec
from .naming import MANAGED_BY, MANAGER, PROJECT_LABEL
from .reconcile import Reconciler

log = logging.getLogger(__name__)
Key = tuple[str, str]
CHILD_INDEXES = ("deployments_idx", "services_idx", "ingresses_idx", "jobs_idx")
OURS = {MANAGED_BY: MANAGER}


def slim(body: Any) -> dict[str, Any]:
    """What reconciles read of an object; managedFields and the rest stay out of memory."""
    meta = body.get("metadata", {})
    keep = ("name", "namespace", "uid", "generation", "labels", "annotations", "ownerReferences", "creationTimestamp")
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {k: meta[k] for k in keep if k in meta},
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }


def served_domains(spec: Any) -> list[str]:
    try:
        parsed = MultiSiteProjectSpec.model_validate(spec or {})
    except ValidationError:
        return []
    return [h for site in parsed.sites for h in parsed.site_domains(site).names()]


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
    indexes: dict[str, Any] = field(default_factory=dict)
    states: dict[Key, _State] = field(default_factory=dict)
    in_conflict: set[Key] = field(default_factory=set)
    active: bool = True
    pulling: dict[str, Key] = field(default_factory=dict)  # pod uid -> project, for pods that cannot pull
    pull_messages: dict[Key, dict[str, str]] = field(default_factory=dict)  # first kubelet message per image

    def activate(self) -> None:
        """Leader from now on: reconcile every known project once (the standby skipped their events)."""
        self.active = True
        for key in list((self.indexes.get("projects_idx") or {}).keys()):
            asyncio.ensure_future(self.trigger(key))

    def deactivate(self) -> None:
        """Lost the Lease: stop acting at once; the next leader reconciles from the cluster's state."""
        self.active = False
        for state in self.states.values():
            if state.retry is not None:
                state.retry.cancel()
                state.retry = None

    async def trigger(self, key: Key) -> None:
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
        """Domains an older project already serves: the older claim keeps them (creation time, then name)."""
        claims = self.indexes.get("domains_idx")
        if claims is None:
            return []
        mine = (project["metadata"].get("creationTimestamp", ""), *key)
        out = []
        for host in served_domains(project.get("spec")):
            older = sorted(c for c in claims.get(host, []) if c < mine and tuple(c[1:]) != key)
            if older:
                out.append(f"domain {host} is already served by MultiSiteProject {older[0][1]}/{older[0][2]}")
        return out

    def image_problems(self, key: Key) -> list[str]:
        problems = list((self.indexes.get("pull_problems_idx") or {}).get(key, []))
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
        try:
            outcome = await self.reconciler.reconcile(project, children, conflicts, self.image_problems(key))
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
        state.failures = 0
        metrics.WRITES.inc(outcome.writes)
        metrics.RECONCILES.labels("changed" if outcome.writes else "unchanged").inc()
        if outcome.retry_after:
            self._later(key, state, outcome.retry_after)


CONTROLLER = Controller()
metrics.LEADER.set_function(lambda: float(CONTROLLER.active))


# --- startup ------------------------------------------------------------------------------------------------------
@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    api_client = load_api_client()
    # Posting kopf's own logs as Events would write on every reconcile; ours are posted on purpose.
    settings.posting.level = logging.WARNING
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 5
    settings.watching.connect_timeout = 5
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 32

    CONTROLLER.reconciler = Reconciler(KubeApi(api_client), emit=_emit)


def _emit(project: dict[str, Any], type_: str, reason: str, message: str) -> None:
    kopf.event(project, type=type_, reason=reason, message=message)


# --- indexes: the informer caches reconciles read --------------------------------------------------------------
@kopf.index(GROUP, VERSION, PLURAL)
def projects_idx(body: kopf.Body, namespace: str, name: str, **_: Any) -> dict[Key, dict[str, Any]]:
    return {(namespace, name): slim(body)}


@kopf.index(GROUP, VERSION, PLURAL)
def domains_idx(body: kopf.Body, namespace: str, name: str, **_: Any) -> dict[str, tuple[str, str, str]]:
    claim = (body.get("metadata", {}).get("creationTimestamp", ""), namespace, name)
    return {host: claim for host in served_domains(body.get("spec"))}


def owning_project(body: Any, labels: Any) -> str | None:
    """The project that made this object: our labels AND our controller reference, never labels alone.

    Children are pruned when no longer desired, so an object someone else made (or copied) with our labels must
    not count as ours: only an object whose controller ownerReference is that MultiSiteProject does.
    """
    project = labels.get(PROJECT_LABEL)
    if not project:
        return None
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if (ref.get("controller") and ref.get("kind") == KIND and ref.get("name") == project
                and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/")):
            return project
    return None


def _child(body: kopf.Body, namespace: str, labels: Any) -> dict[Key, dict[str, Any]] | None:
    project = owning_project(body, labels)
    return {(namespace, project): slim(body)} if project else None


@kopf.index("apps", "v1", "deployments", labels=OURS)
def deployments_idx(body: kopf.Body, namespace: str, labels: Any, **_: Any) -> Any:
    return _child(body, namespace, labels)


@kopf.index("v1", "services", labels=OURS)
def services_idx(body: kopf.Body, namespace: str, labels: Any, **_: Any) -> Any:
    return _child(body, namespace, labels)


@kopf.index("networking.k8s.io", "v1", "ingresses", labels=OURS)
def ingresses_idx(body: kopf.Body, namespace: str, labels: Any, **_: Any) -> Any:
    return _child(body, namespace, labels)


@kopf.index("batch", "v1", "jobs", labels=OURS)
def jobs_idx(body: kopf.Body, namespace: str, labels: Any, **_: Any) -> Any:
    return _child(body, namespace, labels)


@kopf.index("v1", "pods", labels=OURS)
def pull_problems_idx(body: kopf.Body, namespace: str, labels: Any, **_: Any) -> Any:
    """Only pods that cannot pull their image are kept: a few small dicts, not every pod of every project."""
    project = labels.get(PROJECT_LABEL)
    problem = pods.pull_problem(body) if project else None
    return {(namespace, project): problem} if problem else None


def _capture(kwargs: dict[str, Any]) -> None:
    """kopf hands the live index objects to every handler; the controller keeps them to read between events."""
    for name in ("projects_idx", "domains_idx", "pull_problems_idx", *CHILD_INDEXES):
        if name in kwargs:
            CONTROLLER.indexes[name] = kwargs[name]


# --- triggers -------------------------------------------------------------------------------------------------------
@kopf.on.event(GROUP, VERSION, PLURAL)
async def project_event(namespace: str, name: str, type: str | None, **kwargs: Any) -> None:
    _capture(kwargs)
    projects = CONTROLLER.indexes.get("projects_idx") or {}
    metrics.PROJECTS.set(len(projects))
    metrics.SITES.set(sum(len(p.get("spec", {}).get("sites") or []) for store in projects.values() for p in store))
    if type == "DELETED":
        if CONTROLLER.reconciler is not None:
            CONTROLLER.reconciler.forget(namespace, name)
    else:
        await CONTROLLER.trigger((namespace, name))
    # A project that changed may have released a domain that another one waits for.
    for waiting in list(CONTROLLER.in_conflict - {(namespace, name)}):
        asyncio.ensure_future(CONTROLLER.trigger(waiting))


@kopf.on.event("apps", "v1", "deployments", labels=OURS)
@kopf.on.event("v1", "services", labels=OURS)
@kopf.on.event("networking.k8s.io", "v1", "ingresses", labels=OURS)
@kopf.on.event("batch", "v1", "jobs", labels=OURS)
async def child_event(namespace: str, labels: Any, body: kopf.Body, **kwargs: Any) -> None:
    _capture(kwargs)
    project = owning_project(body, labels)
    if project:
        await CONTROLLER.trigger((namespace, project))


@kopf.on.event("v1", "pods", labels=OURS)
async def pod_event(namespace: str, labels: Any, body: kopf.Body, uid: str, type: str | None,
                    **kwargs: Any) -> None:
    """Reconcile only when a pod starts or stops failing to pull: pods change often, pull failures rarely."""
    _capture(kwargs)
    project = labels.get(PROJECT_LABEL)
    failing = type != "DELETED" and pods.pull_problem(body) is not None
    if not project or failing == (uid in CONTROLLER.pulling):
        return
    if failing:
        CONTROLLER.pulling[uid] = (namespace, project)
    else:
        CONTROLLER.pulling.pop(uid, None)
    await CONTROLLER.trigger((namespace, project))
