"""Image pull failures as the kubelet reports them become one stable, specific Ready=False reason."""

from __future__ import annotations

from multisite_operator import conditions as cond
from multisite_operator.pods import describe, problem, pull_problem

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


ROLLING = cond.Problem("RollingOut", "Deployment example-web is not available yet")


def test_pull_problem_replaces_rolling_out_in_the_ready_summary():
    pulling = problem([f"image {IMAGE} cannot be pulled by 1 pod(s): {PULL_ERROR}"])
    ready, degraded = cond.summary([ROLLING], "serving", pulling=pulling)
    assert ready["status"] == "False" and ready["reason"] == "ImagePullFailed" and IMAGE in ready["message"]
    assert degraded["status"] == "True" and degraded["reason"] == "ImagePullFailed"


def test_pull_problem_leaves_a_ready_project_and_no_problem_alone():
    ready, degraded = cond.summary([], "serving", pulling=problem(["image x cannot be pulled"]))
    assert (ready["status"], ready["reason"], degraded["status"]) == ("True", "Ready", "False")
    assert problem([]) is None
    ready, _ = cond.summary([ROLLING], "serving", pulling=problem([]))
    assert ready["reason"] == "RollingOut"
