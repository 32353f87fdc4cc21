"""What the cluster says about the children: a Job's outcome, a Deployment's rollout, the image it runs.

Read from the objects' own status as their controllers write it, so every mode judges children the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .naming import IMAGE_ANNOTATION
from .obj import Obj
from .redact import redact

ABSENT, RUNNING, SUCCEEDED, FAILED = "absent", "running", "succeeded", "failed"


def job_state(job: Obj | None) -> str:
    """absent | running | succeeded | failed, from the Job's own conditions (SuccessCriteriaMet and FailureTarget
    come before Complete and Failed since Kubernetes 1.31: the outcome is decided then)."""
    if job is None:
        return ABSENT
    status = job.get("status") or {}
    for c in status.get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "SuccessCriteriaMet"):
            return SUCCEEDED
        if c.get("status") == "True" and c.get("type") in ("Failed", "FailureTarget"):
            return FAILED
    return RUNNING


def job_failure_reason(job: Obj) -> str:
    """The Job controller's own words for why it failed (e.g. BackoffLimitExceeded)."""
    return next((c.get("message") or c.get("reason") for c in (job.get("status") or {}).get("conditions") or []
                 if c.get("type") == "Failed" and c.get("status") == "True"), "failed")


def deployment_ready(dep: Obj | None) -> bool:
    """Rolled out and Available: the latest spec is observed and every wanted replica is updated and available."""
    if dep is None:
        return False
    spec, status = dep.get("spec") or {}, dep.get("status") or {}
    wanted = spec.get("replicas", 1)
    generation = (dep.get("metadata") or {}).get("generation", 0)
    available = any(c.get("type") == "Available" and c.get("status") == "True" for c in status.get("conditions") or [])
    return (
        status.get("observedGeneration", 0) >= generation
        and status.get("updatedReplicas", 0) >= wanted
        and status.get("availableReplicas", 0) >= wanted
        and status.get("replicas", 0) == wanted
        and (available or wanted == 0)
    )


_CONTROLLER_OWN = "deployment.kubernetes.io/"  # annotations the Deployment controller writes (revision)
# The status fields of a Deployment that the functions above read.
_DEPLOYMENT_STATUS = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas")


def what_reconciles_read(child: Obj) -> tuple[object, ...] | None:
    """The part of a Job's or Deployment's watch event that a reconcile can act on; None for other kinds (every
    event counts). An event that leaves this the same triggers no reconcile (controller-runtime's predicates).

    Why: their controllers write status many times on the way (a Job's start time, active and ready pod counts,
    terminating pods; a Deployment's conditions' update times): ~10 events per new project that each cost a
    reconcile, ~1000 of the ~3000 in the 200-project start-up, all finding nothing to do. What a person or
    another program changes moves `generation` (spec), labels, annotations or ownerReferences: all kept here,
    apart from the annotations the Deployment controller keeps on each Deployment for itself (its revision, set
    once the first ReplicaSet exists: bookkeeping of its rollout, like its status).
    """
    kind = child.get("kind")
    if kind not in ("Job", "Deployment"):
        return None
    meta = child.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(_CONTROLLER_OWN)}
    ident = (meta.get("generation"), meta.get("deletionTimestamp"), repr(meta.get("labels")),
             repr(annotations), repr(meta.get("ownerReferences")))  # IDENTITY_PARTS items
    if kind == "Job":
        state = job_state(child)
        return (*ident, state, job_failure_reason(child) if state == FAILED else None)
    status = child.get("status") or {}
    conditions = tuple(sorted((c.get("type"), c.get("status")) for c in status.get("conditions") or []))
    return (*ident, *(status.get(f) for f in _DEPLOYMENT_STATUS), conditions)


IDENTITY_PARTS = 5  # of what_reconciles_read: what a person or another program changes, before the status


def only_status_moved(before: tuple[object, ...] | None, after: tuple[object, ...] | None) -> bool:
    """Two views (what_reconciles_read) of one child in which only its status moved: a Deployment on its way
    through a rollout, written by its controller, with nothing of it for a reconcile to write back."""
    return before is not None and after is not None and before[:IDENTITY_PARTS] == after[:IDENTITY_PARTS]


def ready_replicas(dep: Obj | None) -> int:
    return (dep or {}).get("status", {}).get("readyReplicas", 0) if dep else 0


def deployed_image(dep: Obj) -> str | None:
    """The image a Deployment was rendered with (our annotation: the container list may hold sidecars)."""
    return ((dep.get("metadata") or {}).get("annotations") or {}).get(IMAGE_ANNOTATION)


MESSAGE_LIMIT = 1024


def bounded(head: str, detail: str, limit: int = MESSAGE_LIMIT) -> str:
    """`head: detail` cut to `limit` characters from the middle of the detail: a failed pod's output ends with the
    actual error (a traceback's last line), so the start of its output is what may go, never its end."""
    text = f"{head}: {detail}" if detail else head
    if len(text) <= limit:
        return text
    room = limit - len(head) - len(": …")
    return f"{head}: …{detail[-room:]}" if room > 0 else text[:limit]


class FailureMessages:
    """Why a Job failed, in the user's words (termination message or last log lines), read from the API once per
    Job and kept while that Job exists: a failed Job's pods do not change, and status must not flap."""

    def __init__(self, read: Callable[[str, str], Awaitable[str]]) -> None:
        self._read = read  # (namespace, job name) -> the pod's message
        self._known: dict[tuple[str, str, str], str] = {}  # (namespace, project, job) -> message

    async def message(self, namespace: str, project: str, job: Obj, secret_values: list[str]) -> str:
        name = job["metadata"]["name"]
        memo = (namespace, project, name)
        if memo not in self._known:
            detail = await self._read(namespace, name)
            head = redact(f"Job {name} failed: {job_failure_reason(job)}", secret_values)
            self._known[memo] = bounded(head, redact(detail, secret_values) if detail else "")
        return self._known[memo]

    def prune_all(self) -> None:
        self._known.clear()

    def prune(self, namespace: str, project: str, jobs: set[str] | None = None) -> None:
        """Forget the project's Jobs that are gone (all of them with jobs=None: the project is gone)."""
        for memo in [m for m in self._known if m[:2] == (namespace, project) and (jobs is None or m[2] not in jobs)]:
            del self._known[memo]
