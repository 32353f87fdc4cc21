"""multisite-operator: run the operator, or render what it would apply, without a cluster."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from typing import Any

import yaml
from pydantic import ValidationError

from .crd import crd
from .limits import child_problems, name_problems
from .models import KIND, MultiSiteProjectSpec
from .specs import readable
from .render import Owner, render_children
from .render.env import allowed_hosts, served_hosts, shared_env, site_env

# Reached by a local `runserver` or docker-compose web service; kept in ALLOWED_HOSTS by site-env.
LOCAL_HOSTS = ["localhost", "127.0.0.1"]


class Dumper(yaml.SafeDumper):
    """Block style, keys in our order, and multi-line strings kept readable."""


# Strings that PyYAML (YAML 1.1) leaves unquoted but kubectl's YAML reader takes for numbers: an exponent without a
# dot (a content hash such as 544107e124 in a Job annotation made `kubectl apply -f` fail: "cannot unmarshal number
# into ... annotations of type string"), and YAML 1.2's 0o/0x/0b forms.
NUMBER_LIKE = re.compile(r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?|0o[0-7]+|0x[0-9a-fA-F]+|0b[01]+")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else "'" if NUMBER_LIKE.fullmatch(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


Dumper.add_representer(str, _represent_str)


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
        children = render_children(spec, owner, site_image=spec.image)
        # What the API server or a node would refuse, in the words of the operator's InvalidSpec condition.
        if problems := name_problems(owner.name) + child_problems(children):
            raise SystemExit(f"{args.file}: MultiSiteProject {owner.name}: {'; '.join(problems)}")
        out += children
    sys.stdout.write(dump_all(out))


def cmd_crd(_: argparse.Namespace) -> None:
    sys.stdout.write(dump_all([crd()]))


def in_environment(doc: dict[str, Any], environment: str | None) -> MultiSiteProjectSpec:
    """The project's spec as if it served `environment` (None: as written), validated again for that choice."""
    spec = dict(doc.get("spec") or {})
    if environment is not None:
        spec["environment"] = environment
    try:
        return MultiSiteProjectSpec.model_validate(spec)
    except ValidationError as exc:
        name = doc.get("metadata", {}).get("name", "?")
        raise SystemExit(f"MultiSiteProject {name} ({environment} domains): {readable(exc)}") from None


def cmd_hosts(args: argparse.Namespace) -> None:
    """/etc/hosts lines for local development (the hosting document's option two): each domain to this machine.

    Locally the Sites table holds the live domains and the site-switching links point at them, so those are the
    default; `--environment test` prints the test domains instead.
    """
    for doc, _ in projects(args.file):
        spec = in_environment(doc, args.environment)
        print(f"# MultiSiteProject {doc['metadata']['name']}: {spec.environment} domains. Add these lines to "
              "/etc/hosts; remove them when done. They do not work while SITE_ID is forced (site-env).")
        seen: set[str] = set()
        for site in spec.sites:
            for host in spec.site_domains(site).names():
                if host in seen:
                    continue
                seen.add(host)
                if host.startswith("*."):
                    print(f"# {host} ({site.slug}): /etc/hosts has no wildcards; add the names you use")
                else:
                    print(f"{args.address}\t{host}\t# {site.slug} ({site.name}, SITE_ID {site.id})")
        if args.port != 80:
            print(f"# The local server listens on port {args.port}, not 80: append it to every address, "
                  f"e.g. http://{spec.site_domains(spec.sites[0]).domain}:{args.port}/")


def sh_quote(value: str) -> str:
    """A POSIX shell word for `value`; double quotes where they keep Python literals readable."""
    import shlex

    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", value):
        return value
    if "!" in value:  # history expansion in interactive shells: only single quotes are safe
        return shlex.quote(value)
    return '"' + re.sub(r'([\\"$`])', r"\\\1", value) + '"'


def cmd_site_env(args: argparse.Namespace) -> None:
    """Shell exports that force one site locally (the hosting document's option one: SITE_ID), with the multisite
    settings the cluster gives the same site, so the local runtime parses exactly what the pods get.

    STAGE and the Secret-backed variables (DATABASE_URL, DEFAULT_STORAGE_DSN) are left to the local environment.
    """
    slugs: list[str] = []
    for doc, first in projects(args.file):
        site = next((s for s in first.sites if s.slug == args.slug), None)
        if site is None:
            slugs += [s.slug for s in first.sites]
            continue
        spec = in_environment(doc, args.environment)
        site = next(s for s in spec.sites if s.slug == args.slug)
        env = site_env(spec, site) if spec.mode == "multi-project" else shared_env(spec)
        # The site's instance (multi-project) or the shared one, plus the local addresses a browser uses.
        served = spec.site_domains(site).names() if spec.mode == "multi-project" else served_hosts(spec)
        hosts = allowed_hosts(LOCAL_HOSTS + served)  # '*.example.de' as Django wants it: '.example.de'
        print(f"# Force site {site.slug} ({site.name}, SITE_ID {site.id}) of MultiSiteProject "
              f"{doc['metadata']['name']} ({spec.environment} domains):")
        flags = "" if args.environment == "live" else f" --environment {args.environment}"
        print(f'#   eval "$(multisite-operator site-env {args.file} {site.slug}{flags})"   then restart the server')
        for var in env:
            name = var["name"]
            if name == "STAGE":
                continue  # the local environment's own (local)
            if "valueFrom" in var:
                ref = var["valueFrom"].get("secretKeyRef")
                where = f"Secret {ref.get('name')} (key {ref.get('key')})" if ref else "a reference"
                print(f"# {name}: from {where} in the cluster; set your local one")
                continue
            value = var.get("value", "")  # no value is the empty string, as in the container
            if name == "SITE_ID":
                value = str(site.id)
            elif name == "ALLOWED_HOSTS":
                value = repr(hosts)
            print(f"export {name}={sh_quote(value)}")
        return
    raise SystemExit(f"{args.file}: no site with slug {args.slug!r}; slugs: {', '.join(slugs)}")


def cmd_run(args: argparse.Namespace) -> None:
    from .runner import run

    run(args)


def seconds(text: str) -> float:
    """A duration option: a number of seconds, zero or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="multisite-operator", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run the operator against the current kubeconfig (or in-cluster config)")
    r.add_argument("--namespace", action="append", default=[], help="watch only this namespace (repeatable)")
    r.add_argument("--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    r.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus /metrics on this port")
    r.add_argument("--log-format", choices=["plain", "json"], default="plain")
    r.add_argument("--verbose", action="store_true")
    r.add_argument("--peering", default=None, help="kopf peering name (needs the peering CRDs; equal priorities "
                   "pause every replica, so for HA use --leader-elect)")
    r.add_argument("--priority", type=int, default=0, help="peering priority of this replica")
    r.add_argument("--leader-elect", action="store_true",
                   help="HA: run several replicas; only the holder of a coordination.k8s.io Lease reconciles")
    r.add_argument("--lease-name", default="multisite-operator", help="name of the Lease (default %(default)s)")
    r.add_argument("--lease-namespace", default=None,
                   help="namespace of the Lease (default: POD_NAMESPACE, the pod's own, else multisite-operator)")
    r.add_argument("--identity", default=None,
                   help="this replica in the Lease (default: POD_NAME or host name, plus a random suffix)")
    r.add_argument("--lease-duration", type=float, default=15.0, help="seconds a standby waits for a silent leader")
    r.add_argument("--renew-deadline", type=float, default=10.0, help="seconds the leader retries renewing")
    r.add_argument("--retry-period", type=float, default=2.0, help="seconds between renewals and attempts")
    r.add_argument("--secret-recheck-seconds", type=seconds, default=60.0,
                   help="read a Ready, unchanged project's Secrets again (to notice a rotation) at most this often; "
                        "0 reads them on every reconcile (default %(default)s)")
    r.set_defaults(func=cmd_run)

    r = sub.add_parser("render", help="print the child objects the operator would apply, as YAML")
    r.add_argument("file", help="manifest with one or more MultiSiteProjects ('-' for stdin)")
    r.add_argument("--namespace", default=None, help="namespace for objects whose manifest has none")
    r.set_defaults(func=cmd_render)

    r = sub.add_parser("crd", help="print the CustomResourceDefinition generated from the models")
    r.set_defaults(func=cmd_crd)

    r = sub.add_parser("hosts", help="print /etc/hosts lines for a project's domains (local development)")
    r.add_argument("file", help="manifest with one or more MultiSiteProjects ('-' for stdin)")
    r.add_argument("--address", default="127.0.0.1", help="address the domains resolve to (default 127.0.0.1)")
    r.add_argument("--port", type=int, default=80, help="port of the local server (a note is printed if not 80)")
    r.add_argument("--environment", choices=["live", "test"], default="live",
                   help="which domains (default live: what the local Sites table and site-switching links use)")
    r.set_defaults(func=cmd_hosts)

    r = sub.add_parser("site-env", help="print shell exports that force one site locally (SITE_ID and multisite vars)")
    r.add_argument("file", help="manifest with the MultiSiteProject ('-' for stdin)")
    r.add_argument("slug", help="the site to force, by slug")
    r.add_argument("--environment", choices=["live", "test"], default="live",
                   help="which domains the multisite settings use (default live, like hosts)")
    r.set_defaults(func=cmd_site_env)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
