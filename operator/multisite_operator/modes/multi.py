"""The multi-project mode: one Deployment per site, rolled to an image only once it is migrated (modes/gate.py).

Every site runs as its own Deployment on one shared database, so they must never run code of different schema
versions for long: spec.image is migrated first (one Job), and the sites move to it only once that succeeded.
The per-site status says which site serves which image; Migrated and VersionSkew say where the roll stands.
"""

from __future__ import annotations

from .. import conditions as cond
from ..models import MultiSiteProjectSpec
from ..naming import COMPONENT_LABEL, PROJECT_LABEL, site_name
from ..obj import Key, Obj, key
from ..observe import deployed_image, deployment_ready, ready_replicas
from ..render import Owner
from ..rendered import RenderCache
from . import Facts, Plan, Report, gate, listed


def plan(spec: MultiSiteProjectSpec, owner: Owner, old: Obj, observed: dict[Key, Obj],
         cache: RenderCache | None = None) -> Plan:
    """`cache`: renderings of this spec kept from an earlier reconcile (rendered.py)."""
    cache = cache or RenderCache()
    jobs = cache.jobs(spec, owner)
    site_image = gate.migrated_image(spec, jobs["migrate"], old, observed)
    desired = cache.children(spec, owner, site_image, jobs)
    if site_image is None:
        # Nothing migrated yet, so no site runs: each site's Service comes with its Deployment. Written before the
        # migration succeeded, 1000 Services held the reconcile that writes the Deployments back by ~10 s, and
        # with it the controller manager's rollout, the longest part (bench/ANALYSIS.md, round eleven). Services
        # already there stay (nothing is pruned for this).
        desired = {role: o for role, o in desired.items() if o["kind"] != "Service" or key(o) in observed}
    gate.gate_jobs(desired, jobs["migrate"], site_image, spec, observed, gate.database_moved(owner, observed))
    return Plan(desired=desired, jobs=jobs, site_image=site_image, migrated=site_image)


async def report(f: Facts) -> Report:
    spec, owner, site_image = f.spec, f.owner, f.plan.site_image
    mstate = gate.migration_state(f.plan.jobs["migrate"], f.current, f.just_applied)
    served_before = {s.get("slug"): s.get("image") for s in f.old.get("sites") or []}
    all_ready, total_ready, on_spec = True, 0, 0
    runs: dict[str, list[str]] = {}  # image -> slugs serving it
    rolling: list[str] = []
    for entry, site in zip(f.sites, spec.sites):
        dkey = ("Deployment", site_name(owner.name, site.slug))
        dep = f.current.get(dkey)
        target = deployed_image(dep) if dep else None
        ok = deployment_ready(f.fresh(dkey))
        # The image the site's pods serve: the Deployment's once rolled out, until then the one before.
        served = target if ok else served_before.get(site.slug)
        ready_n = ready_replicas(dep)
        total_ready += ready_n
        entry.update({"image": served, "replicas": (dep or {}).get("spec", {}).get("replicas", 0),
                      "readyReplicas": ready_n, "available": ok})
        if target and target != served:
            entry["rollingTo"] = target
            rolling.append(site.slug)
        all_ready &= ok
        on_spec += served == spec.image and ok
        if dep is not None:
            f.known[site.id] = {"slug": site.slug, "id": site.id}
        runs.setdefault(served or "nothing yet", []).append(site.slug)
    skew = on_spec < len(spec.sites)
    waiting = len(spec.sites) - on_spec

    migrated = await gate.migrated_condition(spec, f.plan.jobs["migrate"], site_image, mstate, f.current,
                                             f.job_message)
    failed = gate.failed(spec, site_image, mstate)
    if skew:
        why = ("its migration failed, so no site rolls to it" if failed
               else "sites roll to it once its migration succeeded" if site_image != spec.image
               else "rolling out")
        detail = "; ".join(f"{listed(slugs)} on {image}" for image, slugs in runs.items())
        if rolling:
            detail += f"; rolling to {site_image}: {listed(rolling)}"
        version = cond.condition(cond.VERSION_SKEW, True, cond.R_MIGRATION_FAILED if failed else cond.R_ROLLING_OUT,
                                 f"spec.image is {spec.image}, {why}; {detail}")
    else:
        version = cond.condition(cond.VERSION_SKEW, False, cond.R_ALL_SITES_ON_IMAGE,
                                 f"all {len(spec.sites)} sites run {spec.image}")

    problems = gate.rerun_failed(spec, site_image, mstate)
    if failed:
        problems.append(cond.Problem(cond.R_MIGRATION_FAILED, "the migration Job failed; sites stay on "
                                     f"{site_image or 'no image'}; see Migrated", degraded="the migration Job failed"))
    if not all_ready or skew:
        problems.append(cond.Problem(cond.R_ROLLING_OUT,
                                     f"{waiting} of {len(spec.sites)} sites are not Available on {spec.image} yet"))
    progressing = (skew and not failed) or (gate.rerun(spec, site_image, mstate) and mstate == gate.RUNNING)
    return Report(
        before=[migrated, version],
        problems=problems,
        ready_message=f"{len(f.sites)} sites Available on {spec.image}",
        progressing=cond.condition(cond.PROGRESSING, progressing, cond.R_ROLLING_OUT if progressing else cond.R_COMPLETE,
                                   "migrating or rolling out" if progressing else "nothing in progress"),
        replicas=total_ready,
        selector=f"{PROJECT_LABEL}={owner.name},{COMPONENT_LABEL}=site",
        image=site_image,
        on_the_way=waiting if progressing else 0,
    )
