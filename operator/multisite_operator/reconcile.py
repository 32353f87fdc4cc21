"""One level-based reconcile of a MultiSiteProject: observed children in, writes and status out.

It is called for every event of the project or of any of its children, after a restart as after an edit, so it
never depends on what changed: it renders the desired children, applies only those that differ from what is
observed, deletes children of ours that are no longer desired, and reports status. With nothing to change it
makes no write at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.rest import ApiException
from pydantic import ValidationError

from . import conditions as cond
from . import limits, metrics
from .kube import KubeApi, needs_apply, redact
from .models import MultiSiteProjectSpec
from .naming import COMPONENT_LABEL, IMAGE_ANNOTATION, PROJECT_LABEL, SITES_ANNOTATION, site_name, web_name
from .pods import report as report_pull_problems
from .render import Obj, Owner, migrate_job, populate_job, render_children

log = logging.getLogger(__name__)
Emit = Callable[[Obj, str, str, str], None]  # (project, type Normal|Warning, reason, message)
APPLY_CONCURRENCY = 16


@dataclass
class Outcome:
    writes: int = 0
    status_written: bool = False
    retry_after: float | None = None  # seconds; set while blocked on something outside the spec
    status: Obj = field(default_factory=dict)


def key(obj: Obj) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def readable(error: ValidationError) -> str:
    """Pydantic errors as 'spec.sites[1].live.domain: message' lines, the way kubectl users read paths."""
    parts = []
    for err in error.errors():
        path = "spec"
        for loc in err["loc"]:
            path += f"[{loc}]" if isinstance(loc, int) else f".{loc}"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(msg if path == "spec" else f"{path}: {msg}")
    return "; ".join(parts)


def api_message(exc: ApiException) -> str:
    """The Status message of an API error (what kubectl would print), else its body."""
    try:
        return str(json.loads(exc.body or "")["message"])
    except (ValueError, KeyError, TypeError):
        return str(exc.body or exc.reason)


# --- reading child state ----------------------------------------------------------------------------------------
def job_state(job: Obj | None) -> str:
    """absent | running | succeeded | failed, from the Job's own conditions."""
    if job is None:
        return "absent"
    status = job.get("status") or {}
    for c in status.get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "succeeded"
        if c.get("status") == "True" and c.get("type") in ("Failed", "FailureTarget"):
            return "failed"
    return "running"


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


def deployed_image(dep: Obj) -> str | None:
    return ((dep.get("metadata") or {}).get("annotations") or {}).get(IMAGE_ANNOTATION)


def _listed(slugs: list[str], limit: int = 10) -> str:
    """Site slugs for a condition message, bounded so that 2000 sites still make a readable line."""
    shown = ", ".join(slugs[:limit])
    more = f" and {len(slugs) - limit} more" if len(slugs) > limit else ""
    return f"{len(slugs)} site{'s' if len(slugs) != 1 else ''} ({shown}{more})"


# --- the reconcile ------------------------------------------------------------------------------------------------
class Reconciler:
    def __init__(self, api: KubeApi, emit: Emit) -> None:
        self.api = api
        self.emit = emit
        self._written: dict[tuple[str, str, str], Obj] = {}  # status we last wrote, per project uid
        self._failures: dict[tuple[str, str], str] = {}  # failure message per (namespace, job), read once

    async def reconcile(self, project: Obj, children: list[Obj], conflicts: list[str] | None = None,
                        image_problems: list[str] | None = None) -> Outcome:
        meta = project["metadata"]
        ns, name, uid = meta["namespace"], meta["name"], meta.get("uid")
        owner = Owner(name=name, namespace=ns, uid=uid)
        old = self._written.get((ns, name, uid)) or dict(project.get("status") or {})
        outcome = Outcome()

        try:
            spec = MultiSiteProjectSpec.model_validate(project.get("spec") or {})
        except ValidationError as exc:
            return await self._blocked(project, old, outcome, "InvalidSpec", readable(exc), retry=None)
        if problems := limits.name_problems(name):  # a project created before the CRD's name rule existed
            return await self._blocked(project, old, outcome, "InvalidSpec", "; ".join(problems), retry=None)
        if conflicts:
            return await self._blocked(project, old, outcome, "DomainConflict", "; ".join(conflicts), retry=30)
        refs = [(spec.database.secret_ref.name, spec.database.secret_ref.key)]
        if spec.storage is not None:
            refs.append((spec.storage.secret_ref.name, spec.storage.secret_ref.key))
        secrets = await self.api.check_secrets(ns, refs)
        if secrets.missing:
            return await self._blocked(project, old, outcome, "SecretMissing", "; ".join(secrets.missing), retry=10)

        observed = {key(c): c for c in children}
        site_image = None
        if spec.mode == "multi-project":
            site_image = self._rolled_image(spec, owner, old, observed)
        desired = render_children(spec, owner, site_image)
        if spec.mode == "multi-project":
            desired = self._gate_migration(spec, owner, desired, observed, site_image)

        # Switching mode: the old mode's workloads keep serving, and the Ingress keeps routing to them, until every
        # Deployment of the new mode is Available; then the Ingress moves over and the old ones are pruned.
        previous = self._previous_mode_workloads(spec, children)
        handover = bool(previous) and not self._serving(desired, observed)
        if handover:
            desired = [d for d in desired if d["kind"] != "Ingress" or key(d) not in observed]

        # A spec whose children the API server or a node would refuse: say so, change nothing (limits.py).
        if problems := limits.child_problems(desired):
            return await self._blocked(project, old, outcome, "InvalidSpec", "; ".join(problems)[:1024], retry=None)

        # Apply what differs. Jobs are content-named and immutable: an existing one is never re-applied.
        todo = [d for d in desired if (d["kind"] != "Job" or key(d) not in observed) and needs_apply(d, observed.get(key(d)))]
        try:
            applied = await self._apply_all(todo)
        except ApiException as exc:
            if exc.status != 422:
                raise
            # Invalid: retrying the same objects cannot succeed; report it instead of looping in silence.
            message = redact(f"the API server rejected a child: {api_message(exc)}", secrets.values)[:1024]
            return await self._blocked(project, old, outcome, "InvalidSpec", message, retry=60)
        outcome.writes += len(applied)
        self._report_started_jobs(project, spec, [o for o in applied if o["kind"] == "Job"])
        current = {**observed, **{key(o): o for o in applied}}

        # Prune children of ours that are no longer desired. A Job still writing to the shared database is never
        # killed half-way: it finishes first (see _keep_running_job), then goes.
        wanted = {key(d) for d in desired}
        if handover:
            wanted |= {key(c) for c in previous} | {key(c) for c in children if c["kind"] == "Ingress"}
        stale = [c for c in children if key(c) not in wanted and not self._keep_running_job(spec, c)]
        for child in stale:
            await self.api.delete(child["apiVersion"], child["kind"], ns, child["metadata"]["name"])
            current.pop(key(child), None)
            self.emit(project, "Normal", "Deleted", f"deleted {child['kind']} {child['metadata']['name']}: no longer "
                      "desired by the spec")
        outcome.writes += len(stale)

        status = await self._status(spec, owner, project, old, current, {key(o) for o in applied}, site_image,
                                    secrets.values, handover)
        status = report_pull_problems(old, status, image_problems or [])  # pods.py: ImagePullFailed
        outcome.status = status
        await self._write_status(project, old, status, outcome)
        return outcome

    # --- blocked: report, change nothing -----------------------------------------------------------------------
    async def _blocked(self, project: Obj, old: Obj, outcome: Outcome, reason: str, message: str,
                       retry: float | None) -> Outcome:
        gen = project["metadata"].get("generation")
        new_conditions = [
            cond.condition("Ready", False, reason, message),
            cond.condition("Degraded", True, reason, message),
        ]
        kept = [c for c in old.get("conditions") or [] if c.get("type") not in ("Ready", "Degraded")]
        status = {**old, "observedGeneration": gen,
                  "conditions": cond.merge(old.get("conditions") or [], new_conditions, gen) + kept}
        outcome.status = status
        outcome.retry_after = retry
        await self._write_status(project, old, status, outcome)
        return outcome

    # --- multi-project version gate ----------------------------------------------------------------------------
    def _rolled_image(self, spec: MultiSiteProjectSpec, owner: Owner, old: Obj, observed: dict) -> str | None:
        """The image every site runs: spec.image once its migration succeeded, else the last rolled one."""
        job = observed.get(("Job", migrate_job(spec, owner)["metadata"]["name"]))
        if job_state(job) == "succeeded":
            return spec.image
        if old.get("image"):
            return old["image"]
        images = [deployed_image(c) for k, c in observed.items() if k[0] == "Deployment" and deployed_image(c)]
        return max(set(images), key=images.count) if images else None

    def _gate_migration(self, spec: MultiSiteProjectSpec, owner: Owner, desired: list[Obj], observed: dict,
                        site_image: str | None) -> list[Obj]:
        mjob = migrate_job(spec, owner)
        mkey = key(mjob)
        other_running = [c for k, c in observed.items() if k != mkey and self._running_migration(c)]
        if (site_image == spec.image and mkey not in observed) or other_running:
            # Already migrated (its Job since removed), or an older migration still runs: start nothing new.
            return [d for d in desired if key(d) != mkey]
        return desired

    @staticmethod
    def _running_migration(child: Obj) -> bool:
        labels = child["metadata"].get("labels") or {}
        return child["kind"] == "Job" and labels.get(COMPONENT_LABEL) == "migrate" and job_state(child) == "running"

    @classmethod
    def _keep_running_job(cls, spec: MultiSiteProjectSpec, child: Obj) -> bool:
        """A running Job that must not be deleted yet although no longer desired.

        A migration is never stopped half-way, whatever changed (a newer image, a switch to the shared mode).
        A populate Job of the shared mode is let finish after a switch to multi-project; within the shared mode a
        newer populate Job supersedes it, as before.
        """
        if cls._running_migration(child):
            return True
        labels = child["metadata"].get("labels") or {}
        return (spec.mode == "multi-project" and child["kind"] == "Job" and labels.get(COMPONENT_LABEL) == "populate"
                and job_state(child) == "running")

    @staticmethod
    def _previous_mode_workloads(spec: MultiSiteProjectSpec, children: list[Obj]) -> list[Obj]:
        """Deployments and Services of the other mode (web in multi-project, sites in shared) still present."""
        other = "web" if spec.mode == "multi-project" else "site"
        return [c for c in children if c["kind"] in ("Deployment", "Service")
                and (c["metadata"].get("labels") or {}).get(COMPONENT_LABEL) == other]

    @staticmethod
    def _serving(desired: list[Obj], observed: dict) -> bool:
        """Every desired Deployment exists as rendered and is rolled out and Available."""
        deps = [d for d in desired if d["kind"] == "Deployment"]
        return bool(deps) and all(
            deployment_ready(observed.get(key(d))) and not needs_apply(d, observed.get(key(d))) for d in deps
        )

    async def _apply_all(self, objs: list[Obj]) -> list[Obj]:
        sem = asyncio.Semaphore(APPLY_CONCURRENCY)

        async def one(obj: Obj) -> Obj:
            async with sem:
                return await self.api.apply(obj)

        # Services before the workloads that use them, workloads before the Ingress that routes to them.
        order = {"Service": 0, "Deployment": 1, "Job": 2, "Ingress": 3}
        results: list[Obj] = []
        for rank in sorted({order[o["kind"]] for o in objs}):
            batch = [o for o in objs if order[o["kind"]] == rank]
            results += await asyncio.gather(*(one(o) for o in batch))
        return results

    # --- status --------------------------------------------------------------------------------------------------
    async def _job_message(self, ns: str, job: Obj, secret_values: list[str]) -> str:
        jname = job["metadata"]["name"]
        if (ns, jname) not in self._failures:
            detail = await self.api.job_failure(ns, jname)
            reason = next((c.get("message") or c.get("reason") for c in (job.get("status") or {}).get("conditions") or []
                           if c.get("type") == "Failed" and c.get("status") == "True"), "failed")
            text = f"Job {jname} failed: {reason}" + (f": {detail}" if detail else "")
            self._failures[(ns, jname)] = redact(text, secret_values)[:1024]
        return self._failures[(ns, jname)]

    async def _status(self, spec: MultiSiteProjectSpec, owner: Owner, project: Obj, old: Obj, current: dict,
                      just_applied: set, site_image: str | None, secret_values: list[str],
                      handover: bool = False) -> Obj:
        ns, gen = owner.namespace or "", project["metadata"].get("generation")
        scheme = "https" if spec.ingress.tls.enabled else "http"
        sites = []
        for site in spec.sites:
            names = spec.site_domains(site).names()
            sites.append({"slug": site.slug, "id": site.id, "name": site.name, "domains": names,
                          "url": f"{scheme}://{names[0]}/"})
        ingress_ok = not spec.ingress.enabled or any(k[0] == "Ingress" for k in current)
        known = {int(s["id"]): s for s in old.get("knownSites") or []}
        new_conditions: list[cond.Condition] = []

        def fresh(obj_key: tuple[str, str]) -> Obj | None:
            # An object we have just written has not been rolled out yet, whatever its old status says.
            return None if obj_key in just_applied else current.get(obj_key)

        if spec.mode == "shared":
            dep_key = ("Deployment", web_name(owner.name))
            dep = current.get(dep_key)
            rolled = deployment_ready(fresh(dep_key))
            ready_replicas = (dep or {}).get("status", {}).get("readyReplicas", 0) if dep else 0
            populated_ok, populating, pop_failed = True, False, False
            if spec.populate.enabled:
                job = populate_job(spec, owner)
                jkey = key(job)
                observed_job = current.get(jkey)
                state = "running" if jkey in just_applied else job_state(observed_job)
                slugs = ", ".join(s.slug for s in spec.sites)
                if state == "succeeded":
                    written = ((observed_job or {}).get("metadata", {}).get("annotations") or {}).get(SITES_ANNOTATION, "")
                    for site in spec.sites:
                        if site.slug in written.split(","):
                            known[site.id] = {"slug": site.slug, "id": site.id}
                    new_conditions.append(cond.condition("Populated", True, "Succeeded",
                                                         f"Job {jkey[1]} wrote sites {slugs}"))
                elif state == "failed":
                    populated_ok, pop_failed = False, True
                    new_conditions.append(cond.condition("Populated", False, "Failed",
                                                         await self._job_message(ns, observed_job, secret_values)))
                else:
                    populated_ok, populating = False, True
                    new_conditions.append(cond.condition("Populated", "Unknown", "Running",
                                                         f"Job {jkey[1]} is writing sites {slugs}"))
            else:
                new_conditions.append(cond.condition("Populated", True, "Disabled", "spec.populate.enabled is false"))
            if pop_failed:
                ready = cond.condition("Ready", False, "PopulateFailed", "the populate Job failed; see Populated")
            elif not rolled:
                ready = cond.condition("Ready", False, "RollingOut", f"Deployment {dep_key[1]} is not available yet")
            elif populating:
                ready = cond.condition("Ready", False, "Populating", "waiting for the populate Job")
            elif not ingress_ok:
                ready = cond.condition("Ready", False, "IngressMissing", "the Ingress is not there yet")
            else:
                ready = cond.condition("Ready", True, "Ready",
                                       f"serving {sum(len(s['domains']) for s in sites)} domains of {len(sites)} sites")
            progressing = not rolled or populating
            new_conditions += [
                ready,
                cond.condition("Progressing", progressing, "RollingOut" if not rolled else ("Populating" if populating else "Complete"),
                               "rolling out or populating" if progressing else "every child is up to date"),
                cond.condition("Degraded", pop_failed, "PopulateFailed" if pop_failed else "AsExpected",
                               "the populate Job failed" if pop_failed else "no failure"),
            ]
            selector = f"{PROJECT_LABEL}={owner.name},{COMPONENT_LABEL}=web"
            total_ready = ready_replicas
            image = spec.image
        else:
            mkey = key(migrate_job(spec, owner))
            mjob = current.get(mkey)
            mstate = "running" if mkey in just_applied else job_state(mjob)
            served_before = {s.get("slug"): s.get("image") for s in old.get("sites") or []}
            all_ready, total_ready, on_spec = True, 0, 0
            runs: dict[str, list[str]] = {}  # image -> slugs serving it
            rolling: list[str] = []
            for entry, site in zip(sites, spec.sites):
                dkey = ("Deployment", site_name(owner.name, site.slug))
                dep = current.get(dkey)
                target = deployed_image(dep) if dep else None
                ok = deployment_ready(fresh(dkey))
                # The image the site's pods serve: the Deployment's once rolled out, until then the one before.
                served = target if ok else served_before.get(site.slug)
                ready_n = (dep or {}).get("status", {}).get("readyReplicas", 0) if dep else 0
                total_ready += ready_n
                entry.update({"image": served, "replicas": (dep or {}).get("spec", {}).get("replicas", 0),
                              "readyReplicas": ready_n, "available": ok})
                if target and target != served:
                    entry["rollingTo"] = target
                    rolling.append(site.slug)
                all_ready &= ok
                on_spec += served == spec.image and ok
                if dep is not None:
                    known[site.id] = {"slug": site.slug, "id": site.id}
                runs.setdefault(served or "nothing yet", []).append(site.slug)
            skew = on_spec < len(spec.sites)
            if site_image == spec.image:
                migrated = cond.condition("Migrated", True, "Succeeded", f"the database schema matches {spec.image}")
            elif mstate == "failed":
                migrated = cond.condition("Migrated", False, "Failed", await self._job_message(ns, mjob, secret_values))
            elif mjob is None:
                migrated = cond.condition("Migrated", "Unknown", "Waiting",
                                          f"an earlier migration Job runs; {spec.image} migrates after it")
            else:
                migrated = cond.condition("Migrated", "Unknown", "Migrating",
                                          f"Job {mkey[1]} migrates the database for {spec.image}")
            failed = mstate == "failed" and site_image != spec.image
            if skew:
                why = ("its migration failed, so no site rolls to it" if failed
                       else "sites roll to it once its migration succeeded" if site_image != spec.image
                       else "rolling out")
                detail = "; ".join(f"{_listed(slugs)} on {image}" for image, slugs in runs.items())
                if rolling:
                    detail += f"; rolling to {site_image}: {_listed(rolling)}"
                version = cond.condition("VersionSkew", True, "MigrationFailed" if failed else "RollingOut",
                                         f"spec.image is {spec.image}, {why}; {detail}")
            else:
                version = cond.condition("VersionSkew", False, "AllSitesOnImage",
                                         f"all {len(spec.sites)} sites run {spec.image}")
            if failed:
                ready = cond.condition("Ready", False, "MigrationFailed", "the migration Job failed; sites stay on "
                                       f"{site_image or 'no image'}; see Migrated")
            elif not all_ready or skew:
                waiting = len(spec.sites) - on_spec
                ready = cond.condition("Ready", False, "RollingOut",
                                       f"{waiting} of {len(spec.sites)} sites are not Available on {spec.image} yet")
            elif not ingress_ok:
                ready = cond.condition("Ready", False, "IngressMissing", "the Ingress is not there yet")
            else:
                ready = cond.condition("Ready", True, "Ready", f"{len(sites)} sites Available on {spec.image}")
            progressing = skew and not failed
            new_conditions += [
                migrated, version, ready,
                cond.condition("Progressing", progressing, "RollingOut" if progressing else "Complete",
                               "migrating or rolling out" if progressing else "nothing in progress"),
                cond.condition("Degraded", failed, "MigrationFailed" if failed else "AsExpected",
                               "the migration Job failed" if failed else "no failure"),
            ]
            selector = f"{PROJECT_LABEL}={owner.name},{COMPONENT_LABEL}=site"
            image = site_image

        if handover:
            # The new mode's workloads are not all Available yet: the old ones still serve every domain. A failure
            # (a failed migration or population) keeps its reason; the message says who serves meanwhile.
            new_mode = "the site Deployments" if spec.mode == "multi-project" else "the shared Deployment"
            note = f"switching to {spec.mode}: the previous mode's workloads serve until {new_mode} are Available"
            new_conditions = [
                c if c["type"] != "Ready" else (
                    cond.condition("Ready", False, c["reason"], f"{c['message']}; {note}")
                    if c["reason"].endswith("Failed") else cond.condition("Ready", False, "SwitchingMode", note))
                for c in new_conditions]

        current_ids = {s.id for s in spec.sites}
        status: Obj = {
            "observedGeneration": gen,
            "conditions": cond.merge(old.get("conditions") or [], new_conditions, gen),
            "replicas": total_ready,
            "selector": selector,
            "siteCount": len(spec.sites),
            "sites": sites,
            "knownSites": sorted(known.values(), key=lambda s: s["id"]),
            "orphanedSites": sorted((s for i, s in known.items() if i not in current_ids), key=lambda s: s["id"]),
            "image": image,
        }
        return status

    async def _write_status(self, project: Obj, old: Obj, status: Obj, outcome: Outcome) -> None:
        meta = project["metadata"]
        memo = (meta["namespace"], meta["name"], meta.get("uid"))
        if status == old:
            return
        await self.api.patch_status(meta["namespace"], meta["name"], status)
        self._written[memo] = status
        outcome.status_written = True
        outcome.writes += 1
        for change in cond.transitions(old.get("conditions") or [], status["conditions"]):
            kind = "Normal" if cond.is_good(change) or cond.in_progress(change) else "Warning"
            self.emit(project, kind, change["reason"], f"{change['type']}={change['status']}: {change['message']}"[:1024])
            metrics.count_job_result(change)
        self._report_orphans(project, old, status)

    def _report_started_jobs(self, project: Obj, spec: MultiSiteProjectSpec, jobs: list[Obj]) -> None:
        """One Event (and one count) per Job created: the decision to write to the shared database."""
        for job in jobs:
            name = job["metadata"]["name"]
            component = (job["metadata"].get("labels") or {}).get(COMPONENT_LABEL)
            if component == "migrate":
                metrics.MIGRATE_RESULTS.labels("started").inc()
                self.emit(project, "Normal", "MigrationStarted", f"created Job {name} to migrate the database for "
                          f"{spec.image}; sites roll to it once it succeeds")
            else:
                metrics.POPULATE_RESULTS.labels("started").inc()
                slugs = ", ".join(s.slug for s in spec.sites)
                self.emit(project, "Normal", "PopulateStarted", f"created Job {name} to write sites {slugs}"[:1024])

    def _report_orphans(self, project: Obj, old: Obj, status: Obj) -> None:
        """Sites removed from the spec keep their rows in the database (never deleted): say so once, when it happens."""
        before = {s["id"] for s in old.get("orphanedSites") or []}
        after = {s["id"]: s for s in status.get("orphanedSites") or []}
        for site_id in sorted(set(after) - before):
            site = after[site_id]
            self.emit(project, "Normal", "SiteOrphaned",
                      f"site {site.get('slug')} (SITE_ID {site_id}) left spec.sites: it is no longer served; its Site "
                      "row and data stay in the database (see status.orphanedSites)")
        for site_id in sorted(before - set(after)):
            self.emit(project, "Normal", "SiteRestored", f"SITE_ID {site_id} is in spec.sites again")

    def forget(self, namespace: str, name: str) -> None:
        for memo in [m for m in self._written if m[:2] == (namespace, name)]:
            del self._written[memo]
