"""deploy/policy/ (issue 14, item 6): creating a project is creating pods; the opt-in admission policy keeps the
settings that widen what those pods may do to named groups. Proved on the real API server with impersonated users,
through kubectl, as they would meet it."""

from __future__ import annotations

import copy
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from helpers import wait_for

from harness.cluster import ROOT
from harness.project import example_project

POLICY = ROOT / "deploy" / "policy"
PARAMS_NS, PARAMS = "multisite-operator", "multisite-project-policy"
DEV = ["--as=dev", "--as-group=tenants"]  # may create projects, in no privileged group
LEAD = ["--as=lead", "--as-group=tenants", "--as-group=platform-admins"]
DENIED = ("ValidatingAdmissionPolicy 'multisite-project-privileged-fields' with binding "
          "'multisite-project-privileged-fields' denied request: ")

PRIVILEGED: dict[str, tuple[dict[str, Any], str]] = {
    "serviceAccountName": ({"serviceAccountName": "deployer"}, "spec.serviceAccountName may not be set or changed"),
    "podSecurityContext": ({"podSecurityContext": {"runAsUser": 0}}, "spec.podSecurityContext may not be set or changed"),
    "securityContext": ({"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}},
                        "spec.securityContext may not be set or changed"),
    "env secretKeyRef": ({"env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "payments", "key": "token"}}}]},
                         "spec.env may not add a Secret reference (valueFrom.secretKeyRef payments/token)"),
    "envFrom secretRef": ({"envFrom": [{"secretRef": {"name": "payments"}}]},
                          "spec.envFrom may not add a Secret (secretRef payments)"),
}


def kubectl(cluster: Any, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cluster.kubectl, "--kubeconfig", cluster.kubeconfig, *args], input=stdin,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def project(name: str, **spec: Any) -> dict[str, Any]:
    doc = copy.deepcopy(example_project(**spec))
    doc["metadata"]["name"] = name
    return doc


def create(cluster: Any, namespace: str, who: list[str], doc: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
    return kubectl(cluster, "create", "-n", namespace, *who, *extra, "-f", "-", stdin=yaml.safe_dump(doc))


def patch(cluster: Any, namespace: str, who: list[str], name: str, spec: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return kubectl(cluster, "patch", "msp", name, "-n", namespace, *who, "--type=merge", "-p",
                   yaml.safe_dump({"spec": spec}))


def denied(done: subprocess.CompletedProcess[str], says: str) -> bool:
    return done.returncode != 0 and "(Forbidden)" in done.stderr and DENIED + says in done.stderr


def set_groups(api: client.ApiClient, groups: str) -> None:
    """What an admin does to configure the policy: edit the ConfigMap the binding reads its parameters from."""
    client.CoreV1Api(api).patch_namespaced_config_map(PARAMS, PARAMS_NS, {"data": {"privilegedGroups": groups}})


@pytest.fixture
def policy(cluster: Any, api_client: client.ApiClient, crd: str, namespace: str) -> Iterator[None]:
    """deploy/policy applied as documented (after deploy/'s Namespace), plus RBAC letting group `tenants` manage
    projects in the test namespace; all removed afterwards so no other test runs under the policy."""
    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    created_ns = False
    try:
        core.read_namespace(PARAMS_NS)
    except ApiException as exc:
        assert exc.status == 404, exc
        core.create_namespace({"metadata": {"name": PARAMS_NS}})
        created_ns = True
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "projects"}, "rules": [{
        "apiGroups": ["multisite.dev"], "resources": ["multisiteprojects"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "tenants"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                     "name": "projects"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "tenants"}]})
    done = kubectl(cluster, "apply", "-k", str(POLICY))
    assert done.returncode == 0, done.stderr
    try:
        yield
    finally:
        kubectl(cluster, "delete", "-k", str(POLICY), "--ignore-not-found", "--wait=false")
        if created_ns:
            core.delete_namespace(PARAMS_NS)


def test_only_named_groups_may_widen_what_a_projects_pods_may_do(cluster, api_client, namespace, policy):
    probe = project(f"probe-{uuid.uuid4().hex[:6]}", serviceAccountName="deployer")
    wait_for(lambda: denied(create(cluster, namespace, DEV, probe, "--dry-run=server"), ""), timeout=30,
             message="the admission policy in effect")

    # The shipped parameters name system:masters only: a tenant may set none of the guarded fields, each refused
    # with a message naming the field, the user and where the allowed groups are configured.
    for case, (spec, says) in PRIVILEGED.items():
        done = create(cluster, namespace, DEV, project(f"dev-{case.split()[0].lower()}", **spec))
        assert denied(done, says), (case, done.stderr)
        assert ("user dev is not in any of the groups allowed to (system:masters, ConfigMap "
                "multisite-operator/multisite-project-policy)") in done.stderr, done.stderr
    # A plain project (its database and storage Secrets, literal env, a ConfigMap) is a tenant's to create and edit.
    plain = project("plain", env=[{"name": "FEATURE", "value": "on"}],
                    envFrom=[{"configMapRef": {"name": "settings"}}])
    assert create(cluster, namespace, DEV, plain).returncode == 0
    assert patch(cluster, namespace, DEV, "plain", {"image": "registry.example.com/example/web:1.0.1"}).returncode == 0
    # The cluster admin (system:masters) may set them.
    assert create(cluster, namespace, [], project("by-admin", **PRIVILEGED["serviceAccountName"][0])).returncode == 0

    # Configured as an admin would: the team's group instead.
    set_groups(api_client, "platform-admins, system:serviceaccounts:gitops")
    everything = {k: v for spec, _ in PRIVILEGED.values() for k, v in spec.items()}
    wait_for(lambda: create(cluster, namespace, LEAD, project("by-lead", **everything)).returncode == 0, timeout=30,
             message="a member of platform-admins creates a project with every guarded setting")
    assert denied(create(cluster, namespace, DEV, project("dev-again", **PRIVILEGED["serviceAccountName"][0])),
                  "spec.serviceAccountName may not be set or changed: user dev is not in any of the groups allowed to "
                  "(platform-admins, system:serviceaccounts:gitops, ConfigMap")

    # A tenant may still deploy a new image of the lead's project: guarded values that stay as they are pass.
    assert patch(cluster, namespace, DEV, "by-lead", {"image": "registry.example.com/example/web:2.0.0"}).returncode == 0
    assert denied(patch(cluster, namespace, DEV, "by-lead", {"serviceAccountName": "other"}),
                  "spec.serviceAccountName may not be set or changed")
    assert denied(patch(cluster, namespace, DEV, "by-lead", {"securityContext": None}),
                  "spec.securityContext may not be set or changed")
    more = everything["env"] + [{"name": "DB_ADMIN", "valueFrom": {"secretKeyRef": {"name": "example-db",
                                                                                    "key": "ADMIN"}}}]
    assert denied(patch(cluster, namespace, DEV, "by-lead", {"env": more}),
                  "spec.env may not add a Secret reference (valueFrom.secretKeyRef example-db/ADMIN)")
    assert patch(cluster, namespace, DEV, "by-lead", {"env": []}).returncode == 0  # dropping one narrows: allowed

    stored = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        "multisite.dev", "v1alpha1", namespace, "multisiteprojects", "by-lead")
    assert stored["spec"]["serviceAccountName"] == "deployer" and stored["spec"]["image"].endswith(":2.0.0")
