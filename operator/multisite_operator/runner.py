"""Starting kopf: the same entry point for the container image, `make run` and the tests."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable
from typing import Any

from . import logs, tracing


def run(args: argparse.Namespace) -> None:
    # kopf imports the official kubernetes client whenever it is installed, only to recognise that client's model
    # objects (which the operator never hands it): ~9 MB of memory for nothing (65 -> 56 MB at start), since kube.py
    # does not use it.
    # Where it is installed anyway (a development venv with the tests' dependencies) it stays unloaded, so the
    # operator runs there as it runs in the image, which does not ship it.
    sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]
    logs.configure(args.log_format, args.verbose)
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port)
    asyncio.run(_operate(args))


def exact_namespaces(namespaces: list[str] | None) -> bool:
    """True when every --namespace is a plain name (no kopf glob or negation pattern), so there is nothing to scan."""
    return bool(namespaces) and all(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", ns) for ns in namespaces or [])


def in_namespaces(patterns: list[str] | None) -> Callable[[dict[str, Any]], bool] | None:
    """Whether an object is in a namespace the operator serves, for watches that list every namespace: kopf's own
    pattern syntax (globs, negations), so they serve exactly the namespaces kopf's watches do (its matcher is not
    public API: kopf is pinned in pyproject.toml, and tests/unit/test_informer.py runs it)."""
    if not patterns:
        return None
    from kopf._cogs.structs.references import match_namespace

    return lambda obj: any(match_namespace((obj.get("metadata") or {}).get("namespace", ""), p) for p in patterns)


def own_watches(args: argparse.Namespace, controller: Any, loop: asyncio.AbstractEventLoop) -> list[Any]:
    """The projects' pods, Deployments and Services, watched outside kopf (informer.py: the API server selects them
    by label, and each event costs a function call, not kopf's 1-3 ms). Named namespaces are watched one by one (a
    Role in each suffices); patterns, like cluster-wide, watch every namespace and keep the matching ones."""
    from . import children, pods
    from .handlers import OURS
    from .informer import ByProject, ListWatch
    from .kube import Connection, credentials
    from .naming import PROJECT_LABEL

    exact = exact_namespaces(args.namespace)
    namespaces = args.namespace if exact else None
    keep = None if exact else in_namespaces(args.namespace)
    selector = ",".join([*(f"{k}={v}" for k, v in OURS.items()), PROJECT_LABEL])
    deployments = ByProject(controller.enqueue, controller.child_deleted, controller.progressed)
    services = ByProject(controller.enqueue, controller.child_deleted)
    controller.indexes.update(deployments_idx=deployments, services_idx=services)

    def watch(prefix: str, plural: str, consumer: Any, view: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
        return ListWatch(Connection(credentials, maxsize=len(namespaces or [None])), prefix, plural, namespaces,
                         selector, consumer, loop, keep=keep, view=view)

    return [watch("/api/v1", "pods", controller.pod_problems, pods.watched),
            watch("/apis/apps/v1", "deployments", deployments, children.watched),
            watch("/api/v1", "services", services, children.watched)]


async def _operate(args: argparse.Namespace) -> None:
    """kopf (its resource watchers mended: kopf_watchers.py), plus (with --leader-elect) the Lease loop that switches
    reconciling on and off (leader.py), and the check that fails liveness once the CRD was re-created under kopf's
    watch (crdwatch.py)."""
    import kopf

    from . import crdwatch, kopf_watchers
    from .controller import Controller
    from .handlers import register
    from .kube import Connection, KubeApi, credentials

    kopf_watchers.install()
    registry = kopf.OperatorRegistry()
    controller = Controller(secret_recheck=getattr(args, "secret_recheck_seconds", 60.0))
    register(registry, controller)
    crd_watch = crdwatch.install(registry, KubeApi(Connection(credentials, maxsize=1), attempts=1,
                                                   counts_writes=False, threads=1))
    if exact_namespaces(args.namespace):
        @kopf.on.startup(registry=registry)
        def no_scanning(settings: kopf.OperatorSettings, **_: Any) -> None:
            """Only named namespaces: kopf need not list or watch namespaces (deploy/rbac.yaml grants neither, and
            kopf's retries on the 403 cost ~54 s at start-up) nor watch CRDs (it still discovers them once)."""
            settings.scanning.disabled = True
    tracer = tracing.current()
    if tracer is not None:
        tracer.started(controller)
    elector = None
    if getattr(args, "leader_elect", False):
        from .leader import LeaderElector, LeaseConfig, default_identity, default_namespace

        lease = LeaseConfig(
            name=args.lease_name, namespace=args.lease_namespace or default_namespace(),
            identity=args.identity or default_identity(), lease_duration=args.lease_duration,
            renew_deadline=args.renew_deadline, retry_period=args.retry_period,
        )
        controller.active = False  # a standby until the Lease is ours
        leases = KubeApi(Connection(credentials, maxsize=2), attempts=1, counts_writes=False)
        elector = LeaderElector(leases, lease, controller.activate, controller.deactivate)
        controller.guard = elector.check  # every write of a reconcile needs a Lease valid by this replica's clock
    task = asyncio.create_task(elector.run()) if elector else None
    watching = asyncio.create_task(crd_watch.run())
    watches = own_watches(args, controller, asyncio.get_running_loop())
    controller.synced = [w.synced for w in watches]
    for w in watches:
        w.start()
    try:
        await kopf.operator(
            registry=registry,
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=args.liveness,
            standalone=args.peering is None,
            peering_name=args.peering,
            priority=args.priority,
        )
    finally:
        for w in watches:
            w.stop()
        watching.cancel()
        if task is not None:
            task.cancel()
        if elector is not None:
            await asyncio.to_thread(elector.release)
