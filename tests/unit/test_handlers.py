"""The kopf layer registers into the registry it is given: no module global, so two operators (or a test and an
operator) never share handlers or a controller."""

from __future__ import annotations

import asyncio

import kopf

from multisite_operator.controller import Controller
from multisite_operator.handlers import INDEXES, register


def selectors(registry: kopf.OperatorRegistry) -> set[str]:
    return {str(h.selector) for sub in (registry._indexing, registry._watching) for h in sub.get_all_handlers()}


def test_handlers_go_into_the_given_registry_only():
    mine = kopf.OperatorRegistry()
    register(mine, Controller())
    watched = selectors(mine)
    # projects, Ingresses, Jobs, HTTPRoutes, Gateways, Certificates; not Pods, Deployments or Services, the many
    # events of a rollout: informer.py watches the projects' own by label (kopf would decode and handle every pod
    # of the cluster)
    assert len(watched) == 6, watched
    assert not any(kind in s for s in watched for kind in ("pods", "deployments", "services")), watched
    assert selectors(kopf.get_default_registry()) == set()
    # kopf hands each index to handlers as a keyword named by the index handler's id: the controller reads them so.
    assert sorted(h.id for h in mine._indexing.get_all_handlers()) == sorted(INDEXES)
    # Without a login handler of its own, an operator on a fresh registry cannot authenticate at all.
    assert [h.id for h in mine._activities.get_all_handlers() if h.activity.value == "authentication"] == [
        "register.<locals>.login"]


class Recording(Controller):
    def __init__(self) -> None:
        super().__init__()
        self.triggered: list[tuple[str, str]] = []

    async def trigger(self, key, priority=None) -> None:  # type: ignore[override]
        self.triggered.append(key)


def child_event_handler(controller: Controller):
    registry = kopf.OperatorRegistry()
    register(registry, controller)
    return next(h.fn for h in registry._watching.get_all_handlers() if h.fn.__name__ == "child_event")


def job(**status: object) -> dict:
    owner = {"apiVersion": "multisite.dev/v1alpha1", "kind": "MultiSiteProject", "name": "example", "controller": True}
    labels = {"app.kubernetes.io/managed-by": "multisite-operator", "multisite.dev/project": "example"}
    return {"kind": "Job", "metadata": {"name": "example-migrate-1", "namespace": "ns", "uid": "u1", "generation": 1,
                                        "labels": labels, "ownerReferences": [owner]}, "status": status}


def test_job_status_writes_that_change_no_outcome_trigger_no_reconcile():
    controller = Recording()
    handler = child_event_handler(controller)

    def event(body: dict, type_: str | None = "MODIFIED") -> None:
        asyncio.run(handler(namespace="ns", labels=body["metadata"]["labels"], body=body, type=type_,
                            uid=body["metadata"]["uid"]))

    event(job(), "ADDED")
    event(job(startTime="2026-12-03T10:00:00Z", active=1))  # the Job controller on its way: nothing to act on
    event(job(startTime="2026-12-03T10:00:00Z", active=1, ready=1))
    assert controller.triggered == [("ns", "example")]
    done = job(succeeded=1, conditions=[{"type": "Complete", "status": "True"}])
    event(done)  # the outcome
    assert len(controller.triggered) == 2
    edited = job(succeeded=1, conditions=[{"type": "Complete", "status": "True"}])
    edited["metadata"]["labels"] = {**edited["metadata"]["labels"], "someone": "else"}
    event(edited)  # a person's change
    event(edited, "DELETED")
    assert len(controller.triggered) == 4


def test_a_deployments_view_moves_with_what_ready_reads_and_not_with_condition_timestamps():
    from multisite_operator.observe import what_reconciles_read

    def dep(available: int, stamp: str) -> dict:
        return {"kind": "Deployment", "metadata": {"generation": 2}, "status": {
            "observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": available,
            "conditions": [{"type": "Progressing", "status": "True", "lastUpdateTime": stamp}]}}

    assert what_reconciles_read(dep(0, "10:00")) == what_reconciles_read(dep(0, "10:01"))
    assert what_reconciles_read(dep(0, "10:00")) != what_reconciles_read(dep(1, "10:00"))
    assert what_reconciles_read({"kind": "Service", "metadata": {}}) is None  # every Service event counts
