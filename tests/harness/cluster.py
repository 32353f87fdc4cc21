"""The control plane side of the tests: one kubectl(), the CRD installed (one way, everywhere), a private control
plane (to restart its API server, or when the shared one predates a kwok stage), restricted namespaces, a
ServiceAccount's kubeconfig, and a project's children as the API server has them."""

from __future__ import annotations

import subprocess
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


ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "multisiteprojects.yaml"
RBAC_FILE = ROOT / "deploy" / "rbac.yaml"
PULL_FAILURE_STAGE = "pod-image-pull-failed"
MISSING_IMAGE = "registry.example.com/example/web:does-not-exist"  # the kwok stage fails pulls of such images


def kubectl(cluster: Any, *args: str, stdin: str | None = None, check: bool = False,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """kubectl of the control plane's own release against its kubeconfig, run from the repository root."""
    done = subprocess.run([str(cluster.kubectl), "--kubeconfig", str(cluster.kubeconfig), *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if check:
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done


def install_crd(api: client.ApiClient, path: Path = CRD_FILE) -> str:
    """Server-side apply the CRD (the committed one by default) and wait until it is Established."""
    body = yaml.safe_load(path.read_text())
    ext = client.ApiextensionsV1Api(api)
    ext.patch_custom_resource_definition(body["metadata"]["name"], body, field_manager="multisite-tests", force=True,
                                         _content_type="application/apply-patch+yaml")
    wait_for(lambda: any(c.type == "Established" and c.status == "True"
                         for c in ext.read_custom_resource_definition(body["metadata"]["name"]).status.conditions or []),
             timeout=30, message="CRD Established")
    return body["metadata"]["name"]


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





def elapsed_until(predicate: Any, timeout: float, message: str, interval: float = 0.05) -> float:
    """Seconds until predicate() holds (polling), for measurements."""
    start = time.monotonic()
    wait_for(predicate, timeout=timeout, interval=interval, message=message)
    return time.monotonic() - start


def token_kubeconfig(cluster: Any, api: client.ApiClient, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount, with a token from the TokenRequest API."""
    token = client.CoreV1Api(api).create_namespaced_service_account_token(
        account, namespace, {"spec": {"expirationSeconds": 3600}}).status.token
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    cfg = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": account}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(cfg))
    path.chmod(0o600)
    return path


def rbac_documents() -> list[dict[str, Any]]:
    """deploy/rbac.yaml as documents: what the operator may do when installed as the README says."""
    return [d for d in yaml.safe_load_all(RBAC_FILE.read_text()) if d]


def apply_docs(api: client.ApiClient, docs: list[dict[str, Any]]) -> None:
    from kubernetes import utils

    for doc in docs:
        utils.create_from_dict(api, doc)


def deployed_operator_kubeconfig(cluster: Any, admin: client.ApiClient, path: Path) -> Path:
    """The multisite-operator namespace with deploy/rbac.yaml applied, and a kubeconfig of its ServiceAccount: the
    operator with exactly the permissions an installed one has."""
    client.CoreV1Api(admin).create_namespace({"metadata": {"name": "multisite-operator"}})
    wait_for(lambda: client.CoreV1Api(admin).list_namespaced_service_account(
        "multisite-operator", field_selector="metadata.name=default").items, timeout=30, message="namespace")
    apply_docs(admin, rbac_documents())
    return token_kubeconfig(cluster, admin, "multisite-operator", "multisite-operator", path)
