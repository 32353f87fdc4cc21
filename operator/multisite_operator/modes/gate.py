"""The version gate both modes share: spec.image is migrated (one Job) before any web pod runs it.

Every pod of a project talks to one database, so a new image may serve only once its schema exists: Divio runs
migrations as a release step before new code serves, and so does the operator, in both modes. What the gate
decides is read from the cluster, never from memory alone: the image the database is migrated to is spec.image
when its migration Job is there and succeeded; otherwise it is the image the project's Deployments run (the
operator rolls them only to a migrated image), and only with no Deployment at all the project's status. So a
reconcile that runs on stale memory (a leader that comes back) can never roll a workload back to an older image.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .. import conditions as cond
from ..models import GROUP, VERSION, MultiSiteProjectSpec
from ..naming import COMPONENT_LABEL
from ..obj import Key, Obj, key
from ..observe import FAILED, RUNNING, SUCCEEDED, deployed_image, job_state
from ..render import Desired, Owner
from ..rotation import database_changed


def is_migration(child: Obj) -> bool:
    return child["kind"] == "Job" and (child["metadata"].get("labels") or {}).get(COMPONENT_LABEL) == "migrate"


def running_migration(child: Obj) -> bool:
    return is_migration(child) and job_state(child) == RUNNING


def migrated_image(spec: MultiSiteProjectSpec, migrate: Obj, old: Obj, observed: dict[Key, Obj]) -> str | None:
    """The image the database schema is known to match, from what the cluster shows.

    spec.image once a migration Job for it succeeded (this content's, or one still there from before an env
    change renamed it), or when the project's status says so; else the image the Deployments were rolled to (a
    mix only after an interrupted apply: the one the status names, if any of them runs it, else the most common);
    else, with no Deployment (e.g. all deleted by hand), the status's. None: nothing migrated yet. Only spec.image
    (what the user asked for) is ever taken over what the Deployments run: never a roll back to an older image.
    """
    if job_state(observed.get(key(migrate))) == SUCCEEDED or old.get("image") == spec.image or any(
            is_migration(c) and job_state(c) == SUCCEEDED and deployed_image(c) == spec.image
            for c in observed.values()):
        return spec.image
    deployed = [img for k, c in observed.items() if k[0] == "Deployment" and (img := deployed_image(c))]
    if deployed:
        if old.get("image") in deployed:
            return str(old["image"])
        return max(sorted(set(deployed)), key=deployed.count)
    return old.get("image") or None


def database_moved(owner: Owner, observed: dict[Key, Obj]) -> bool:
    """DATABASE_URL now names another database than the workloads or the kept migration Jobs ran against
    (rotation.py): a database that may lack the schema, so its migration (a new Job name) runs again."""
    return owner.digests is not None and database_changed(observed, owner.digests.database)


def gate_jobs(desired: Desired, migrate: Obj, migrated: str | None, spec: MultiSiteProjectSpec,
              observed: dict[Key, Obj], moved: bool = False) -> None:
    """Drop the migration Job from `desired` when none is needed: spec.image is migrated already (its Job since
    removed, e.g. after an env change gave the Job a new name) and the database did not move, or an older
    migration still runs (never two at once on one database; the newer one starts after it)."""
    mkey = key(migrate)
    other_running = [c for k, c in observed.items() if k != mkey and running_migration(c)]
    if (migrated == spec.image and mkey not in observed and not moved) or other_running:
        desired.pop("migrate", None)


def migration_state(migrate: Obj, current: dict[Key, Obj], just_applied: set[Key]) -> str:
    mkey = key(migrate)
    return RUNNING if mkey in just_applied else job_state(current.get(mkey))


async def migrated_condition(spec: MultiSiteProjectSpec, migrate: Obj, migrated: str | None, state: str,
                             current: dict[Key, Obj], job_message: Callable[[Obj], Awaitable[str]]) -> cond.Condition:
    """Migrated: True once spec.image is migrated; False with the Job's (redacted) output when it failed. A Job
    that runs or failed while the workloads are on spec.image already migrates a moved database (rotation.py):
    Migrated then says so rather than what held for the old database."""
    mkey = key(migrate)
    if migrated == spec.image and not rerun(spec, migrated, state):
        return cond.condition(cond.MIGRATED, True, cond.R_SUCCEEDED, f"the database schema matches {spec.image}")
    if state == FAILED:
        return cond.condition(cond.MIGRATED, False, cond.R_FAILED, await job_message(current[mkey]))
    if mkey not in current:
        return cond.condition(cond.MIGRATED, "Unknown", cond.R_WAITING,
                              f"an earlier migration Job runs; {spec.image} migrates after it")
    return cond.condition(cond.MIGRATED, "Unknown", cond.R_MIGRATING,
                          f"Job {mkey[1]} migrates the database for {spec.image}")


def rerun(spec: MultiSiteProjectSpec, migrated: str | None, state: str) -> bool:
    """spec.image's migration runs (or failed) again, for a database DATABASE_URL names now (rotation.py)."""
    return migrated == spec.image and state in (RUNNING, FAILED)


def rerun_failed(spec: MultiSiteProjectSpec, migrated: str | None, state: str) -> list[cond.Problem]:
    if rerun(spec, migrated, state) and state == FAILED:
        return [cond.Problem(cond.R_MIGRATION_FAILED, "the migration of the database DATABASE_URL names now failed; "
                             "see Migrated", degraded="the migration Job failed")]
    return []


def failed(spec: MultiSiteProjectSpec, migrated: str | None, state: str) -> bool:
    """spec.image's migration failed, so nothing runs it (the workloads stay on `migrated`)."""
    return state == FAILED and migrated != spec.image


async def caches_current(api: Any, project: Obj, old: Obj, changes: list[Obj], observed: dict[Key, Obj]) -> bool:
    """Before a workload rolls to another image: are the caches this decision was made from the cluster's own
    state? The project (its spec's generation, and the image its status names, against `old`) and each Deployment
    to roll (the image it runs) are read live. A replica whose watches are still catching up (a leader that was paused, a slow cache) would
    otherwise roll sites back to an image an older view of the cluster names. Costs reads only for image rolls."""
    rolls = [c for c in changes if c["kind"] == "Deployment" and key(c) in observed
             and deployed_image(c) != deployed_image(observed[key(c)])]
    if not rolls:
        return True
    meta = project["metadata"]
    live = await api.get(f"{GROUP}/{VERSION}", "MultiSiteProject", meta["namespace"], meta["name"])
    if (live is None or live["metadata"].get("generation") != meta.get("generation")
            or (live.get("status") or {}).get("image") != old.get("image")):
        return False
    for dep in rolls:
        now = await api.get(dep["apiVersion"], dep["kind"], meta["namespace"], dep["metadata"]["name"])
        if now is None or deployed_image(now) != deployed_image(observed[key(dep)]):
            return False
    return True
