"""The kopf layer, and nothing else: watches and indexes in, triggers of the controller out.

kopf's change handlers (on.create/update) would write their own bookkeeping onto every project (a diff-base
annotation that outgrows the 256 KiB annotation limit near 1000 sites, progress in status, a finalizer). This
operator is level-based instead: kopf indexes are the informer caches, every event of a project or of a child
triggers the same reconcile (controller.py), and that reconcile writes only what differs. `register` puts the
handlers into a registry the caller owns (no module global), so a test or a second operator gets its own.
Pods, Deployments and Services, the many events of a rollout, are watched outside kopf (informer.py, children.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from . import certificates, claims, metrics, observe, routing_status, tracing
from .controller import KOPF_CHILD_INDEXES, Controller
from .events import EventPoster
from .kube import Connection, KubeApi, credentials
from .models import GROUP, KIND, PLURAL, VERSION
from .naming import MANAGED_BY, MANAGER, PROJECT_LABEL
from .obj import ProjectKey as Key
from .packed import pack, unpack
from .reconcile import Reconciler

OURS = {MANAGED_BY: MANAGER}
# Deployments, Services and pods are watched outside kopf (informer.py; children.watched, pods.watched).
INDEXES = ("projects_idx", "domains_idx", "foreign_hosts_idx", "foreign_routes_idx", "gateways_idx", "certificates_idx",
           *KOPF_CHILD_INDEXES)
# The Gateway API: watched only where its CRDs are installed (kopf starts these watches when the CRDs appear).
GATEWAY_API = ("gateway.networking.k8s.io", "v1")


def slim(body: Any, pack_status: bool = False) -> dict[str, Any]:
    """What reconciles read of an object; managedFields and the rest stay out of memory, and the spec is kept as
    compact JSON text (packed.py; the controller expands it for the reconcile). A project's status too: with its
    per-site domains and hosts it is the largest thing the operator keeps (~60 KB as Python objects for 20 sites,
    ~6 KB as text; 200 projects held 13 MB), and only a reconcile of that project reads it."""
    meta = body.get("metadata", {})
    keep = ("name", "namespace", "uid", "generation", "resourceVersion", "labels", "annotations", "ownerReferences",
            "creationTimestamp", "deletionTimestamp")  # resourceVersion: the reconciler's status memo is checked
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {k: meta[k] for k in keep if k in meta},
        "spec": pack(dict(body.get("spec") or {})),
        "status": pack(dict(body.get("status") or {})) if pack_status else dict(body.get("status") or {}),
    }


class NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf keeps a diff base (a deep copy of every event's body, and an annotation) for change handlers; this
    operator has none (see above), so keeping nothing changes no behaviour and saves the copy: a third less CPU
    at start-up with 200 projects (bench/ANALYSIS.md)."""

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        return None

    def fetch(self, *, body: Any) -> Any:
        return None


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


def register(registry: kopf.OperatorRegistry, controller: Controller) -> None:
    """Every handler of the operator, bound to `controller`, into `registry` (pass it to kopf.operator)."""
    metrics.LEADER.set_function(lambda: float(controller.active))

    # --- startup ------------------------------------------------------------------------------------------------
    @kopf.on.login(registry=registry)
    def login(**_: Any) -> Any:
        """The pod's service account, else $KUBECONFIG (kube.credentials): the same identity KubeApi uses."""
        return credentials()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Posting kopf's own logs as Events would write on every reconcile; ours are posted on purpose.
        settings.posting.level = logging.WARNING
        settings.networking.request_timeout = 60
        settings.networking.connect_timeout = 5
        settings.watching.connect_timeout = 5
        settings.watching.server_timeout = 300
        settings.execution.max_workers = 32
        settings.persistence.diffbase_storage = NoDiffBase()
        # Refuses writes once the Lease lapsed (leader.py).
        api = KubeApi(Connection(credentials), guard=controller.may_write)
        controller.reconciler = Reconciler(api, emit=EventPoster(api),  # needs no kopf context (events.py)
                                           secret_recheck=controller.secret_recheck)
        tracer = tracing.current()
        if tracer is not None:
            tracer.configure(settings)

    # --- indexes: the informer caches reconciles read; kopf passes each to handlers as a kwarg named by its id --
    # All `async def`, though none awaits: kopf runs a plain `def` handler in its thread pool, one hop per watch
    # event and index (a few microseconds of work each, behind a thread switch and the GIL); these run inline.
    @kopf.index(GROUP, VERSION, PLURAL, registry=registry, id="projects_idx")
    async def projects_idx(body: kopf.Body, namespace: str, name: str, **_: Any) -> dict[Key, dict[str, Any]]:
        return {(namespace, name): slim(body, pack_status=True)}

    @kopf.index(GROUP, VERSION, PLURAL, registry=registry, id="domains_idx")
    async def domains_idx(body: kopf.Body, **_: Any) -> dict[str, claims.Claim]:
        return claims.claimed_domains(controller.specs, body)

    @kopf.index("networking.k8s.io", "v1", "ingresses", registry=registry, id="foreign_hosts_idx")
    async def foreign_hosts_idx(body: kopf.Body, namespace: str, name: str, labels: Any, **_: Any) -> Any:
        """Hosts routed by Ingresses the operator does not manage (host -> namespace/name): a project asking for
        one of them is the second claim (claims.conflicts). Only hosts are kept, not the Ingresses."""
        if owning_project(body, labels):
            return None
        return {host: (namespace, name) for host in claims.ingress_hosts(body)} or None

    @kopf.index(*GATEWAY_API, "httproutes", registry=registry, id="foreign_routes_idx")
    async def foreign_routes_idx(body: kopf.Body, namespace: str, name: str, labels: Any, **_: Any) -> Any:
        """Hostnames of HTTPRoutes the operator does not manage -> (namespace, name, their Gateways)."""
        if owning_project(body, labels):
            return None
        gateways = claims.route_gateways(body, namespace)
        return {host: (namespace, name, gateways) for host in claims.route_hosts(body)} or None

    def child(body: kopf.Body, namespace: str, labels: Any) -> dict[Key, dict[str, Any]] | None:
        project = owning_project(body, labels)
        return {(namespace, project): slim(body)} if project else None

    @kopf.index("networking.k8s.io", "v1", "ingresses", labels=OURS, registry=registry, id="ingresses_idx")
    async def ingresses_idx(body: kopf.Body, namespace: str, labels: Any, **_: Any) -> Any:
        return child(body, namespace, labels)

    @kopf.index(*GATEWAY_API, "httproutes", labels=OURS, registry=registry, id="httproutes_idx")
    async def httproutes_idx(body: kopf.Body, namespace: str, labels: Any, **_: Any) -> Any:
        return child(body, namespace, labels)

    @kopf.index(*GATEWAY_API, "gateways", registry=registry, id="gateways_idx")
    async def gateways_idx(body: kopf.Body, namespace: str, name: str, **_: Any) -> Any:
        """Listener names and hostnames only: which hosts a Gateway lets a route attach (routing_status.py)."""
        return {(namespace, name): routing_status.slim_gateway(body)}

    @kopf.index("cert-manager.io", "v1", "certificates", registry=registry, id="certificates_idx")
    async def certificates_idx(body: kopf.Body, namespace: str, name: str, **_: Any) -> Any:
        """Each Certificate's Ready condition only (cert-manager's own objects: never written)."""
        return {(namespace, name): certificates.slim_certificate(body)}

    @kopf.index("batch", "v1", "jobs", labels=OURS, registry=registry, id="jobs_idx")
    async def jobs_idx(body: kopf.Body, namespace: str, labels: Any, **_: Any) -> Any:
        return child(body, namespace, labels)

    def capture(kwargs: dict[str, Any]) -> None:
        """kopf hands the live index objects to every handler; the controller keeps them to read between events."""
        for name in INDEXES:
            if name in kwargs:
                controller.indexes[name] = kwargs[name]

    # --- triggers -------------------------------------------------------------------------------------------------
    read: dict[str, Any] = {}  # per child uid: what a reconcile reads of it, as of its last event (child_event)
    site_counts: dict[Key, int] = {}  # sites per project, for the gauge (summing specs on every event is quadratic)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def project_event(namespace: str, name: str, uid: str, type: str | None, body: kopf.Body,
                            **kwargs: Any) -> None:
        capture(kwargs)
        projects = controller.indexes.get("projects_idx") or {}
        metrics.PROJECTS.set(len(projects))
        if type == "DELETED":
            site_counts.pop((namespace, name), None)
            controller.forget((namespace, name), uid)
        else:
            site_counts[(namespace, name)] = len((body.get("spec") or {}).get("sites") or [])
            priority = controller.project_priority((namespace, name), body.get("metadata", {}).get("generation"), type)
            await controller.trigger((namespace, name), priority)
        metrics.SITES.set(sum(site_counts.values()))
        # A project that changed may have released a domain that another one waits for.
        for waiting in list(controller.in_conflict - {(namespace, name)}):
            asyncio.ensure_future(controller.trigger(waiting))

    @kopf.on.event("networking.k8s.io", "v1", "ingresses", labels=OURS, registry=registry)
    @kopf.on.event("batch", "v1", "jobs", labels=OURS, registry=registry)
    @kopf.on.event(*GATEWAY_API, "httproutes", labels=OURS, registry=registry)
    async def child_event(namespace: str, labels: Any, body: kopf.Body, type: str | None, uid: str,
                          **kwargs: Any) -> None:
        capture(kwargs)
        project = owning_project(body, labels)
        if type == "DELETED":
            read.pop(uid, None)
        else:  # a status write of the Job or Deployment controller that changes nothing a reconcile reads: no trigger
            view = observe.what_reconciles_read(body)
            if view is not None:
                if read.get(uid) == view:
                    return
                read[uid] = view
        if project:
            if type == "DELETED":
                controller.child_deleted((namespace, project), body)
            await controller.trigger((namespace, project))

    @kopf.on.event("networking.k8s.io", "v1", "ingresses", registry=registry,
                   when=lambda body, labels, **_: not owning_project(body, labels))
    @kopf.on.event(*GATEWAY_API, "httproutes", registry=registry,
                   when=lambda body, labels, **_: not owning_project(body, labels))
    async def foreign_routing_event(**kwargs: Any) -> None:
        """An Ingress or HTTPRoute someone else manages changed or went: projects blocked on one of its hosts look
        again."""
        capture(kwargs)
        for waiting in list(controller.in_conflict):
            asyncio.ensure_future(controller.trigger(waiting))

    @kopf.on.event(*GATEWAY_API, "gateways", registry=registry)
    async def gateway_event(namespace: str, name: str, **kwargs: Any) -> None:
        """A Gateway's listeners changed: the projects routed through it report their hosts again."""
        capture(kwargs)
        for key, store in list((controller.indexes.get("projects_idx") or {}).items()):
            for project in store:
                if (namespace, name) in claims.project_gateways({**project, "spec": unpack(project.get("spec"))}):
                    asyncio.ensure_future(controller.trigger(key))

    @kopf.on.event("cert-manager.io", "v1", "certificates", registry=registry)
    async def certificate_event(namespace: str, **kwargs: Any) -> None:
        """A Certificate changed (rarely): the projects of its namespace with Ingress TLS report theirs again."""
        capture(kwargs)
        for key, store in list((controller.indexes.get("projects_idx") or {}).items()):
            if key[0] == namespace and any(((unpack(p.get("spec")) or {}).get("ingress") or {}).get("tls", {})
                                           .get("enabled") for p in store):
                asyncio.ensure_future(controller.trigger(key))
