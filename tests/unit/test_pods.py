"""Image pull failures as the kubelet reports them become one stable, specific Ready=False reason."""

from __future__ import annotations

from multisite_operator import conditions as cond
from multisite_operator.pods import describe, pull_problem, report

IMAGE = "registry.example.com/web:2.0"
PULL_ERROR = f'failed to pull and unpack image "{IMAGE}": not found'


def pod(reason: str, message: str = "", init: bool = False) -> dict:
    status = {"state": {"waiting": {"reason": reason, "message": message}}, "image": IMAGE, "name": "web"}
    key = "initContainerStatuses" if init else "containerStatuses"
    return {"metadata": {"name": "web-abc"}, "status": {key: [status]}}


def test_pull_reasons_are_problems_and_others_are_not():
    assert pull_problem(pod("ErrImagePull", PULL_ERROR)) == {
        "pod": "web-abc", "image": IMAGE, "reason": "ErrImagePull", "message": PULL_ERROR}
    assert pull_problem(pod("ImagePullBackOff", init=True))["reason"] == "ImagePullBackOff"
    assert pull_problem(pod("ContainerCreating")) is None
    assert pull_problem(pod("CrashLoopBackOff")) is None
    assert pull_problem({"metadata": {"name": "x"}, "status": {}}) is None


def test_message_stays_the_same_while_the_kubelet_alternates_pull_and_backoff():
    """kubelet flips ErrImagePull <-> ImagePullBackOff on every retry; status must not be rewritten each time."""
    memo: dict[str, str] = {}
    first = describe([pull_problem(pod("ErrImagePull", PULL_ERROR))], memo)
    backoff = describe([pull_problem(pod("ImagePullBackOff", f'Back-off pulling image "{IMAGE}"'))], memo)
    assert first == backoff == [f"image {IMAGE} cannot be pulled by 1 pod(s): {PULL_ERROR}"]


def _status(ready: bool, reason: str) -> tuple[dict, dict]:
    old_conditions = cond.merge([], [cond.condition("Ready", False, "RollingOut", "rolling out"),
                                     cond.condition("Degraded", False, "AsExpected", "no failure")], 3)
    old = {"observedGeneration": 3, "conditions": old_conditions}
    new = {"observedGeneration": 3, "conditions": cond.merge(old_conditions, [
        cond.condition("Ready", ready, reason, "x"), cond.condition("Degraded", False, "AsExpected", "no failure")], 3)}
    return old, new


def test_report_replaces_rolling_out_with_image_pull_failed():
    old, status = _status(False, "RollingOut")
    out = report(old, status, [f"image {IMAGE} cannot be pulled by 1 pod(s): {PULL_ERROR}"])
    by_type = {c["type"]: c for c in out["conditions"]}
    assert by_type["Ready"]["status"] == "False" and by_type["Ready"]["reason"] == "ImagePullFailed"
    assert IMAGE in by_type["Ready"]["message"]
    assert by_type["Degraded"]["status"] == "True" and by_type["Degraded"]["reason"] == "ImagePullFailed"
    # Ready was already False: its transition time stays; Degraded really changed.
    old_ready = next(c for c in old["conditions"] if c["type"] == "Ready")
    assert by_type["Ready"]["lastTransitionTime"] == old_ready["lastTransitionTime"]
    assert [c["type"] for c in out["conditions"]] == ["Ready", "Degraded"]


def test_report_leaves_a_ready_project_and_no_problem_alone():
    old, status = _status(True, "Ready")
    assert report(old, status, ["image x cannot be pulled"]) == status
    old, status = _status(False, "RollingOut")
    assert report(old, status, []) == status
