"""Image pull failures as the kubelet reports them become one stable, specific Ready=False reason."""

from __future__ import annotations

from multisite_operator import conditions as cond
from multisite_operator.pods import crash as problem_crash
from multisite_operator.informer import ByProject
from multisite_operator.naming import PROJECT_LABEL
from multisite_operator.pods import (crash_problem, current_crashes, describe, describe_crashes, pod_problem,
                                     problem, pull_problem, watched)

IMAGE = "registry.example.com/web:2.0"
PULL_ERROR = f'failed to pull and unpack image "{IMAGE}": not found'


def pod(reason: str, message: str = "", init: bool = False) -> dict:
    status = {"state": {"waiting": {"reason": reason, "message": message}}, "image": IMAGE, "name": "web"}
    key = "initContainerStatuses" if init else "containerStatuses"
    return {"metadata": {"name": "web-abc"}, "status": {key: [status]}}


def test_pull_reasons_are_problems_and_others_are_not():
    assert pull_problem(pod("ErrImagePull", PULL_ERROR)) == {
        "kind": "pull", "pod": "web-abc", "image": IMAGE, "reason": "ErrImagePull", "message": PULL_ERROR}
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


# --- start-up crashes ----------------------------------------------------------------------------------------------
def web_pod(state: dict, last: dict | None = None, ready: bool = False) -> dict:
    cs = {"name": "web", "image": IMAGE, "ready": ready, "restartCount": 2, "state": state,
          "lastState": {"terminated": last} if last else {}}
    return {"metadata": {"name": "example-web-h1-x", "labels": {"pod-template-hash": "h1"},
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "example-web-h1"}]},
            "spec": {"containers": [{"name": "web", "image": IMAGE}]}, "status": {"containerStatuses": [cs]}}


EXITED = {"exitCode": 1, "reason": "Error", "message": "Traceback ...\nImportError: No module named 'shop'"}


def test_crash_loop_keeps_the_last_output_and_stays_a_crash_between_restarts():
    backoff = crash_problem(web_pod({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}, EXITED))
    assert backoff is not None and backoff["message"] == EXITED["message"].strip()
    assert backoff["deployment"] == "example-web"
    restarting = crash_problem(web_pod({"running": {"startedAt": "now"}}, EXITED))
    assert restarting is not None and restarting["message"] == backoff["message"]
    just_exited = crash_problem(web_pod({"terminated": {"exitCode": 3, "reason": "Error"}}))
    assert just_exited is not None and just_exited["message"] == "exit code 3 (Error)"


def test_healthy_or_pulling_pods_are_not_crashes():
    assert crash_problem(web_pod({"running": {}}, EXITED, ready=True)) is None, "recovered after one crash"
    assert crash_problem(web_pod({"running": {}})) is None
    assert crash_problem(web_pod({"waiting": {"reason": "ContainerCreating"}})) is None
    assert crash_problem(pod("ErrImagePull", PULL_ERROR)) is None
    assert pod_problem(pod("ErrImagePull", PULL_ERROR))["kind"] == "pull"


def test_only_pods_of_the_current_template_count():
    crash = crash_problem(web_pod({"waiting": {"reason": "CrashLoopBackOff"}}, EXITED))
    dep = {"kind": "Deployment", "metadata": {"name": "example-web"},
           "spec": {"template": {"spec": {"containers": [{"name": "web", "image": IMAGE}]}}}}
    assert current_crashes([crash], [dep]) == [crash]
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example.com/web:2.1"
    assert current_crashes([crash], [dep]) == [], "a fixed image is rolling out"
    lines = describe_crashes([crash, {**crash, "pod": "example-web-h1-y"}])
    assert lines == ["Deployment example-web: container web exits at start-up in 2 pod(s); last output: "
                     + EXITED["message"]]
    assert problem_crash(lines).reason == "CrashLoop"


def test_crash_message_fits_an_event_in_bytes_not_characters():
    """The API server refuses an Event whose message exceeds 1024 bytes; a traceback's '…' or '^' marks add up."""
    crash = crash_problem(web_pod({"waiting": {"reason": "CrashLoopBackOff"}},
                                  {**EXITED, "message": "…" * 2000}))
    message = problem_crash(describe_crashes([crash])).message
    assert len(f"Ready=False: {message}".encode()) <= 1024


def labelled(uid: str, reason: str, namespace: str = "ns", project: str | None = "web") -> dict:
    """A pod as the pod watch hands it on (pods.watched)."""
    found = pod(reason, PULL_ERROR)
    found["metadata"] = {"name": f"pod-{uid}", "uid": uid, "namespace": namespace,
                         "labels": {PROJECT_LABEL: project} if project else {}}
    return watched(found)


def test_the_pod_watch_reconciles_a_project_when_a_pod_starts_or_stops_failing_not_on_every_event():
    triggered: list[tuple[str, str]] = []
    seen = ByProject(triggered.append, lambda *_: None)
    seen.event("ADDED", labelled("a", "ContainerCreating"))
    assert triggered == [] and seen.get(("ns", "web"), []) == []
    seen.event("MODIFIED", labelled("a", "ErrImagePull"))
    assert triggered == [("ns", "web")] and [p["reason"] for p in seen.get(("ns", "web"), [])] == ["ErrImagePull"]
    seen.event("MODIFIED", labelled("a", "ImagePullBackOff"))  # still failing: no reconcile, the latest is kept
    assert triggered == [("ns", "web")] and [p["reason"] for p in seen.get(("ns", "web"), [])] == ["ImagePullBackOff"]
    seen.event("DELETED", labelled("a", "ImagePullBackOff"))
    assert triggered == [("ns", "web")] * 2 and seen.get(("ns", "web"), []) == [] and seen.by_project == {}
    seen.event("ADDED", labelled("b", "ErrImagePull", project=None))  # not a project's pod
    assert len(triggered) == 2 and seen.by_project == {}


def test_a_new_list_drops_the_failing_pods_that_went_while_the_watch_was_down_in_that_namespace_only():
    triggered: list[tuple[str, str]] = []
    seen = ByProject(triggered.append, lambda *_: None)
    seen.listed("ns", [labelled("a", "ErrImagePull"), labelled("b", "ErrImagePull")])
    seen.listed("other", [labelled("c", "ErrImagePull", namespace="other")])
    assert len(seen.get(("ns", "web"), [])) == 2 and len(seen.get(("other", "web"), [])) == 1
    triggered.clear()
    seen.listed("ns", [labelled("b", "ErrImagePull")])  # a was deleted meanwhile; c is in another namespace
    assert triggered == [("ns", "web")]
    assert [p["pod"] for p in seen.get(("ns", "web"), [])] == ["pod-b"] and len(seen.get(("other", "web"), [])) == 1
    seen.listed(None, [])  # a cluster-wide list: nothing fails anywhere now
    assert seen.by_project == {} and sorted(set(triggered)) == [("ns", "web"), ("other", "web")]
