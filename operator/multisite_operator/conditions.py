"""Kubernetes-style status conditions: transitions keep their time, so `kubectl wait` and humans see real changes."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

Condition = dict[str, Any]

# The value of each condition type that is good news; anything else is reported as a Warning Event.
GOOD = {"Ready": "True", "Populated": "True", "Degraded": "False", "Migrated": "True", "VersionSkew": "False"}


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


# Reasons of work under way: not good yet, but nothing a user must act on (Normal Events, not Warnings).
IN_PROGRESS = {"RollingOut", "Populating", "Running", "Migrating"}


def is_good(cond: Condition) -> bool:
    return GOOD.get(cond["type"], cond["status"]) == cond["status"]


def in_progress(cond: Condition) -> bool:
    return cond["status"] == "Unknown" or (cond["reason"] in IN_PROGRESS and cond["type"] != "Degraded")
