"""Kubernetes-style status conditions: their types and reasons, merging, and the ONE summary that decides Ready.

Each part of the reconcile states what holds the project back as a `Problem` (the shared mode's populate Job, the
multi-project version gate, the rollout, a mode switch, a blocked spec, an image that cannot be pulled); `summary`
then decides Ready and Degraded from that ordered list, the way cluster-api summarises conditions: the first
problem wins, with its reason and message. Nothing else writes Ready.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

Condition = dict[str, Any]

# Types.
READY, DEGRADED, PROGRESSING = "Ready", "Degraded", "Progressing"
POPULATED, MIGRATED, VERSION_SKEW = "Populated", "Migrated", "VersionSkew"
ROUTED = "Routed"  # informational, never part of Ready (routing_status.py)

# Reasons users see (README, "Reading the outcome").
R_READY, R_AS_EXPECTED, R_COMPLETE = "Ready", "AsExpected", "Complete"
R_ROLLING_OUT, R_POPULATING, R_RUNNING, R_MIGRATING, R_WAITING = "RollingOut", "Populating", "Running", "Migrating", "Waiting"
R_SUCCEEDED, R_FAILED, R_DISABLED = "Succeeded", "Failed", "Disabled"
R_POPULATE_FAILED, R_MIGRATION_FAILED = "PopulateFailed", "MigrationFailed"
R_INGRESS_MISSING, R_SWITCHING_MODE, R_ALL_SITES_ON_IMAGE = "IngressMissing", "SwitchingMode", "AllSitesOnImage"
R_INVALID_SPEC, R_DOMAIN_CONFLICT, R_SECRET_MISSING = "InvalidSpec", "DomainConflict", "SecretMissing"
R_IMAGE_PULL_FAILED = "ImagePullFailed"
R_GATEWAY_API_MISSING = "GatewayAPIMissing"

# The value of each condition type that is good news; anything else is reported as a Warning Event.
GOOD = {READY: "True", POPULATED: "True", DEGRADED: "False", MIGRATED: "True", VERSION_SKEW: "False", ROUTED: "True"}
# Reasons of work under way: not good yet, but nothing a user must act on (Normal Events, not Warnings).
IN_PROGRESS = {R_ROLLING_OUT, R_POPULATING, R_RUNNING, R_MIGRATING}


@dataclass(frozen=True)
class Problem:
    """Why the project is not Ready. `degraded` is Degraded's message when a person must act (None: work under
    way, Degraded stays False)."""

    reason: str
    message: str
    degraded: str | None = None


def summary(problems: list[Problem], ready_message: str, *, switching: str | None = None,
            pulling: Problem | None = None) -> tuple[Condition, Condition]:
    """Ready and Degraded from the problems in priority order.

    `switching` (a mode handover's note): the old mode still serves; a failure keeps its reason with the note,
    anything else reads SwitchingMode. `pulling` (an image the kubelet cannot get) names what to fix whenever the
    project is not Ready anyway; it never turns a Ready project unready.
    """
    first = problems[0] if problems else None
    if switching is not None:
        if first is not None and first.reason.endswith("Failed"):
            first = replace(first, message=f"{first.message}; {switching}")
        else:
            first = Problem(R_SWITCHING_MODE, switching)
    failure = next((p for p in problems if p.degraded is not None), None)
    if pulling is not None and first is not None:
        first = failure = pulling
    ready = condition(READY, False, first.reason, first.message) if first else condition(READY, True, R_READY,
                                                                                          ready_message)
    degraded = (condition(DEGRADED, True, failure.reason, failure.degraded or failure.message) if failure
                else condition(DEGRADED, False, R_AS_EXPECTED, "no failure"))
    return ready, degraded


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(type_: str, status: bool | str, reason: str, message: str) -> Condition:
    value = status if isinstance(status, str) else ("True" if status else "False")
    return {"type": type_, "status": value, "reason": reason, "message": message}


def merge(old: list[Condition], new: list[Condition], generation: int | None) -> list[Condition]:
    """New conditions in the order given; lastTransitionTime changes only when the status does."""
    previous = {c.get("type"): c for c in old or []}
    out = []
    for cond in new:
        before = previous.get(cond["type"])
        changed = before is None or before.get("status") != cond["status"]
        stamp = now() if changed else before.get("lastTransitionTime", now())
        out.append({**cond, "lastTransitionTime": stamp, "observedGeneration": generation})
    return out


def transitions(old: list[Condition], new: list[Condition]) -> list[Condition]:
    """Conditions whose status or reason changed: each is worth one Event, nothing else is."""
    previous = {c.get("type"): (c.get("status"), c.get("reason")) for c in old or []}
    return [c for c in new if previous.get(c["type"]) != (c["status"], c["reason"])]


def worth_an_event(old: list[Condition], new: list[Condition]) -> list[Condition]:
    """The transitions a person reading `kubectl events` needs: bad news, and good news that ends something else.

    Not progress (a Job under way already has its MigrationStarted/PopulateStarted Event, and the condition says
    the rest), not Progressing (it restates Ready), not a condition's first good state (Degraded=False on a new
    project says nothing happened). Each Event is a write the API server stores for an hour: every transition made
    17 of them per new project, 3400 in the 200-project start-up, two thirds of all the operator's writes.
    """
    previous = {c.get("type") for c in old or []}
    return [c for c in transitions(old, new)
            if c["type"] != PROGRESSING and not in_progress(c) and (not is_good(c) or c["type"] in previous)]


def only_progress(conditions: list[Condition]) -> bool:
    """Work under way and nothing wrong: Ready not yet True because a migration, population or rollout runs."""
    ready = next((c for c in conditions if c["type"] == READY), None)
    return (ready is not None and ready["status"] != "True" and in_progress(ready)
            and all(is_good(c) or in_progress(c) for c in conditions))


def is_good(cond: Condition) -> bool:
    return GOOD.get(cond["type"], cond["status"]) == cond["status"]


def in_progress(cond: Condition) -> bool:
    return cond["status"] == "Unknown" or (cond["reason"] in IN_PROGRESS and cond["type"] != DEGRADED)
