"""The shared mode: one web Deployment for every site, and the populate Job that writes the Sites tables.

Ready needs the web Deployment rolled out and the populate Job for the current content succeeded.
"""

from __future__ import annotations

from .. import conditions as cond
from ..models import MultiSiteProjectSpec
from ..naming import COMPONENT_LABEL, PROJECT_LABEL, SITES_ANNOTATION, web_name
from ..obj import Key, Obj, key
from ..observe import FAILED, RUNNING, SUCCEEDED, deployment_ready, job_state, ready_replicas
from ..render import Owner
from ..rendered import RenderCache
from . import Facts, Plan, Report


def plan(spec: MultiSiteProjectSpec, owner: Owner, old: Obj, observed: dict[Key, Obj],
         cache: RenderCache | None = None) -> Plan:
    """`cache`: renderings of this spec kept from an earlier reconcile (rendered.py)."""
    cache = cache or RenderCache()
    jobs = cache.jobs(spec, owner)
    return Plan(desired=cache.children(spec, owner, None, jobs), jobs=jobs)


async def report(f: Facts) -> Report:
    spec, owner = f.spec, f.owner
    dep_key = ("Deployment", web_name(owner.name))
    rolled = deployment_ready(f.fresh(dep_key))
    problems: list[cond.Problem] = []
    populating = False
    if spec.populate.enabled:
        jkey = key(f.plan.jobs["populate"])
        job = f.current.get(jkey)
        state = RUNNING if jkey in f.just_applied else job_state(job)
        slugs = ", ".join(s.slug for s in spec.sites)
        if state == SUCCEEDED:
            written = ((job or {}).get("metadata", {}).get("annotations") or {}).get(SITES_ANNOTATION, "")
            for site in spec.sites:
                if site.slug in written.split(","):
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
    else:
        populated = cond.condition(cond.POPULATED, True, cond.R_DISABLED, "spec.populate.enabled is false")
    if not rolled:
        problems.append(cond.Problem(cond.R_ROLLING_OUT, f"Deployment {dep_key[1]} is not available yet"))
    if populating:
        problems.append(cond.Problem(cond.R_POPULATING, "waiting for the populate Job"))
    progressing = not rolled or populating
    return Report(
        before=[populated],
        problems=problems,
        ready_message=f"serving {sum(len(s['domains']) for s in f.sites)} domains of {len(f.sites)} sites",
        progressing=cond.condition(
            cond.PROGRESSING, progressing,
            cond.R_ROLLING_OUT if not rolled else (cond.R_POPULATING if populating else cond.R_COMPLETE),
            "rolling out or populating" if progressing else "every child is up to date"),
        replicas=ready_replicas(f.current.get(dep_key)),
        selector=f"{PROJECT_LABEL}={owner.name},{COMPONENT_LABEL}=web",
        image=spec.image,
    )
