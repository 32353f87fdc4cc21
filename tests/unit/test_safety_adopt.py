"""Issue 14 item 3 on the fake API: a project never takes over an object it did not create.

The fake's `children()` plays the informer indexes (objects controlled by the project), so an object made by
someone else under a child's name is seen only by the read before a create, as on a real cluster.
"""

from __future__ import annotations

import copy

from fake_cluster import FakeCluster, example, reconcile
from multisite_operator.reconcile import Reconciler


def setup() -> tuple[FakeCluster, Reconciler]:
    cluster = FakeCluster(example("example-shared"))
    return cluster, Reconciler(cluster, cluster.emit)


def foreign(kind: str, name: str, api_version: str = "v1") -> dict:
    return {"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": "shop", "labels": {"team": "other"}},
            "spec": {"ports": [{"port": 1234}]}}


def test_an_existing_service_with_a_childs_name_is_reported_and_nothing_is_written():
    cluster, r = setup()
    cluster.objects[("Service", "example-web")] = foreign("Service", "example-web")
    before = copy.deepcopy(cluster.objects)
    out = reconcile(r, cluster)
    assert cluster.ready() == ("False", "NotOwned")
    assert "Service example-web" in cluster.condition("Ready")["message"]
    assert ("Warning", "NotOwned") in [(t, reason) for t, reason, _ in cluster.events]
    assert [w for w in cluster.writes if w[0] != "status"] == [], "no child written at all"
    assert cluster.objects == before, "the foreign Service is untouched"
    assert out.retry_after, "checked again by itself"
    # Nothing changes while it stays: no write, no new Event.
    events = len(cluster.events)
    assert reconcile(r, cluster).writes == 0 and len(cluster.events) == events


def test_once_the_foreign_object_is_gone_the_project_converges_by_itself():
    cluster, r = setup()
    cluster.objects[("Ingress", "example")] = foreign("Ingress", "example", "networking.k8s.io/v1")
    reconcile(r, cluster)
    assert cluster.ready() == ("False", "NotOwned")
    del cluster.objects[("Ingress", "example")]
    reconcile(r, cluster)
    assert sorted(k for v, k, _ in cluster.writes if v == "apply") == ["Ingress", "Job", "Service"]
    for _ in range(2):  # the migration, then the populate Job
        cluster.finish(cluster.named("Job")[-1])
        reconcile(r, cluster)
    cluster.roll_out()
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")


def test_an_object_of_an_earlier_project_with_the_same_name_is_not_ours():
    cluster, r = setup()
    reconcile(r, cluster)
    leftover = cluster.objects[("Service", "example-web")]
    leftover["metadata"]["ownerReferences"][0]["uid"] = "uid-of-a-deleted-project"
    leftover["spec"]["type"] = "NodePort"
    reconcile(r, cluster)
    assert cluster.ready() == ("False", "NotOwned")
    assert cluster.objects[("Service", "example-web")]["spec"]["type"] == "NodePort"


def test_children_that_exist_cost_no_read_and_an_idle_reconcile_no_write():
    cluster, r = setup()
    reconcile(r, cluster)
    assert len([r for r in cluster.reads if r[0] != "Secret"]) == 3, "each new child's name is read once before it is created"
    for _ in range(2):  # the migration, then the populate Job
        cluster.finish(cluster.named("Job")[-1])
        reconcile(r, cluster)
    cluster.roll_out()
    reconcile(r, cluster)
    out = reconcile(r, cluster)
    assert out.writes == 0 and cluster.writes == [] and cluster.reads == []
