"""The shared mode: one web Deployment for every site, behind the version gate, and the populate Job.

The order for a new image (and for a new project) is: the migration Job for spec.image (modes/gate.py), then the
populate Job run with that image (it writes the Sites and Alias tables, which need the schema), then the web
Deployment rolls to it; until then the old pods keep serving the old image. A new project therefore gets its web
Deployment only once its database has a schema and its sites' rows: no pod ever serves a fresh database. Changes
that keep the image (sites, domains, env) roll the web Deployment at once and populate alongside, as before.
Ready needs spec.image migrated, the populate Job for the current content succeeded and the web Deployment rolled
out on spec.image.
"""

from __future__ import annotations

from .. import conditions as cond
from ..models import MultiSiteProjectSpec
from ..naming import COMPONENT_LABEL, PROJECT_LABEL, SITES_ANNOTATION, web_name
from ..obj import Key, Obj, key
from ..observe import FAILED, RUNNING, SUCCEEDED, deployed_image, deployment_ready, job_state, ready_replicas
from ..render import Desired, Owner, populate_job
from ..rendered import RenderCache
from . import Facts, Plan, Report, gate


def web_image(owner: Owner, migrated: str | None, jobs: Desired, observed: dict[Key, Obj]) -> str | None:
    """The image the web Deployment runs: the migrated one once its populate Job succeeded (or populate is
    disabled); until then the one it runs now; None (no Deployment yet) while a new project waits."""
    if migrated is None:
        return None
    populate = jobs.get("populate")
    if populate is None or job_state(observed.get(key(populate))) == SUCCEEDED:
        return migrated
    dep = observed.get(("Deployment", web_name(owner.name)))
    return deployed_image(dep) if dep is not None else None


def plan(spec: MultiSiteProjectSpec, owner: Owner, old: Obj, observed: dict[Key, Obj],
         cache: RenderCache | None = None) -> Plan:
    """`cache`: renderings of this spec kept from an earlier reconcile (rendered.py)."""
    cache = cache or RenderCache()
    jobs = cache.jobs(spec, owner)
    migrated = gate.migrated_image(spec, jobs["migrate"], old, observed)
    if "populate" in jobs and migrated not in (None, spec.image):  # populate runs with the migrated image
        jobs["populate"] = populate_job(spec, owner, migrated)
    image = web_image(owner, migrated, jobs, observed)
    desired = cache.children(spec, owner, image, jobs)
    if "populate" in desired:  # the cache renders spec.image's; the one chosen above may run the migrated image
        desired["populate"] = jobs["populate"]
    gate.gate_jobs(desired, jobs["migrate"], migrated, spec, observed, gate.database_moved(owner, observed))
    remigrating = (migrated == spec.image and "migrate" in desired
                   and job_state(observed.get(key(jobs["migrate"]))) != SUCCEEDED)  # a moved database (rotation.py)
    if migrated is None or remigrating:  # nothing to populate before the schema exists
        desired.pop("populate", None)
    if image is None:
        desired.pop("web", None)
    return Plan(desired=desired, jobs=jobs, site_image=image, migrated=migrated)


async def report(f: Facts) -> Report:
    spec, owner, migrated, image = f.spec, f.owner, f.plan.migrated, f.plan.site_image
    dep_key = ("Deployment", web_name(owner.name))
    available = deployment_ready(f.fresh(dep_key))
    rolled = available and image == spec.image  # what is short of spec.image says why below (gate, populate)
    mstate = gate.migration_state(f.plan.jobs["migrate"], f.current, f.just_applied)
    migrated_cond = await gate.migrated_condition(spec, f.plan.jobs["migrate"], migrated, mstate, f.current,
                                                  f.job_message)
    migration_failed = gate.failed(spec, migrated, mstate)
    remigrating = gate.rerun(spec, migrated, mstate)
    problems = gate.rerun_failed(spec, migrated, mstate)
    if migration_failed:
        serving = f"Deployment {dep_key[1]} stays on {image}" if image else "no web Deployment is created"
        problems.append(cond.Problem(cond.R_MIGRATION_FAILED, f"the migration Job failed; {serving}; see Migrated",
                                     degraded="the migration Job failed"))
    populating = False
    if not spec.populate.enabled:
        populated = cond.condition(cond.POPULATED, True, cond.R_DISABLED, "spec.populate.enabled is false")
    elif migrated is None or remigrating:
        populated = cond.condition(cond.POPULATED, "Unknown", cond.R_WAITING,
                                   f"the sites are written once the database is migrated for {spec.image}")
    else:
        jkey = key(f.plan.jobs["populate"])
        job = f.current.get(jkey)
        state = RUNNING if jkey in f.just_applied else job_state(job)
        slugs = ", ".join(s.slug for s in spec.sites)
        if state == SUCCEEDED:
            written = set(((job or {}).get("metadata", {}).get("annotations") or {}).get(SITES_ANNOTATION, "")
                          .split(","))
            for site in spec.sites:
                if site.slug in written:
                    f.known[site.id] = {"slug": site.slug, "id": site.id}
            populated = cond.condition(cond.POPULATED, True, cond.R_SUCCEEDED, f"Job {jkey[1]} wrote sites {slugs}")
        elif state == FAILED:
            populated = cond.condition(cond.POPULATED, False, cond.R_FAILED, await f.job_message(job))  # type: ignore[arg-type]
            problems.append(cond.Problem(cond.R_POPULATE_FAILED, "the populate Job failed; see Populated",
                                         degraded="the populate Job failed"))
        else:
            populating = True
            populated = cond.condition(cond.POPULATED, "Unknown", cond.R_RUNNING,
                                       f"Job {jkey[1]} is writing sites {slugs}")
    migrating = (migrated != spec.image and not migration_failed) or (remigrating and mstate == RUNNING)
    if not available and dep_key in f.current:
        problems.append(cond.Problem(cond.R_ROLLING_OUT, f"Deployment {dep_key[1]} is not available yet"))
    if migrating:
        problems.append(cond.Problem(cond.R_MIGRATING, f"waiting for the migration of {spec.image}"
                                     + (f"; {dep_key[1]} serves {image} meanwhile" if image else "")))
    if populating:
        problems.append(cond.Problem(cond.R_POPULATING, "waiting for the populate Job"
                                     + (f"; {dep_key[1]} rolls to {spec.image} after it" if image != spec.image else "")))
    progressing = (not rolled or populating or migrating) and not problems_failed(problems)
    reason = (cond.R_MIGRATING if migrating else cond.R_POPULATING if populating
              else cond.R_ROLLING_OUT if not rolled else cond.R_COMPLETE)
    return Report(
        before=[migrated_cond, populated],
        problems=problems,
        ready_message=f"serving {sum(len(s['domains']) for s in f.sites)} domains of {len(f.sites)} sites",
        progressing=cond.condition(cond.PROGRESSING, progressing, reason if progressing else cond.R_COMPLETE,
                                   "migrating, populating or rolling out" if progressing
                                   else "every child is up to date"),
        replicas=ready_replicas(f.current.get(dep_key)),
        selector=f"{PROJECT_LABEL}={owner.name},{COMPONENT_LABEL}=web",
        image=migrated,
    )


def problems_failed(problems: list[cond.Problem]) -> bool:
    """A failure a person must fix: nothing is progressing until they do."""
    return any(p.degraded is not None for p in problems)
