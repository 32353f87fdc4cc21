"""The Deployments and Services cache outside kopf (children.watched, informer.ByProject): kept by project for the reconciles, a reconcile
triggered when what it reads of a child changes or a child goes, and a new list tells what went meanwhile."""

from __future__ import annotations

from typing import Any

from multisite_operator.children import watched
from multisite_operator.informer import ByProject

OWNER = {"apiVersion": "multisite.dev/v1alpha1", "kind": "MultiSiteProject", "name": "web", "controller": True}
LABELS = {"app.kubernetes.io/managed-by": "multisite-operator", "multisite.dev/project": "web"}


def deployment(uid: str, available: int = 0, stamp: str = "10:00", ns: str = "ns", owner: bool = True,
               version: str = "1", generation: int = 1, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return watched({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": f"web-{uid}", "namespace": ns, "uid": uid, "generation": generation, "resourceVersion": version,
        "annotations": annotations or {},
        "labels": LABELS, "ownerReferences": [OWNER] if owner else [], "managedFields": [{"manager": "x"}]},
        "spec": {"replicas": 1}, "status": {
            "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": available,
            "conditions": [{"type": "Progressing", "status": "True", "lastUpdateTime": stamp}]}})


class Recorded:
    def __init__(self) -> None:
        self.triggered: list[tuple[str, str]] = []
        self.deleted: list[tuple[tuple[str, str], str]] = []
        self.cache = ByProject(self.triggered.append, lambda key, body: self.deleted.append((key, body["metadata"]["uid"])))


def test_a_deployment_is_cached_slim_by_project_and_only_what_a_reconcile_reads_triggers_one():
    r = Recorded()
    r.cache.event("ADDED", deployment("a"))
    assert r.triggered == [("ns", "web")]
    [cached] = r.cache.get(("ns", "web"))
    assert cached["metadata"]["name"] == "web-a" and "managedFields" not in cached["metadata"]
    assert r.cache.get(("ns", "other"), []) == []
    r.cache.event("MODIFIED", deployment("a", stamp="10:01", version="2"))  # a condition's time alone
    assert r.triggered == [("ns", "web")]
    assert r.cache.get(("ns", "web"))[0]["metadata"]["resourceVersion"] == "2"  # the cache is current all the same
    r.cache.event("MODIFIED", deployment("a", available=1))  # Available: a reconcile acts on that
    assert r.triggered == [("ns", "web")] * 2
    r.cache.event("DELETED", deployment("a", available=1))
    assert r.triggered == [("ns", "web")] * 3 and r.deleted == [(("ns", "web"), "a")]
    assert r.cache.by_project == {}


def test_an_object_without_the_projects_controller_reference_is_not_a_child():
    r = Recorded()
    r.cache.event("ADDED", deployment("x", owner=False))  # someone's copy with our labels
    assert r.triggered == [] and r.cache.by_project == {}
    r.cache.event("ADDED", deployment("a"))
    r.cache.event("MODIFIED", deployment("a", owner=False))  # its owner reference removed: no longer ours
    assert r.cache.by_project == {} and r.triggered == [("ns", "web")] * 2


def test_a_new_list_drops_what_was_deleted_meanwhile_in_its_namespace_only():
    r = Recorded()
    r.cache.listed("ns", [deployment("a"), deployment("b")])
    r.cache.listed("two", [deployment("c", ns="two")])
    r.triggered.clear()
    r.cache.listed("ns", [deployment("b")])  # unchanged b: no trigger; a went while the watch was down
    assert r.deleted == [(("ns", "web"), "a")] and r.triggered == [("ns", "web")]
    assert [c["metadata"]["uid"] for c in r.cache.get(("ns", "web"))] == ["b"]
    assert len(r.cache.get(("two", "web"))) == 1


def test_every_service_event_counts():
    r = Recorded()
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "web", "namespace": "ns", "uid": "s", "labels": LABELS, "ownerReferences": [OWNER]}, "spec": {}}
    r.cache.event("ADDED", watched(service))
    r.cache.event("MODIFIED", watched(service))
    assert r.triggered == [("ns", "web")] * 2


def test_a_deployment_whose_status_alone_moved_is_told_apart_from_every_other_change():
    """The controller may take a rolling Deployment's status moves in batches (controller.py, progress pause), never
    a new child, a spec or metadata change, or a deletion."""
    moved: list[tuple[str, str]] = []
    r = Recorded()
    r.cache.progressed = moved.append
    r.cache.event("ADDED", deployment("a"))
    revision = {"deployment.kubernetes.io/revision": "1"}  # the Deployment controller's own bookkeeping
    r.cache.event("MODIFIED", deployment("a", annotations=revision))
    r.cache.event("MODIFIED", deployment("a", available=1, annotations=revision))  # its controller rolled it out
    assert (r.triggered, moved) == ([("ns", "web")], [("ns", "web")])
    r.cache.event("MODIFIED", deployment("a", available=1, annotations={**revision, "note": "by hand"}))
    r.cache.event("MODIFIED", deployment("a", available=1, generation=2))  # someone edited its spec
    r.cache.event("DELETED", deployment("a", available=1, generation=2))
    assert r.triggered == [("ns", "web")] * 4 and moved == [("ns", "web")]
