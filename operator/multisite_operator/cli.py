"""multisite-operator: run the operator, or render what it would apply, without a cluster."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

import yaml
from pydantic import ValidationError

from .crd import crd
from .models import KIND, MultiSiteProjectSpec
from .reconcile import readable
from .render import Owner, render_children
from .render.env import shared_env, site_env


class Dumper(yaml.SafeDumper):
    """Block style, keys in our order, and multi-line strings kept readable."""


Dumper.add_representer(
    str,
    lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None),
)


def dump_all(objs: list[Any]) -> str:
    return yaml.dump_all(objs, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=120)


def projects(path: str) -> Iterator[tuple[dict[str, Any], MultiSiteProjectSpec]]:
    """Every MultiSiteProject in a YAML stream (other documents, e.g. Secrets, are skipped)."""
    with open(path) if path != "-" else sys.stdin as fh:
        docs = [d for d in yaml.safe_load_all(fh) if isinstance(d, dict)]
    found = False
    for doc in docs:
        if doc.get("kind") != KIND:
            continue
        found = True
        name = doc.get("metadata", {}).get("name", "?")
        try:
            yield doc, MultiSiteProjectSpec.model_validate(doc.get("spec") or {})
        except ValidationError as exc:
            raise SystemExit(f"{path}: MultiSiteProject {name}: {readable(exc)}") from None
    if not found:
        raise SystemExit(f"{path}: no {KIND} in this file")


def cmd_render(args: argparse.Namespace) -> None:
    out: list[Any] = []
    for doc, spec in projects(args.file):
        meta = doc.get("metadata", {})
        owner = Owner(name=meta["name"], namespace=args.namespace or meta.get("namespace") or "default")
        # Offline there is no migration to wait for: show sites on spec.image, as after a successful one.
        out += render_children(spec, owner, site_image=spec.image)
    sys.stdout.write(dump_all(out))


def cmd_crd(_: argparse.Namespace) -> None:
    sys.stdout.write(dump_all([crd()]))


def cmd_hosts(args: argparse.Namespace) -> None:
    """/etc/hosts lines for local development: every served domain to the loopback address."""
    for doc, spec in projects(args.file):
        print(f"# MultiSiteProject {doc['metadata']['name']} ({spec.environment} domains)")
        for site in spec.sites:
            for host in spec.site_domains(site).names():
                if not host.startswith("*."):  # /etc/hosts has no wildcards
                    print(f"{args.address}\t{host}\t# {site.slug}")
        if args.port != 80:
            print(f"# The local server listens on port {args.port}: open http://<domain>:{args.port}/")


def cmd_site_env(args: argparse.Namespace) -> None:
    """The env that forces one site locally (SITE_ID plus the multisite settings), as shell exports."""
    import shlex

    for _, spec in projects(args.file):
        site = next((s for s in spec.sites if s.slug == args.slug), None)
        if site is None:
            raise SystemExit(f"no site with slug {args.slug!r}; slugs: {', '.join(s.slug for s in spec.sites)}")
        env = site_env(spec, site) if spec.mode == "multi-project" else shared_env(spec)
        for var in env:
            if "value" not in var:
                continue  # Secret references stay in the cluster
            value = str(site.id) if var["name"] == "SITE_ID" else var["value"]
            print(f"export {var['name']}={shlex.quote(value)}")
        return


def cmd_run(args: argparse.Namespace) -> None:
    from .runner import run

    run(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="multisite-operator", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run the operator against the current kubeconfig (or in-cluster config)")
    r.add_argument("--namespace", action="append", default=[], help="watch only this namespace (repeatable)")
    r.add_argument("--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    r.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus /metrics on this port")
    r.add_argument("--log-format", choices=["plain", "json"], default="plain")
    r.add_argument("--verbose", action="store_true")
    r.add_argument("--peering", default=None, help="kopf peering name for HA (needs the peering CRDs)")
    r.add_argument("--priority", type=int, default=0, help="peering priority of this replica")
    r.set_defaults(func=cmd_run)

    r = sub.add_parser("render", help="print the child objects the operator would apply, as YAML")
    r.add_argument("file", help="manifest with one or more MultiSiteProjects ('-' for stdin)")
    r.add_argument("--namespace", default=None, help="namespace for objects whose manifest has none")
    r.set_defaults(func=cmd_render)

    r = sub.add_parser("crd", help="print the CustomResourceDefinition generated from the models")
    r.set_defaults(func=cmd_crd)

    r = sub.add_parser("hosts", help="print /etc/hosts lines for a project's domains (local development)")
    r.add_argument("file")
    r.add_argument("--address", default="127.0.0.1")
    r.add_argument("--port", type=int, default=80, help="port of the local server (a note is printed if not 80)")
    r.set_defaults(func=cmd_hosts)

    r = sub.add_parser("site-env", help="print the env that forces one site locally")
    r.add_argument("file")
    r.add_argument("slug")
    r.set_defaults(func=cmd_site_env)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
