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
from kubernetes import client, config
from pydantic import ValidationError

from . import metrics
from .kube import KubeApi
from .models import GROUP, PLURAL, VERSION, MultiSiteProjectSpec
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
    """Coalesces triggers per project: one reconcile at a time, and one more if anything happened meanwhile."""

    reconciler: Reconciler | None = None
    indexes: dict[str, Any] = field(default_factory=dict)
    states: dict[Key, _State] = field(default_factory=dict)
    in_conflict: set[Key] = field(default_factory=set)

    async def trigger(self, key: Key) -> None:
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

    async def _once(self, key: Key, state: _State) -> None:
        projects = self.indexes.get("projects_idx")
        found = list(projects.get(key, [])) if projects is not None else []
        if not found or self.reconciler is None:
            self.states.pop(key, None)
            return
        project = found[0]
        children = [c for name in CHILD_INDEXES for c in self.indexes.get(name, {}).get(key, [])]
        conflicts = self.conflicts(key, project)
        (self.in_conflict.add if conflicts else self.in_conflict.discard)(key)
        started = time.perf_counter()
        try:
            outcome = await self.reconciler.reconcile(project, children, conflicts)
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


# --- startup ------------------------------------------------------------------------------------------------------
@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    api_client = client.ApiClient()
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


def _child(body: kopf.Body, namespace: str, labels: Any) -> dict[Key, dict[str, Any]] | None:
    project = labels.get(PROJECT_LABEL)
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


def _capture(kwargs: dict[str, Any]) -> None:
    """kopf hands the live index objects to every handler; the controller keeps them to read between events."""
    for name in ("projects_idx", "domains_idx", *CHILD_INDEXES):
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
async def child_event(namespace: str, labels: Any, **kwargs: Any) -> None:
    _capture(kwargs)
    project = labels.get(PROJECT_LABEL)
    if project:
        await CONTROLLER.trigger((namespace, project))
