"""Image pull problems of the project's pods, and how they show in the project's status.

A missing image or a registry that refuses the pull is invisible in a Deployment's status: the new ReplicaSet's
pods just stay Pending (the old ones keep serving, maxUnavailable is 0) until the progress deadline, minutes later.
The kubelet says what is wrong in the pod's container status (waiting reason ErrImagePull, ImagePullBackOff, ...),
so the operator watches its pods for exactly that and reports it as Ready=False, reason ImagePullFailed.
"""

from __future__ import annotations

from . import conditions as cond
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


def pull_problem(pod: Obj) -> Obj | None:
    """The first container (init or app) of a pod that waits for its image: image, reason and kubelet message."""
    status = pod.get("status") or {}
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in PULL_REASONS:
            return {
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


def problem(lines: list[str]) -> cond.Problem | None:
    """The pull failures as the reason Ready gives when the project is not Ready anyway (see conditions.summary).

    Old pods keep serving (the rollout never removes them while the new ones are not Ready), so this replaces the
    generic "rolling out" with the reason a user can act on.
    """
    if not lines:
        return None
    message = "; ".join(lines)[:1024]
    return cond.Problem(REASON, message, degraded=message)
