"""Starting kopf: the same entry point for the container image, `make run` and the tests."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
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


async def _operate(args: argparse.Namespace) -> None:
    """kopf, plus (with --leader-elect) the Lease loop that switches reconciling on and off (leader.py), and the
    check that fails liveness once the CRD was re-created under kopf's watch (crdwatch.py)."""
    import kopf

    from . import crdwatch
    from .controller import Controller
    from .handlers import register
    from .kube import Connection, KubeApi, credentials

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
        watching.cancel()
        if task is not None:
            task.cancel()
        if elector is not None:
            await asyncio.to_thread(elector.release)
