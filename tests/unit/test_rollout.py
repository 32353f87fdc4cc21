"""When a Deployment counts as rolled out: the rule behind Ready in both modes, judged from the status the Deployment
controller writes at each step of a rolling update (as `kubectl rollout status` judges it).

The fake cluster's roll_out jumps straight to the end state, so these cases pin the intermediate states a real
rolling update passes through: a broken check here would report Ready while old pods still serve.
"""

from __future__ import annotations

import pytest

from fake_cluster import FakeCluster, example, reconcile
from multisite_operator.observe import deployment_ready
from multisite_operator.reconcile import Reconciler


def deployment(status: dict, wanted: int = 2) -> dict:
    return {"metadata": {"generation": 2}, "spec": {"replicas": wanted}, "status": status}


AVAILABLE = [{"type": "Available", "status": "True"}]
DONE = dict(observedGeneration=2, replicas=2, updatedReplicas=2, availableReplicas=2, conditions=AVAILABLE)


@pytest.mark.parametrize("status, why", [
    ({**DONE, "observedGeneration": 1}, "the controller has not seen the new template yet"),
    ({**DONE, "updatedReplicas": 1, "replicas": 3}, "one pod of the new template is up, an old one still serves"),
    ({**DONE, "replicas": 3}, "every new pod is up, an old pod is still terminating (surge): two versions serve"),
    ({**DONE, "availableReplicas": 1}, "a new pod is not available yet"),
    ({**DONE, "conditions": [{"type": "Available", "status": "False"}]}, "the Deployment says it is unavailable"),
    ({}, "no status at all: just created"),
])
def test_a_deployment_mid_rollout_is_not_ready(status: dict, why: str) -> None:
    assert not deployment_ready(deployment(status)), why


def test_a_finished_rollout_is_ready_and_a_scaled_to_zero_one_too() -> None:
    assert deployment_ready(deployment(DONE))
    assert deployment_ready(deployment({"observedGeneration": 2}, wanted=0))
    assert not deployment_ready(None)


def test_shared_project_is_not_ready_while_an_old_pod_still_serves_beside_the_new_ones() -> None:
    """The user's view of the surge state: Ready stays False (RollingOut) until the old pod is gone."""
    cluster = FakeCluster(example("example-shared"))
    r = Reconciler(cluster, cluster.emit)
    cluster.migrate(r)
    cluster.finish(cluster.named("Job", "example-populate")[0])
    reconcile(r, cluster)
    cluster.roll_out()
    dep = cluster.objects[("Deployment", "example-web")]
    dep["status"]["replicas"] += 1  # an old ReplicaSet's pod not yet terminated
    reconcile(r, cluster)
    assert cluster.ready() == ("False", "RollingOut")
    dep["status"]["replicas"] -= 1
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")
