"""Switching modes on a live project: the old mode serves until the new one is Available, then it goes.

While the new mode's Deployments are not all rolled out, the Ingress keeps routing to the old mode's workloads
and those are kept; then the Ingress moves and the old objects are pruned. A Job writing to the shared database
is never killed half-way: a running migration always finishes, and so does a shared-mode populate Job after a
switch to multi-project.
"""

from __future__ import annotations

from ..apply import needs_apply
from ..models import MultiSiteProjectSpec
from ..naming import COMPONENT_LABEL
from ..obj import Key, Obj, key
from ..observe import RUNNING, deployment_ready, job_state
from .gate import running_migration

ROUTING_KINDS = ("Ingress", "HTTPRoute")  # what keeps pointing at the old workloads during a handover


def previous_mode_workloads(spec: MultiSiteProjectSpec, children: list[Obj]) -> list[Obj]:
    """Deployments and Services of the other mode (web in multi-project, sites in shared) still present."""
    other = "web" if spec.mode == "multi-project" else "site"
    return [c for c in children if c["kind"] in ("Deployment", "Service")
            and (c["metadata"].get("labels") or {}).get(COMPONENT_LABEL) == other]


def serving(desired: list[Obj], observed: dict[Key, Obj]) -> bool:
    """Every desired Deployment exists as rendered and is rolled out and Available."""
    deps = [d for d in desired if d["kind"] == "Deployment"]
    return bool(deps) and all(
        deployment_ready(observed.get(key(d))) and not needs_apply(d, observed.get(key(d))) for d in deps
    )


def handover_keeps(spec: MultiSiteProjectSpec, desired: dict[str, Obj], children: list[Obj],
                   observed: dict[Key, Obj]) -> set[Key] | None:
    """During a handover: the children to keep although not desired (the old workloads and the Ingress or
    HTTPRoutes as they are), after dropping existing ones from `desired` so they keep their routes. None when no handover runs."""
    previous = previous_mode_workloads(spec, children)
    if not previous or serving(list(desired.values()), observed):
        return None
    for role in [r for r, d in desired.items() if d["kind"] in ROUTING_KINDS and key(d) in observed]:
        del desired[role]
    return {key(c) for c in previous} | {key(c) for c in children if c["kind"] in ROUTING_KINDS}


def note(spec: MultiSiteProjectSpec) -> str:
    new_mode = "the site Deployments" if spec.mode == "multi-project" else "the shared Deployment"
    return f"switching to {spec.mode}: the previous mode's workloads serve until {new_mode} are Available"


def must_finish(spec: MultiSiteProjectSpec, child: Obj) -> bool:
    """A running Job that must not be deleted yet although no longer desired.

    A migration is never stopped half-way, whatever changed (a newer image, a switch to the shared mode).
    A populate Job of the shared mode is let finish after a switch to multi-project; within the shared mode a
    newer populate Job supersedes it, as before.
    """
    if running_migration(child):
        return True
    labels = child["metadata"].get("labels") or {}
    return (spec.mode == "multi-project" and child["kind"] == "Job" and labels.get(COMPONENT_LABEL) == "populate"
            and job_state(child) == RUNNING)
