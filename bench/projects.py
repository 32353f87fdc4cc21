"""The MultiSiteProjects the benchmark applies, and the two ways of applying them: the operator, or kubectl.

Projects are the repository's example (examples/example-shared.yaml: image, Secrets, TLS, test environment) with
N generated sites whose domains are unique across the whole cluster (the operator refuses a domain another
project already serves).
"""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from harness.cluster import ROOT
from harness.project import apply_example_secrets, create_project, example_project
from helpers import wait_for

Obj = dict[str, Any]
BENCH = ROOT / "bench"


def project(name: str, namespace: str, sites: int, *, mode: str = "shared", replicas: int = 2) -> Obj:
    """The example project with ``sites`` sites; domains carry namespace and name, so they are unique."""
    doc = example_project(mode=mode, replicas=replicas,
                          testDomainFormat=f"{{slug}}.{name}.{namespace}.example-stage.eu.aldryn.io")
    doc = copy.deepcopy(doc)
    doc["metadata"] = {"name": name, "namespace": namespace}
    doc["spec"]["sites"] = [
        {"slug": f"s{i}", "id": i, "name": f"Site {i}",
         "live": {"domain": f"site{i}.{name}.{namespace}.example.com"}}
        for i in range(1, sites + 1)
    ]
    return doc


def create_namespace(api: client.ApiClient, name: str) -> str:
    """A namespace like the e2e tests' (restricted Pod Security), with its Secrets and default ServiceAccount.

    Waiting for the ServiceAccount matters: pods are rejected until it exists, which would charge seconds of
    ReplicaSet back-off to whichever contender ran first.
    """
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    wait_for(lambda: core.list_namespaced_service_account(name, field_selector="metadata.name=default").items,
             timeout=60, message=f"default ServiceAccount in {name}")
    apply_example_secrets(api, name)
    return name


def render(doc: Obj, namespace: str, workdir: Path) -> tuple[Path, list[Obj]]:
    """`multisite-operator render FILE --namespace NS`, as a user would run it; returns the file and objects."""
    src = workdir / f"{namespace}-{doc['metadata']['name']}.msp.yaml"
    src.write_text(yaml.safe_dump(doc))
    out, objs = render_file(src, namespace)
    dst = workdir / f"{namespace}-{doc['metadata']['name']}.rendered.yaml"
    dst.write_text(out)
    return dst, objs


def render_file(src: Path, namespace: str) -> tuple[str, list[Obj]]:
    """`multisite-operator render FILE --namespace NS` of a file of several projects (one process for all)."""
    out = subprocess.run([sys.executable, "-m", "multisite_operator.cli", "render", str(src), "--namespace", namespace],
                         check=True, capture_output=True, text=True).stdout
    return out, [d for d in yaml.safe_load_all(out) if d]


def expected_children(objs: list[Obj]) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in objs]


def kubectl_apply(kubectl: str, kubeconfig: str, path: Path) -> float:
    """`kubectl apply --server-side -f FILE` in one process; returns its wall time. Raises with kubectl's stderr on
    failure.

    Server-side, as the operator applies: client-side apply stores the whole object in a last-applied annotation,
    which the API server refuses for a 1000-site Ingress since it carries one TLS entry per site (> 256 KiB).
    """
    t0 = time.monotonic()
    res = subprocess.run([kubectl, "--kubeconfig", kubeconfig, "apply", "--server-side", "--field-manager",
                          "bench-kubectl", "-f", str(path)], capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"kubectl apply failed: {res.stderr[-2000:]}")
    return time.monotonic() - t0


def create(api: client.ApiClient, doc: Obj) -> None:
    create_project(api, doc["metadata"]["namespace"], doc)
