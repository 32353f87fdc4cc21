"""Faults on the real control plane: the operator SIGKILLed mid-reconcile, the API server restarted under it, another
field manager writing our fields, and the active replica of two dying. Nothing is lost, nothing runs twice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from helpers import wait_for

from harness.cluster import (
    elapsed_until,
    owned_children,
    private_control_plane,
    resource_versions,
    restricted_namespace,
)
from harness.operator_process import assert_no_traceback, metric, running_operator
from harness.operator_process import OperatorProcess, lease_holder
from harness.project import (
    apply_example_secrets,
    condition,
    create_project,
    deployment,
    example_project,
    get_project,
    ingress_hosts,
    jobs,
    patch_spec,
    wait_condition,
)

FRANCE = {"slug": "fr", "id": 4, "name": "France", "live": {"domain": "example.fr"}}


def numbered_project(i: int) -> dict[str, Any]:
    """The example under another name and its own test domains (so projects never claim each other's)."""
    doc = example_project(testDomainFormat=f"{{slug}}.p{i}.example-stage.eu.aldryn.io")
    doc["metadata"]["name"] = f"p{i}"
    return doc


def ready_and_populated(api: client.ApiClient, ns: str, name: str) -> bool:
    project = get_project(api, ns, name)
    status = project.get("status") or {}
    return (status.get("observedGeneration") == project["metadata"]["generation"]
            and all((condition(project, t) or {}).get("status") == "True" for t in ("Ready", "Populated")))


# --- SIGKILL in the middle of a reconcile ---------------------------------------------------------------------------
def test_sigkill_mid_reconcile_then_restart_converges_without_duplicates_or_lost_changes(
        cluster, api_client, namespace, operator: OperatorProcess, tmp_path: Path):
    apply_example_secrets(api_client, namespace)
    count = 20
    for i in range(count):
        create_project(api_client, namespace, numbered_project(i))
    # Kill as soon as the first child Deployment exists: most projects are then half-way or not started.
    wait_for(lambda: client.AppsV1Api(api_client).list_namespaced_deployment(namespace).items, timeout=60,
             interval=0.02, message="the operator starts applying")
    operator.kill()
    at_kill = {f"p{i}": len(owned_children(api_client, namespace, f"p{i}")) for i in range(count)}
    assert any(n < 5 for n in at_kill.values()), f"every project was complete before the kill: {at_kill}"

    # A change made while no operator runs must not be lost.
    sites = example_project()["spec"]["sites"] + [FRANCE]
    patch_spec(api_client, namespace, "p0", {"sites": sites})

    with running_operator(cluster.kubeconfig, [namespace], tmp_path / "restarted.log") as restarted:
        started = time.monotonic()
        for i in range(count):
            wait_for(lambda i=i: ready_and_populated(api_client, namespace, f"p{i}"), timeout=120,
                     message=f"p{i} Ready and Populated after the restart")
        converged = time.monotonic() - started
        assert "fr.p0.example-stage.eu.aldryn.io" in ingress_hosts(api_client, namespace, "p0")
        populated = condition(get_project(api_client, namespace, "p0"), "Populated")["message"]
        assert "fr" in populated.split("wrote sites ")[-1].split(", "), populated

        # Exactly one populate Job per project (the one for its current content), never two for one content.
        def one_job_each() -> bool:
            per_project: dict[str, list[str]] = {}
            for job in jobs(api_client, namespace, "populate"):
                per_project.setdefault(job.metadata.labels["multisite.dev/project"], []).append(job.metadata.name)
            return sorted(per_project) == sorted(f"p{i}" for i in range(count)) and all(
                len(names) == 1 for names in per_project.values())

        wait_for(one_job_each, timeout=60, message="one populate Job per project")
        for i in range(count):
            kinds = sorted(k for k, _ in owned_children(api_client, namespace, f"p{i}"))
            # The populate Job (one, checked above) and the migration's, unless a later spec change renamed it
            # (p0: its image is migrated, so no second migration runs and the old one is pruned).
            assert [k for k in kinds if k != "Job"] == ["Deployment", "Ingress", "Service"], (f"p{i}", kinds)
        assert_no_traceback(restarted.log())
    assert_no_traceback(operator.log())
    print(f"\nkilled with children per project {sorted(at_kill.values())}; {count} projects converged "
          f"{converged:.1f} s after the restart")


# --- API server restart ---------------------------------------------------------------------------------------------
def test_api_server_restart_is_survived_without_restarting_the_operator(tmp_path: Path):
    """A private control plane: the shared one must not be restarted under other tests."""
    with private_control_plane() as cp:
        api = cp.api_client()
        ns = restricted_namespace(api, "t-apiserver-restart")
        apply_example_secrets(api, ns)
        extra = ["--leader-elect", "--lease-namespace", ns, "--identity", "only"]
        with running_operator(cp.kubeconfig, [ns], tmp_path / "operator.log", extra) as op:
            create_project(api, ns, example_project())
            wait_condition(api, ns, "example", "Ready", "True", timeout=60)
            pid = op.proc.pid

            down = cp.restart_apiserver()
            api = cp.api_client()  # fresh connections for the test itself
            assert op.proc.poll() is None and op.proc.pid == pid  # the same process, never restarted

            # After the outage the operator still acts on a spec change and on a hand-deleted child.
            changed = time.monotonic()
            sites = example_project()["spec"]["sites"] + [FRANCE]
            wait_for(lambda: patch_spec(api, ns, "example", {"sites": sites}), timeout=30,
                     message="spec patched after the restart")
            wait_for(lambda: "fr.example-stage.eu.aldryn.io" in ingress_hosts(api, ns, "example"), timeout=120,
                     message="new site routed after the API server restart")
            recovered = time.monotonic() - changed
            client.AppsV1Api(api).delete_namespaced_deployment("example-web", ns)
            wait_for(lambda: deployment(api, ns, "example-web").metadata.uid, timeout=60,
                     message="hand-deleted Deployment re-created")
            wait_condition(api, ns, "example", "Ready", "True", timeout=60)
            assert op.proc.poll() is None
            assert_no_traceback(op.log())
    print(f"\nAPI server down {down:.1f} s; a spec change made right after was applied {recovered:.1f} s later")


# --- 409: another field manager writes our fields -------------------------------------------------------------------
def test_a_competing_field_manager_is_overridden(api_client, namespace, operator):
    apply_example_secrets(api_client, namespace)
    create_project(api_client, namespace, example_project())
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
    apps = client.AppsV1Api(api_client)
    intruder = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "example-web"},
                "spec": {"replicas": 5}}

    # Without force, taking a field the operator owns is a 409 conflict: server-side apply protects it.
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("example-web", namespace, intruder, field_manager="intruder",
                                         _content_type="application/apply-patch+yaml")
    assert err.value.status == 409 and "multisite-operator" in err.value.body

    # With force the intruder wins the write, and the operator takes the field straight back.
    apps.patch_namespaced_deployment("example-web", namespace, intruder, field_manager="intruder", force=True,
                                     _content_type="application/apply-patch+yaml")
    wait_for(lambda: deployment(api_client, namespace, "example-web").spec.replicas == 2, timeout=30,
             message="replicas back to the spec's 2")

    def replicas_owner() -> set[str]:
        owners = set()
        for entry in deployment(api_client, namespace, "example-web").metadata.managed_fields or []:
            if "f:replicas" in (entry.fields_v1 or {}).get("f:spec", {}):
                owners.add(entry.manager)
        return owners

    wait_for(lambda: replicas_owner() == {"multisite-operator"}, timeout=30,
             message="multisite-operator owns spec.replicas again")
    assert_no_traceback(operator.log())


# --- high availability ----------------------------------------------------------------------------------------------


def test_two_replicas_only_the_lease_holder_acts_and_the_standby_takes_over(cluster, api_client, namespace,
                                                                             tmp_path: Path):
    apply_example_secrets(api_client, namespace)

    def replica(name: str) -> OperatorProcess:
        return OperatorProcess(cluster.kubeconfig, [namespace], tmp_path / f"{name}.log",
                               ["--leader-elect", "--lease-namespace", namespace, "--identity", name]).start()

    a = replica("a")
    b = c = None
    try:
        wait_for(lambda: lease_holder(api_client, namespace) == "a", timeout=30, message="a holds the Lease")
        b = replica("b")
        create_project(api_client, namespace, example_project())
        wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
        # Only the holder acts: the standby watched every event but made no reconcile and no write.
        assert metric(a, "multisite_reconciles_total") > 0 and metric(a, "multisite_api_writes_total") > 0
        assert metric(b, "multisite_reconciles_total") == 0 and metric(b, "multisite_api_writes_total") == 0

        # Idle: Lease renewals are the only writes; the project and its children are not touched.
        lease_rv = client.CoordinationV1Api(api_client).read_namespaced_lease("multisite-operator", namespace) \
            .metadata.resource_version
        project_rv = get_project(api_client, namespace, "example")["metadata"]["resourceVersion"]
        children = resource_versions(owned_children(api_client, namespace, "example"))
        time.sleep(5)  # more than two renewal periods (2 s)
        assert get_project(api_client, namespace, "example")["metadata"]["resourceVersion"] == project_rv
        assert resource_versions(owned_children(api_client, namespace, "example")) == children
        assert client.CoordinationV1Api(api_client).read_namespaced_lease(
            "multisite-operator", namespace).metadata.resource_version != lease_rv

        # SIGKILL the leader (no release): the standby takes over once the lease expires (15 s).
        a.kill()
        killed = time.monotonic()
        sites = example_project()["spec"]["sites"] + [FRANCE]
        patch_spec(api_client, namespace, "example", {"sites": sites})
        takeover = elapsed_until(lambda: lease_holder(api_client, namespace) == "b", timeout=60,
                                 message="b takes the Lease")
        wait_for(lambda: "fr.example-stage.eu.aldryn.io" in ingress_hosts(api_client, namespace, "example"),
                 timeout=60, message="the change made after the kill is applied by b")
        applied = time.monotonic() - killed
        wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
        assert metric(b, "multisite_reconciles_total") > 0

        # A clean stop (SIGTERM, e.g. a rolling update) releases the Lease: the next standby takes over at once.
        c = replica("c")
        wait_for(lambda: "is a candidate" in c.log(), timeout=30, message="c running as a standby")
        b.stop()
        handover = elapsed_until(lambda: lease_holder(api_client, namespace) == "c", timeout=30,
                                 message="c takes the released Lease")
        patch_spec(api_client, namespace, "example", {"replicas": 3})
        wait_for(lambda: deployment(api_client, namespace, "example-web").spec.replicas == 3, timeout=30,
                 message="c acts on a change")
        # Taken at the standby's next attempt (every 2-2.4 s), not after the 15 s expiry; slack for a loaded machine.
        assert handover < 8, f"a released Lease should be taken at the next retry, took {handover:.1f} s"
        for proc in (a, b, c):
            assert_no_traceback(proc.log())
        print(f"\nSIGKILL of the leader: standby held the Lease after {takeover:.1f} s, applied a change made "
              f"at the kill after {applied:.1f} s; SIGTERM of the next leader: handover in {handover:.1f} s")
    finally:
        for proc in (a, b, c):
            if proc is not None:
                proc.stop()
