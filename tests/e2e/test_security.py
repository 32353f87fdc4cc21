"""Data and security on the real control plane: deleting a project removes only what it made, no Secret value
leaks into logs, Events or status, the operator works with exactly the RBAC in deploy/rbac.yaml, and every pod
it makes is admitted under the restricted Pod Security Standard."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from helpers import wait_for

from harness.cluster import (
    ROOT,
    deployed_operator_kubeconfig,
    owned_children,
    private_control_plane,
    rbac_documents,
    restricted_namespace,
)
from harness.operator_process import assert_no_permission_denied, assert_no_traceback, running_operator
from harness.project import (
    apply_example_secrets,
    condition,
    create_project,
    create_with_populate_output,
    delete_project,
    example_project,
    get_project,
    patch_spec,
    wait_condition,
    wait_gone,
)

PASSWORD = "Sentinel-7f3a9c-Pass"
STORAGE_KEY = "Sentinel-7f3a9c-Key"


def restricted_pod(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "main", "image": "registry.invalid/app:1", "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}


# --- deleting a project removes only what it created ----------------------------------------------------------------
def test_deleting_a_project_removes_only_what_it_created(api_client, namespace, operator):
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    apply_example_secrets(api_client, namespace)
    core.create_namespaced_persistent_volume_claim(namespace, {"metadata": {"name": "media"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"}, "data": {"A": "1"}})
    apps.create_namespaced_deployment(namespace, {"metadata": {"name": "other-app"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "other"}},
        "template": {"metadata": {"labels": {"app": "other"}}, "spec": restricted_pod("x")["spec"]}}})
    # Made by hand with the operator's labels but no ownerReference: it must not count as the operator's.
    lookalike_labels = {"app.kubernetes.io/managed-by": "multisite-operator", "multisite.dev/project": "example"}
    core.create_namespaced_service(namespace, {"metadata": {"name": "example-web-extra", "labels": lookalike_labels},
                                               "spec": {"ports": [{"port": 80}], "selector": {"app": "other"}}})

    create_project(api_client, namespace, example_project())
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
    made = set(owned_children(api_client, namespace, "example")) - {("Service", "example-web-extra")}
    assert {k for k, _ in made} == {"Deployment", "Service", "Ingress", "Job"}
    core.read_namespaced_service("example-web-extra", namespace)  # not pruned while the project runs

    delete_project(api_client, namespace, "example")
    wait_for(lambda: set(owned_children(api_client, namespace, "example")) == {("Service", "example-web-extra")},
             timeout=60, message="every child the project made is garbage-collected")
    wait_for(lambda: not core.list_namespaced_pod(namespace, label_selector="multisite.dev/project=example").items,
             timeout=60, message="the project's pods are gone")
    # What it did not make is all still there, unchanged.
    assert base64.b64decode(core.read_namespaced_secret("example-db", namespace).data["DATABASE_URL"]).startswith(
        b"postgres://")
    assert core.read_namespaced_secret("example-storage", namespace).data["DEFAULT_STORAGE_DSN"]
    assert core.read_namespaced_persistent_volume_claim("media", namespace).metadata.deletion_timestamp is None
    assert core.read_namespaced_config_map("settings", namespace).data == {"A": "1"}
    assert apps.read_namespaced_deployment("other-app", namespace).metadata.deletion_timestamp is None
    assert core.read_namespaced_service("example-web-extra", namespace).metadata.deletion_timestamp is None
    assert_no_traceback(operator.log())


# --- no Secret value anywhere ---------------------------------------------------------------------------------------
def test_no_secret_value_in_logs_events_status_or_children(api_client, namespace, verbose_operator):
    core = client.CoreV1Api(api_client)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "example-db"}, "stringData": {
        "DATABASE_URL": f"postgres://app:{PASSWORD}@db.internal:5432/app"}})
    core.create_namespaced_secret(namespace, {"metadata": {"name": "example-storage"}, "stringData": {
        "DEFAULT_STORAGE_DSN": f"s3://AKIAEXAMPLE:{STORAGE_KEY}@media.example.com/?auth=s3v4"}})
    project = example_project()
    # The populate Job fails the way Django does when the database refuses: with the connection string (and the
    # password on its own) in its termination message.
    failure = (f"django.db.utils.OperationalError: connection to postgres://app:{PASSWORD}@db.internal:5432/app "
               f"failed: password authentication failed for user app (password {PASSWORD}, storage {STORAGE_KEY})")
    create_with_populate_output(api_client, namespace, project, failure)
    failed = wait_condition(api_client, namespace, "example", "Populated", "False", timeout=60, reason="Failed")
    message = condition(failed, "Populated")["message"]
    assert "password authentication failed for user app" in message  # the useful part stays
    assert "postgres://app:[redacted]@db.internal:5432/app" in message and "(password [redacted]" in message

    # A second failure path: a key that is missing names the Secret and key, never a value.
    patch_spec(api_client, namespace, "example",
               {"storage": {"secretRef": {"name": "example-storage", "key": "MISSING"}}})
    wait_condition(api_client, namespace, "example", "Ready", "False", timeout=30, reason="SecretMissing")
    wait_for(lambda: any(e.reason == "SecretMissing" for e in core.list_namespaced_event(namespace).items),
             timeout=20, message="SecretMissing Event")

    everything = {
        "status and spec": json.dumps(get_project(api_client, namespace, "example")),
        "events": json.dumps([e.to_dict() for e in core.list_namespaced_event(namespace).items], default=str),
        "children": json.dumps([o.to_dict() for o in owned_children(api_client, namespace, "example").values()],
                               default=str),
        "operator log": verbose_operator.log(),
    }
    for where, text in everything.items():
        for value in (PASSWORD, STORAGE_KEY):
            assert value not in text, f"secret value found in {where}"
    assert "Populated=False" in everything["events"]  # the events were there to be checked
    assert_no_traceback(verbose_operator.log())


# --- RBAC: exactly deploy/rbac.yaml ---------------------------------------------------------------------------------
def test_rbac_has_no_wildcards_and_no_secret_or_pvc_writes():
    for doc in rbac_documents():
        for rule in doc.get("rules", []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), (doc["metadata"]["name"], rule)
            if "secrets" in rule["resources"]:
                assert rule["verbs"] == ["get"]
            assert "persistentvolumeclaims" not in rule["resources"]


def can(api: client.ApiClient, verb: str, resource: str, namespace: str, group: str = "",
        subresource: str = "") -> bool:
    review = client.AuthorizationV1Api(api).create_self_subject_access_review({"spec": {"resourceAttributes": {
        "verb": verb, "resource": resource, "group": group, "namespace": namespace, "subresource": subresource}}})
    return review.status.allowed


def test_operator_converges_with_exactly_the_deployed_rbac(tmp_path):
    """deploy/rbac.yaml applied verbatim on a private control plane, the operator run as deployed (cluster-wide,
    leader election in its namespace) with a TokenRequest token of that ServiceAccount and nothing else."""
    from kubernetes import config

    with private_control_plane() as cp:
        admin = cp.api_client()
        kubeconfig = deployed_operator_kubeconfig(cp, admin, tmp_path / "sa.kubeconfig")
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        sa = client.ApiClient(configuration)
        ns = restricted_namespace(admin, "t-rbac")
        # What it must never be able to do.
        for verb, resource, group in (("delete", "secrets", ""), ("list", "secrets", ""), ("update", "secrets", ""),
                                      ("delete", "persistentvolumeclaims", ""), ("get", "persistentvolumeclaims", ""),
                                      ("create", "pods", ""), ("delete", "namespaces", ""),
                                      ("update", "multisiteprojects", "multisite.dev"),
                                      ("patch", "multisiteprojects", "multisite.dev"),
                                      ("delete", "multisiteprojects", "multisite.dev"),
                                      ("create", "rolebindings", "rbac.authorization.k8s.io")):
            assert not can(sa, verb, resource, ns, group), f"{verb} {resource} must be denied"
        assert can(sa, "patch", "multisiteprojects", ns, "multisite.dev", "status")
        assert not can(sa, "update", "leases", ns, "coordination.k8s.io")  # only its own Lease, in its namespace

        apply_example_secrets(admin, ns)
        with running_operator(str(kubeconfig), [], tmp_path / "operator.log", ["--leader-elect"],
                              {"POD_NAME": "multisite-operator-0"}) as op:
            create_project(admin, ns, example_project())
            wait_condition(admin, ns, "example", "Ready", "True", timeout=60)
            wait_condition(admin, ns, "example", "Populated", "True", timeout=60)
            # Pruning (delete), Events (create) and the Lease work too.
            patch_spec(admin, ns, "example", {"ingress": {"enabled": False}})
            wait_gone(lambda: client.NetworkingV1Api(admin).read_namespaced_ingress("example", ns),
                      message="Ingress pruned by the operator")
            events = client.CoreV1Api(admin).list_namespaced_event(
                ns, field_selector="involvedObject.kind=MultiSiteProject").items
            assert {"PopulateStarted"} <= {e.reason for e in events} or events, events
            lease = client.CoordinationV1Api(admin).read_namespaced_lease("multisite-operator", "multisite-operator")
            assert lease.spec.holder_identity.startswith("multisite-operator-0_")
            log = op.log()
            assert_no_permission_denied(log)
            assert_no_traceback(log)


# --- the restricted Pod Security Standard ---------------------------------------------------------------------------
def test_generated_pods_are_admitted_under_the_restricted_pod_security_standard(api_client, namespace, operator):
    core = client.CoreV1Api(api_client)
    labels = core.read_namespace(namespace).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    # The namespace really enforces it: a pod without the restricted settings is refused.
    loose = restricted_pod("loose")
    loose["spec"].pop("securityContext")
    loose["spec"]["containers"][0].pop("securityContext")
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(namespace, loose)
    assert err.value.status == 403 and 'violates PodSecurity "restricted' in json.loads(err.value.body)["message"]

    apply_example_secrets(api_client, namespace)
    create_project(api_client, namespace, example_project())
    multi = yaml.safe_load((ROOT / "examples" / "example-multi-project.yaml").read_text().split("---")[-1])
    multi["metadata"]["name"] = "multi"
    multi["spec"]["testDomainFormat"] = "{slug}.multi.example-stage.eu.aldryn.io"
    create_project(api_client, namespace, multi)
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
    wait_condition(api_client, namespace, "multi", "Ready", "True", timeout=90)

    pods = core.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/managed-by=multisite-operator").items
    components = {(p.metadata.labels["multisite.dev/project"], p.metadata.labels["app.kubernetes.io/component"])
                  for p in pods}
    assert {("example", "web"), ("example", "populate"), ("multi", "site"), ("multi", "migrate")} <= components
    for pod in pods:
        sc = pod.spec.security_context
        assert sc.run_as_non_root is True and sc.seccomp_profile.type == "RuntimeDefault", pod.metadata.name
        for c in pod.spec.containers + (pod.spec.init_containers or []):
            csc = c.security_context
            assert csc.allow_privilege_escalation is False and csc.capabilities.drop == ["ALL"], c.name
            assert not csc.privileged and not (csc.capabilities.add or [])
        assert not pod.spec.host_network and not pod.spec.host_pid and not pod.spec.host_ipc
        assert all(v.host_path is None for v in pod.spec.volumes or [])
    running = [p for p in pods if p.metadata.labels["app.kubernetes.io/component"] in ("web", "site")]
    assert running and all(p.status.phase == "Running" for p in running)
