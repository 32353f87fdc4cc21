"""Helpers for tests that need more than the per-test namespace: a private control plane (to restart its API
server, or when the shared one predates a kwok stage), restricted namespaces of their own, operators started by
hand with extra flags, and the checks every fault test repeats (no traceback, children of a project)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from controlplane.cluster import ControlPlane
from helpers import wait_for

from .support import ROOT, OperatorProcess

CRD_FILE = ROOT / "crds" / "multisiteprojects.yaml"
PULL_FAILURE_STAGE = "pod-image-pull-failed"
MISSING_IMAGE = "registry.example.com/example/web:does-not-exist"  # the kwok stage fails pulls of such images


def install_crd(api: client.ApiClient) -> None:
    """Server-side apply the committed CRD and wait until it is Established (for a private control plane)."""
    body = yaml.safe_load(CRD_FILE.read_text())
    ext = client.ApiextensionsV1Api(api)
    ext.patch_custom_resource_definition(body["metadata"]["name"], body, field_manager="multisite-tests", force=True,
                                         _content_type="application/apply-patch+yaml")
    wait_for(lambda: any(c.type == "Established" and c.status == "True"
                         for c in ext.read_custom_resource_definition(body["metadata"]["name"]).status.conditions or []),
             timeout=30, message="CRD Established")


def restricted_namespace(api: client.ApiClient, prefix: str) -> str:
    """A namespace enforcing the restricted Pod Security Standard, like the `namespace` fixture's."""
    core = client.CoreV1Api(api)
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted", "multisite-operator/test": "true"}}})
    wait_for(lambda: core.list_namespaced_service_account(name, field_selector="metadata.name=default").items,
             timeout=30, message=f"default ServiceAccount in {name}")
    return name


def delete_namespace(api: client.ApiClient, name: str) -> None:
    try:
        client.CoreV1Api(api).delete_namespace(name, propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:
            raise


@contextmanager
def private_control_plane() -> Iterator[ControlPlane]:
    """A control plane of this test's own (temp dir, removed after), with the CRD installed."""
    cp = ControlPlane()
    cp.start()
    try:
        install_crd(cp.api_client())
        yield cp
    finally:
        cp.stop()


def has_pull_failure_stage(cluster: ControlPlane) -> bool:
    """Whether this control plane's kwok plays image pull failures (a shared one started before the stage
    existed does not, until it is restarted)."""
    stages = Path(cluster.state_dir) / "kwok-stages.yaml"
    return stages.exists() and PULL_FAILURE_STAGE in stages.read_text()


@contextmanager
def running_operator(kubeconfig: str, namespaces: list[str], log: Path, extra: list[str] | None = None,
                     env: dict[str, str] | None = None) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(kubeconfig, namespaces, log, extra, env).start()
    try:
        yield proc
    finally:
        proc.stop()


def assert_no_traceback(log: str) -> None:
    """An operator that handles every failure on purpose never prints a Python traceback."""
    assert "Traceback (most recent call last)" not in log, log[log.index("Traceback"):][:3000]


def owned_children(api: client.ApiClient, namespace: str, project: str) -> dict[tuple[str, str], Any]:
    """Every Deployment, Service, Ingress and Job of a project, as (kind, name) -> object."""
    selector = f"multisite.dev/project={project}"
    apps, core, net, batch = (client.AppsV1Api(api), client.CoreV1Api(api), client.NetworkingV1Api(api),
                              client.BatchV1Api(api))
    found: dict[tuple[str, str], Any] = {}
    for kind, lister in (("Deployment", apps.list_namespaced_deployment), ("Service", core.list_namespaced_service),
                         ("Ingress", net.list_namespaced_ingress), ("Job", batch.list_namespaced_job)):
        for obj in lister(namespace, label_selector=selector).items:
            found[(kind, obj.metadata.name)] = obj
    return found


def resource_versions(children: dict[tuple[str, str], Any]) -> dict[tuple[str, str], str]:
    return {k: v.metadata.resource_version for k, v in children.items()}


def metric(operator: OperatorProcess, name: str) -> float:
    """Sum of every sample of a Prometheus metric (all label values)."""
    total = 0.0
    for line in operator.metrics().splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head = line.split()[0]
            if head == name or head.startswith(name + "{"):
                total += float(line.split()[-1])
    return total


def elapsed_until(predicate: Any, timeout: float, message: str, interval: float = 0.05) -> float:
    """Seconds until predicate() holds (polling), for measurements."""
    start = time.monotonic()
    wait_for(predicate, timeout=timeout, interval=interval, message=message)
    return time.monotonic() - start
