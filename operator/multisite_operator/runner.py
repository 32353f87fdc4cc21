"""Starting kopf: the same entry point for the container image, `make run` and the tests."""

from __future__ import annotations

import argparse
import asyncio

from . import logs


def run(args: argparse.Namespace) -> None:
    import kopf

    from . import handlers  # noqa: F401 - registers the handlers

    logs.configure(args.log_format, args.verbose)
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port)
    asyncio.run(
        kopf.operator(
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=args.liveness,
            standalone=args.peering is None,
            peering_name=args.peering,
            priority=args.priority,
        )
    )
