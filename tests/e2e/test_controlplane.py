"""The local control plane behaves like a real cluster: what the operator's own tests rely on.

Each test checks user-visible behaviour through the API (or kubectl), waiting on conditions with timeouts.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from controlplane.cluster import ControlPlane, release
from harness.cluster import kubectl
from harness.project import condition_true
from helpers import wait_for

CLUSTER_PY = Path(__file__).resolve().parents[1] / "controlplane" / "cluster.py"
FAIL_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"
FAIL_MESSAGE_ANNOTATION = "pod-container-running-failed.stage.kwok.x-k8s.io/message"


def restricted_pod_spec(restart_policy: str = "Always") -> dict[str, Any]:
    """A pod spec the restricted Pod Security Standard admits (the test namespaces enforce it)."""
    return {
        "restartPolicy": restart_policy,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "main",
            "image": "registry.invalid/app:1",  # never pulled: kwok plays the kubelet
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        }],
    }


def job_body(name: str, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels or {}, "annotations": annotations or {}},
                "spec": restricted_pod_spec("Never"),
            },
        },
    }


def test_readyz_answers_ok(cluster: ControlPlane) -> None:
    assert kubectl(cluster, "get", "--raw", "/readyz", check=True).stdout.strip() == "ok"


def test_server_version_is_the_built_release(cluster: ControlPlane) -> None:
    versions = json.loads(kubectl(cluster, "version", "-o", "json", check=True).stdout)
    # release() is what build.sh built (go.mod's k8s.io/kubernetes); without the ldflags it would be v0.0.0-master.
    assert re.fullmatch(r"v1\.\d+\.\d+", release())
    assert versions["serverVersion"]["gitVersion"] == release()
    assert versions["clientVersion"]["gitVersion"] == release()


def test_deployment_becomes_available(namespace: str, api_client: client.ApiClient) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(namespace, {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": restricted_pod_spec()},
        },
    })
    deployment = wait_for(
        lambda: (d := apps.read_namespaced_deployment_status("web", namespace)) and condition_true(d, "Available")
        and d.status.available_replicas == 2 and d,
        timeout=60, message="Deployment web Available with 2 replicas",
    )
    assert deployment.status.ready_replicas == 2
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Running"
        assert pod.spec.node_name  # bound by kube-scheduler
        assert condition_true(pod, "Ready")


def test_job_completes(namespace: str, api_client: client.ApiClient) -> None:
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    batch.create_namespaced_job(namespace, job_body("ok"))
    job = wait_for(
        lambda: (j := batch.read_namespaced_job_status("ok", namespace)) and condition_true(j, "Complete") and j,
        timeout=60, message="Job ok Complete",
    )
    assert job.status.succeeded == 1
    [pod] = core.list_namespaced_pod(namespace, label_selector="job-name=ok").items
    assert pod.status.phase == "Succeeded"


def test_job_marked_to_fail_ends_failed_with_message(namespace: str, api_client: client.ApiClient) -> None:
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    message = "migrate: relation \"x\" does not exist"  # colon and quotes on purpose: must survive verbatim
    batch.create_namespaced_job(namespace, job_body("bad", {FAIL_LABEL: "true"}, {FAIL_MESSAGE_ANNOTATION: message}))
    job = wait_for(
        lambda: (j := batch.read_namespaced_job_status("bad", namespace)) and condition_true(j, "Failed") and j,
        timeout=60, message="Job bad Failed",
    )
    assert not condition_true(job, "Complete")
    [pod] = core.list_namespaced_pod(namespace, label_selector="job-name=bad").items
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.message == message
    assert terminated.exit_code != 0


def test_deleting_owner_garbage_collects_children(namespace: str, api_client: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    # Background propagation: a ConfigMap owning another ConfigMap.
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "child", "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid,
    }]}})
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")
    wait_for(
        lambda: not core.list_namespaced_config_map(namespace, field_selector="metadata.name=child").items,
        timeout=60, message="child ConfigMap garbage-collected",
    )
    # Foreground propagation: Deployment -> ReplicaSet -> Pods all go before the Deployment does.
    labels = {"app": "gc"}
    apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "gc"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": restricted_pod_spec()}},
    })
    wait_for(lambda: core.list_namespaced_pod(namespace, label_selector="app=gc").items,
             timeout=60, message="pod of Deployment gc")
    apps.delete_namespaced_deployment("gc", namespace, propagation_policy="Foreground")
    wait_for(
        lambda: not apps.list_namespaced_deployment(namespace).items
        and not apps.list_namespaced_replica_set(namespace).items
        and not core.list_namespaced_pod(namespace, label_selector="app=gc").items,
        timeout=60, message="Deployment, ReplicaSet and Pod gone",
    )


def test_crd_cel_rule_rejects_bad_object_with_its_message(namespace: str, api_client: client.ApiClient) -> None:
    ext, custom = client.ApiextensionsV1Api(api_client), client.CustomObjectsApi(api_client)
    group = f"t{uuid.uuid4().hex[:8]}.tests.example.com"  # unique: CRDs are cluster-wide, the cluster may be shared
    rule_message = "replicas must not exceed maxReplicas"
    ext.create_custom_resource_definition({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                    "type": "object",
                    "properties": {"replicas": {"type": "integer"}, "maxReplicas": {"type": "integer"}},
                    "x-kubernetes-validations": [{"rule": "self.replicas <= self.maxReplicas",
                                                  "message": rule_message}],
                }}}},
            }],
        },
    })
    try:
        wait_for(
            lambda: condition_true(ext.read_custom_resource_definition_status(f"widgets.{group}"), "Established"),
            timeout=30, message="CRD Established",
        )

        def widget(name: str, replicas: int) -> dict[str, Any]:
            return {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": name},
                    "spec": {"replicas": replicas, "maxReplicas": 3}}

        # Right after Established the storage may still answer 429 "initializing": retry until it takes writes.
        wait_for(lambda: custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", widget("ok", 2)),
                 timeout=30, message="valid Widget accepted")
        with pytest.raises(ApiException) as rejected:
            custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", widget("bad", 5))
        assert rejected.value.status == 422
        assert rule_message in json.loads(rejected.value.body)["message"]
    finally:
        ext.delete_custom_resource_definition(f"widgets.{group}")


def _assert_gone(pids: list[int], cp: ControlPlane) -> None:
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() and _running(p) for p in pids),
             timeout=10, message=f"processes {pids} gone")
    assert cp.leftover_pids() == []


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_separate_control_plane_restarts_apiserver_and_stops_without_leftovers(tmp_path: Path) -> None:
    cp = ControlPlane(tmp_path / "cp")
    try:
        cp.start()
        pids = cp.pids()
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
        server = cp.server
        old_apiserver = pids["kube-apiserver"]
        cp.restart_apiserver()
        assert cp.server == server and cp.is_ready()
        assert cp.pids()["kube-apiserver"] != old_apiserver
        # Still a working cluster after the restart: a namespace can be created and read back.
        core = client.CoreV1Api(cp.api_client())
        core.create_namespace({"metadata": {"name": "after-restart"}})
        assert core.read_namespace("after-restart").metadata.name == "after-restart"
        all_pids = list(cp.pids().values())
    finally:
        cp.stop()
    _assert_gone(all_pids, cp)


def test_cli_down_leaves_nothing_behind(tmp_path: Path) -> None:
    """The `make cluster-up` / `make cluster-down` path: detached processes, stopped from another process."""
    state = tmp_path / "cli"
    cli = [sys.executable, str(CLUSTER_PY)]
    cp = ControlPlane(state, detach=True)

    def up() -> list[int]:
        res = subprocess.run([*cli, "up", "--state-dir", str(state)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "export KUBECONFIG=" in res.stdout
        assert subprocess.run([*cli, "status", "--state-dir", str(state)], timeout=30).returncode == 0
        pids = list(cp.pids().values())
        assert len(pids) == 5
        return pids

    def down() -> None:
        res = subprocess.run([*cli, "down", "--state-dir", str(state)], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr

    try:
        pids = up()
        down()
        _assert_gone(pids, cp)
        assert not (state / "kubeconfig").exists()
        # A lost pid file must not strand processes: down falls back to finding them by their state dir.
        pids = up()
        (state / "pids.json").unlink()
        down()
        _assert_gone(pids, cp)
    finally:
        cp.stop()
