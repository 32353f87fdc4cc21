#!/usr/bin/env python3
"""Which site answers each host of a MultiSiteProject, measured for real (`make routes MANIFEST=FILE`).

On a private control plane, with the operator running as users run it, Traefik routing and Divio's real Django
runtime behind the pods (tests/runtime), it applies the manifest's project with only what must point at this
machine changed (the image becomes the test project's, the IngressClass `traefik`, its database and storage
Secrets a fresh sqlite database and media directory), waits for Ready (and Populated in shared mode), then sends
one request per host of the active environment (every domain, alias and redirect, plus one host nobody serves,
plus --host ones) through Traefik and prints one JSON object per line:

    {"host": "www.example.us", "status": 301, "site_id": null, "location": "http://example.us/"}

Exit 0 when it could measure (whatever the answers), 1 when the project never became Ready (with its conditions),
2 on bad input or when Traefik or the runtime venv is not built. Everything runs in a private network namespace (the script re-executes itself under
tests/runtime/in-netns.sh) and is removed at the end, so it can run again at once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
UNSERVED = "nobody-serves-this.example.org"


def _in_namespace() -> bool:
    from runtime.netns import pod_range_is_local

    return pod_range_is_local()


def hosts_of(project: dict[str, Any], extra: list[str]) -> list[str]:
    """Every host the active environment serves (domain, aliases, redirects per site), the unserved one, extras.

    Read with the operator's own spec model, so a host the Ingress forgot still gets asked. A wildcard alias is
    asked as one concrete subdomain.
    """
    from multisite_operator.models import MultiSiteProjectSpec

    spec = MultiSiteProjectSpec.model_validate(project["spec"])
    hosts: list[str] = []
    for site in spec.sites:
        for name in spec.site_domains(site).names():
            hosts.append("any-subdomain." + name[2:] if name.startswith("*.") else name)
    return list(dict.fromkeys([*hosts, UNSERVED, *extra]))


def load_project(path: Path) -> dict[str, Any]:
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise SystemExit(f"routes: cannot read {path}: {exc}") from None
    projects = [d for d in docs if d.get("kind") == "MultiSiteProject"]
    if len(projects) != 1:
        raise SystemExit(f"routes: {path} must hold exactly one MultiSiteProject (found {len(projects)})")
    return projects[0]


def measure(project: dict[str, Any], hosts: list[str], timeout: float, log: Any) -> tuple[int, list[dict[str, Any]]]:
    """Run everything, return (exit code, answers)."""
    from kubernetes import client

    from controlplane.cluster import ControlPlane
    from harness.cluster import install_crd, restricted_namespace
    from harness.operator_process import OperatorProcess
    from harness.project import create_project, wait_condition
    from ingress.traefik import Traefik
    from runtime import project as real
    from runtime.kubelet import RealKubelet
    from serving.support import answer

    work = Path(tempfile.mkdtemp(prefix="routes-"))
    started: list[Any] = []
    try:
        t0 = time.monotonic()
        cp = ControlPlane(work / "controlplane")
        started.append(cp)
        cp.start()
        api = cp.api_client()
        install_crd(api)
        log(f"control plane up in {time.monotonic() - t0:.1f} s")
        traefik = Traefik(api, cp.kubeconfig, work / "traefik").start()
        started.append(traefik)
        kubelet = RealKubelet(cp.api_client(), work / "pods").start()
        started.append(kubelet)
        ns = restricted_namespace(api, "routes")
        operator = OperatorProcess(cp.kubeconfig, [ns], work / "operator.log").start()
        started.append(operator)
        name = project["metadata"]["name"]
        shared = project["spec"].get("mode", "shared") == "shared"
        tag = "1"
        real_project = real.on_real_runtime(project, tag)
        db_dir = real.database_dir(work, name, migrated_for=None)  # the operator's migrate Job migrates (both modes)
        core = client.CoreV1Api(api)
        for secret in real.secrets(db_dir, *real.secret_refs(real_project)):
            core.create_namespaced_secret(ns, secret)
        create_project(api, ns, real_project)
        log(f"applied {name} ({project['spec'].get('mode', 'shared')}, {project['spec'].get('environment', 'test')}); "
            "waiting for Ready" + (" and Populated" if shared else ""))
        try:
            wait_condition(api, ns, name, "Ready", "True", timeout=timeout)
            if shared:
                wait_condition(api, ns, name, "Populated", "True", timeout=timeout)
        except AssertionError as exc:
            log(f"routes: {name} never became Ready: {exc}")
            log("operator log (tail):\n" + operator.log()[-3000:])
            return 1, []
        log(f"Ready after {time.monotonic() - t0:.1f} s; asking {len(hosts)} hosts through Traefik")
        # The Ingress's last edit reaches Traefik within a fraction of a second; wait until the first host routes.
        first = hosts[0]
        deadline = time.monotonic() + 30
        while traefik.request(first).status == 404 and time.monotonic() < deadline:
            time.sleep(0.1)
        return 0, [{"host": h, **answer(traefik.request(h))} for h in hosts]
    finally:
        for thing in reversed(started):
            try:
                thing.stop()
            except Exception as exc:  # noqa: BLE001 - clean up the rest anyway
                log(f"cleanup: {exc!r}")
        shutil.rmtree(work, ignore_errors=True)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'host':<36} {'status':>6}  {'site':<5} location", "-" * 72]
    for r in rows:
        site = "-" if r["site_id"] is None else str(r["site_id"])
        lines.append(f"{r['host']:<36} {r['status']:>6}  {site:<5} {r['location'] or ''}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("manifest", type=Path, help="a file holding one MultiSiteProject (its Secrets are replaced)")
    parser.add_argument("--host", action="append", default=[], help="a further host to ask (repeatable)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for Ready (default 300)")
    parser.add_argument("--table", action="store_true", help="print a table instead of JSON lines")
    args = parser.parse_args(argv)
    project = load_project(args.manifest)
    try:
        hosts = hosts_of(project, args.host)
    except ValueError as exc:
        print(f"routes: {args.manifest}: invalid spec: {exc}", file=sys.stderr)
        return 2
    from ingress.traefik import binary
    from runtime.images import runtime_dir

    try:  # before anything starts: say what to build
        binary()
        runtime_dir()
    except FileNotFoundError as exc:
        print(f"routes: {exc}", file=sys.stderr)
        return 2
    if not _in_namespace():
        if os.environ.get("ROUTES_IN_NETNS") == "1":
            print("routes: the private network namespace was not set up", file=sys.stderr)
            return 1
        wrapper = ROOT / "tests" / "runtime" / "in-netns.sh"
        os.environ["ROUTES_IN_NETNS"] = "1"
        os.execv(str(wrapper), [str(wrapper), sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])])

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    code, rows = measure(project, hosts, args.timeout, log)
    if rows:
        print(table(rows) if args.table else "\n".join(json.dumps(r) for r in rows), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
