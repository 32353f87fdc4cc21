"""Image pull problems and start-up crashes of the project's pods, and how they show in the project's status.

A missing image or a registry that refuses the pull is invisible in a Deployment's status: the new ReplicaSet's
pods just stay Pending (the old ones keep serving, maxUnavailable is 0) until the progress deadline, minutes later.
The kubelet says what is wrong in the pod's container status (waiting reason ErrImagePull, ImagePullBackOff, ...),
so the operator watches its pods for exactly that and reports it as Ready=False, reason ImagePullFailed.

A web process that exits at start-up (a broken setting, a missing module) is just as invisible: the pods restart
in CrashLoopBackOff, the old ReplicaSet keeps serving, the Deployment says "progressing". The kubelet keeps the
tail of the output in lastState.terminated.message (the web container's terminationMessagePolicy is
FallbackToLogsOnError), so that is reported as Ready=False, reason CrashLoop. Only pods of the Deployment's
current pod template count: an old crash-looping pod that a good roll replaces says nothing about the new one.
"""

from __future__ import annotations

import hashlib
import json

from . import conditions as cond
from .naming import PROJECT_LABEL
from .obj import Obj

# Waiting reasons of a container whose image the kubelet cannot get (kubelet's images package).
PULL_REASONS = frozenset({
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "RegistryUnavailable",
    "SignatureValidationFailed",
})
REASON = "ImagePullFailed"
CRASH_REASON = "CrashLoop"
# Waiting reasons of a container that started and exited, or could not be started with its settings.
CRASH_WAITING = frozenset({"CrashLoopBackOff", "RunContainerError", "CreateContainerError"})
TEMPLATE_FIELDS = ("name", "image", "command", "args", "env", "envFrom")


def template_fingerprint(containers: list[Obj]) -> str:
    """What makes a pod run other code or settings: the containers' image, command and environment. The same for
    a Deployment's template and its pods (the API server defaults both alike), so a pod is "current" when equal."""
    parts = [{f: c.get(f) for f in TEMPLATE_FIELDS} for c in containers or []]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _owner_deployment(pod: Obj) -> str | None:
    """The Deployment of a pod: its ReplicaSet owner's name without the pod-template-hash suffix."""
    meta = pod.get("metadata") or {}
    suffix = "-" + ((meta.get("labels") or {}).get("pod-template-hash") or "")
    for ref in meta.get("ownerReferences") or []:
        name = ref.get("name", "")
        if ref.get("kind") == "ReplicaSet" and suffix != "-" and name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def crash_problem(pod: Obj) -> Obj | None:
    """The first app container of a pod that exits (or cannot start) and is restarted: its last output.

    The message is the container's last termination message (the tail of its log), else the kubelet's waiting
    message, else the exit code; it is the same on every restart, so status is not rewritten on each one.
    """
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        # Between restarts the container is briefly running (not ready yet) after a failed run: still crashing, so
        # Ready does not flip back to RollingOut and out again on every restart.
        restarted = "running" in state and not cs.get("ready") and last.get("exitCode", 0) != 0
        crashed = (waiting.get("reason") in CRASH_WAITING or bool(terminated and terminated.get("exitCode", 0) != 0)
                   or restarted)
        if not crashed:
            continue
        ended = terminated or last
        output = (ended.get("message") or "").strip() or (waiting.get("message") or "").strip()
        if not output and ended:
            output = f"exit code {ended.get('exitCode')} ({ended.get('reason') or 'Error'})"
        spec = pod.get("spec") or {}
        return {
            "kind": "crash",
            "pod": (pod.get("metadata") or {}).get("name", ""),
            "container": cs.get("name", ""),
            "deployment": _owner_deployment(pod),
            "template": template_fingerprint(spec.get("containers") or []),
            "message": output or waiting.get("reason", "exited"),
        }
    return None


def pod_problem(pod: Obj) -> Obj | None:
    """What the pod index keeps of a pod: an image it cannot pull, else a crash, else nothing."""
    return pull_problem(pod) or crash_problem(pod)


def current_crashes(problems: list[Obj], children: list[Obj]) -> list[Obj]:
    """Crashes of pods that run a Deployment's current template (old pods being replaced do not count)."""
    if not any(p.get("kind") == "crash" for p in problems):
        return []  # the usual case: no template fingerprints to compute
    templates = {c["metadata"]["name"]: template_fingerprint(
        (((c.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [])
        for c in children if c.get("kind") == "Deployment"}
    return [p for p in problems if p.get("kind") == "crash" and p.get("deployment") in templates
            and templates[p["deployment"]] == p["template"]]


def describe_crashes(crashes: list[Obj]) -> list[str]:
    """One line per Deployment whose current pods crash, with the first pod's last output (sorted: stable)."""
    by_dep: dict[str, list[Obj]] = {}
    for c in crashes:
        by_dep.setdefault(c["deployment"], []).append(c)
    lines = []
    for dep in sorted(by_dep):
        found = sorted(by_dep[dep], key=lambda c: c["pod"])
        first = found[0]
        tail = first["message"][-700:]
        lines.append(f"Deployment {dep}: container {first['container']} exits at start-up in {len(found)} pod(s); "
                     f"last output: {tail}")
    return lines


def pull_problem(pod: Obj) -> Obj | None:
    """The first container (init or app) of a pod that waits for its image: image, reason and kubelet message."""
    status = pod.get("status") or {}
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in PULL_REASONS:
            return {
                "kind": "pull",
                "pod": (pod.get("metadata") or {}).get("name", ""),
                "image": cs.get("image", ""),
                "reason": waiting["reason"],
                "message": (waiting.get("message") or "").strip(),
            }
    return None


def describe(problems: list[Obj], known_messages: dict[str, str]) -> list[str]:
    """One line per image that cannot be pulled, stable while the kubelet alternates between ErrImagePull and
    ImagePullBackOff (so status is not rewritten on every retry): the kubelet's first error message is kept."""
    by_image: dict[str, list[Obj]] = {}
    for p in problems:
        by_image.setdefault(p["image"], []).append(p)
    lines = []
    for image in sorted(by_image):
        found = by_image[image]
        informative = [p["message"] for p in found if p["reason"] != "ImagePullBackOff" and p["message"]]
        if informative and image not in known_messages:
            known_messages[image] = informative[0]
        detail = known_messages.get(image) or found[0]["reason"]
        lines.append(f"image {image} cannot be pulled by {len(found)} pod(s): {detail}")
    return lines


def crash(lines: list[str]) -> cond.Problem | None:
    """Start-up crashes of the current pods as the reason Ready gives when the project is not Ready anyway.

    Cut to 1000 bytes of UTF-8, not characters: the Event repeating it ("Ready=False: ...") must stay within the
    API server's 1024-byte limit, or the Warning is refused (a traceback's non-ASCII marks count several bytes).
    """
    if not lines:
        return None
    message = "; ".join(lines).encode()[:1000].decode(errors="ignore")
    return cond.Problem(CRASH_REASON, message, degraded=message)


def problem(lines: list[str]) -> cond.Problem | None:
    """The pull failures as the reason Ready gives when the project is not Ready anyway (see conditions.summary).

    Old pods keep serving (the rollout never removes them while the new ones are not Ready), so this replaces the
    generic "rolling out" with the reason a user can act on.
    """
    if not lines:
        return None
    message = "; ".join(lines)[:1024]
    return cond.Problem(REASON, message, degraded=message)


FAILING = "failing"  # what a reconcile reads of a pod: that it fails; a new kubelet message alone triggers none


def watched(pod: Obj) -> Obj:
    """What the pod watch keeps of a pod (informer.ByProject's view, computed in the watch thread): its problem, only
    while it has one, under its project. A project is reconciled when one of its pods starts or stops failing: pods
    change often, failures rarely."""
    meta = pod.get("metadata") or {}
    project, problem = (meta.get("labels") or {}).get(PROJECT_LABEL), pod_problem(pod)
    keep = project and problem is not None
    return {"uid": meta.get("uid", ""), "project": (meta.get("namespace", ""), project) if keep else None,
            "read": FAILING, "body": problem}
