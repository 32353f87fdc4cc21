"""One level-based reconcile of a MultiSiteProject: observed children in, writes and status out.

It runs for every event of the project or of any of its children, after a restart as after an edit, so it never
depends on what changed. The story, top to bottom in `Reconciler.reconcile`: parse the spec; gate on what is
outside it (valid, no domain conflict, Secrets present); plan the desired children for the mode (modes/); apply
what differs (apply.py); prune children no longer desired; compute status, Ready decided once by
conditions.summary; write it if it changed. With nothing to change it makes no write at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from . import conditions as cond
from . import certificates, limits, metrics, pods, rotation, routing_status, routing_switch
from .apply import R_NOT_OWNED, apply_all, controlled_by, not_owned, not_owned_message, to_apply
from .kube import ApiError, KubeApi, api_message
from .modes import Facts, Report, gate, multi, shared, switch
from .models import MultiSiteProjectSpec
from .naming import COMPONENT_LABEL
from .obj import Key, Obj, key
from .observe import FailureMessages
from .packed import ExpandCache, Packed, pack
from .recent import RecentlyApplied
from .redact import redact
from .render import Owner
from .rendered import RenderCache
from .specs import readable, validate
from .status_writer import StatusWriter

log = logging.getLogger(__name__)
Emit = Callable[[Obj, str, str, str], None]  # (project, type Normal|Warning, reason, message)
MODES = {"shared": shared, "multi-project": multi}
PROGRESS_RECHECK_SECONDS = 10.0  # a project under way is looked at again this often, events or not


GATEWAY_API_MISSING = ("spec.gateway needs the Gateway API, but the cluster serves no HTTPRoute "
                       "(gateway.networking.k8s.io/v1): install the Gateway API CRDs (standard channel) or route "
                       "through spec.ingress; nothing was changed")


def event_text(text: str, limit: int = 1024) -> str:
    """An Event message the API server accepts: it counts bytes, not characters (non-ASCII output is common)."""
    return text.encode()[:limit].decode(errors="ignore")


@dataclass
class Outcome:
    writes: int = 0
    status_written: bool = False
    retry_after: float | None = None  # seconds; set while blocked on something outside the spec
    status: Obj = field(default_factory=dict)
    progress_pause: float | None = None  # seconds the next reconcile for a child's status alone may wait (controller.py)


class Reconciler:
    def __init__(self, api: KubeApi, emit: Emit, secret_recheck: float = rotation.DEFAULT_RECHECK_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.emit = emit
        self.secret_checks = rotation.SecretChecks(secret_recheck, clock)
        # The status we last wrote per project uid (compact JSON: packed.py), with the project's resourceVersions
        # it is valid for (see _old).
        self._written: dict[tuple[str, str, str], tuple[Packed, tuple[str, ...]]] = {}
        self._unpacked = ExpandCache(32)  # the statuses in _written, parsed (the 32 projects read last)
        self.failures = FailureMessages(api.job_failure)
        self._jobs_reported: dict[tuple[str, str], set[str]] = {}  # uids of Jobs whose start was reported
        self.recent = RecentlyApplied()  # what was applied until the informer shows it (recent.py)
        self.rendered = RenderCache()  # children rendered once per spec generation (rendered.py)
        self.status = StatusWriter(api.patch_status, self._status_failed, self._status_written, may_wait=paced)
        self.retry: Callable[[tuple[str, str]], None] | None = None  # the controller's: reconcile this one again

    def _forget_written(self, project: tuple[str, str]) -> None:
        """Forget the statuses remembered as written for `project`, and their parsed form."""
        for memo in [m for m in self._written if m[:2] == project]:
            del self._written[memo]
            self._unpacked.discard(str(memo))

    def _status_failed(self, project: tuple[str, str]) -> None:
        """A status write failed for good: compare with the cluster's status next time, and make a next time."""
        self._forget_written(project)
        if self.retry is not None:
            self.retry(project)

    def _status_written(self, project: tuple[str, str], uid: str | None, version: str | None) -> None:
        """A status write is done: the project's resourceVersion it returned is one of ours (see _old)."""
        memo = (*project, uid)
        written = self._written.get(memo)  # type: ignore[arg-type]
        if written is not None and version:
            self._written[memo] = (written[0], (*written[1], version))  # type: ignore[index]

    async def flush(self) -> None:
        """Wait for the status writes handed over so far (tests)."""
        await self.status.flush()

    async def reconcile(self, project: Obj, children: list[Obj], conflicts: list[str] | None = None,
                        image_problems: list[str] | None = None,
                        parsed: MultiSiteProjectSpec | ValidationError | None = None,
                        crashes: list[str] | None = None,
                        gateways: routing_status.Gateways | None = None,
                        certs: certificates.Lookup | None = None) -> Outcome:
        meta = project["metadata"]
        ns, name = meta["namespace"], meta["name"]
        owner = Owner(name=name, namespace=ns, uid=meta.get("uid"))
        old = self._old(project)

        # 1. Parse (once per generation: the controller passes what its cache parsed).
        spec = parsed if parsed is not None else validate(project.get("spec"))
        # 2. Gate: a spec that cannot be served changes nothing but its status.
        if isinstance(spec, ValidationError):
            return await self._blocked(project, old, cond.R_INVALID_SPEC, readable(spec), retry=None)
        if problems := limits.name_problems(name):  # a project created before the CRD's name rule existed
            return await self._blocked(project, old, cond.R_INVALID_SPEC, "; ".join(problems), retry=None)
        if conflicts:
            return await self._blocked(project, old, cond.R_DOMAIN_CONFLICT, "; ".join(conflicts), retry=30)
        db = spec.database.secret_ref
        secrets, digests = await self.secret_checks.get(  # read when due (rotation.py): not on an unchanged reconcile
            project, old, (db.name, db.key),
            lambda: self.api.check_secrets(ns, secret_refs(spec), visible_secret_refs(spec)))
        if secrets.missing:
            return await self._blocked(project, old, cond.R_SECRET_MISSING, "; ".join(secrets.missing), retry=10)
        owner = replace(owner, digests=digests)  # the pods get digests of the values, never the values

        # Only projects blocked on it ask again so often (a served answer is remembered): they converge within
        # ~10 s of the CRDs being installed. cert-manager's optional check keeps the minute's recheck.
        if spec.routing() == "gateway" and not await self.api.serves(*routing_status.HTTPROUTES, recheck=10):
            return await self._blocked(project, old, cond.R_GATEWAY_API_MISSING, GATEWAY_API_MISSING, retry=10)

        # 3. Plan for the mode, and hand over from the other mode while it still serves.
        observed = self.recent.merge((ns, name), {key(c): c for c in children})  # the cache may lag our writes
        stood_in = self.recent.expires_in((ns, name))  # a look again when what stood in for the cache expires
        plan = MODES[spec.mode].plan(spec, owner, old, observed, self.rendered)
        kept = switch.handover_keeps(spec, plan.desired, children, observed)  # drops existing routing from it
        desired = list(plan.desired.values())
        routing_kept = routing_switch.keeps(spec, desired, children, observed)

        # 4. Apply what differs; children the API server or a node would refuse are reported, not retried blindly.
        memo = self.rendered.memo(spec, owner)
        if problems := limits.checked(desired, memo):
            return await self._blocked(project, old, cond.R_INVALID_SPEC, "; ".join(problems)[:1024], retry=None)
        changes = to_apply(desired, observed, memo.setdefault("compared", {}))
        if taken := await not_owned(self.api, changes, observed, owner.uid):
            return await self._blocked(project, old, R_NOT_OWNED, not_owned_message(taken), retry=30)
        if not await gate.caches_current(self.api, project, old, changes, observed):
            return Outcome(status=old, retry_after=1)  # an image roll waits for caches that lag the cluster
        try:
            applied = await apply_all(self.api, changes)
        except ApiError as exc:
            if exc.status != 422:
                raise
            message = redact(f"the API server rejected a child: {api_message(exc)}", secrets.values)[:1024]
            return await self._blocked(project, old, cond.R_INVALID_SPEC, message, retry=60)
        self.recent.remember((ns, name), applied)
        self._report_started_jobs(project, spec, [o for o in applied if o["kind"] == "Job"])
        current = {**observed, **{key(o): o for o in applied}}

        # 5. Prune children no longer desired (a Job writing to the database finishes first).
        wanted = {key(d) for d in desired} | (kept or set()) | routing_kept
        stale = [c for c in children if key(c) not in wanted and not switch.must_finish(spec, c)
                 and controlled_by(c, owner.uid or "")]
        await self._prune(project, stale, current)

        # 6. Status: the mode's report, Ready summarised once.
        facts = Facts(spec, owner, old, current, {key(o) for o in applied}, plan, sites=site_entries(spec),
                      known={int(s["id"]): s for s in old.get("knownSites") or []},
                      job_message=lambda job: self.failures.message(ns, name, job, secrets.values))
        routed = routing_status.annotate(spec, facts.sites, desired, current, gateways or {},
                                         routing_switch.note(spec, routing_kept))
        if certs is not None and certificates.wanted(spec) and await self.api.serves(*certificates.CERTIFICATES):
            certificates.annotate(spec, name, facts.sites, certs)
        report = await MODES[spec.mode].report(facts)
        self.failures.prune(ns, name, {k[1] for k in current if k[0] == "Job"})
        if (ns, name) in self._jobs_reported:  # only Jobs that still exist can be applied again by a lagging cache
            self._jobs_reported[(ns, name)] &= {c["metadata"].get("uid") for k, c in current.items() if k[0] == "Job"}
        pod_trouble = pods.problem(image_problems or []) or pods.crash([redact(c, secrets.values) for c in crashes or []])
        status = assemble(facts, report, kept is not None, pod_trouble, meta.get("generation"), routed)

        # 7. Write it when it changed.
        # The next look: for a rotated Secret, and when a remembered apply that stood in for the cache expires.
        # And while a rollout, migration or population is under way: its progress normally arrives as child events,
        # but kopf holds every handler while it lists a resource kind that appeared at run time (the Gateway API or
        # cert-manager CRDs installed later); the indexes the reconcile reads stay current meanwhile.
        progressing = PROGRESS_RECHECK_SECONDS if report.progressing.get("status") == "True" else None
        looks = [t for t in (self.secret_checks.due_in(project), stood_in, progressing) if t is not None]
        outcome = Outcome(writes=len(applied) + len(stale), status=status, retry_after=min(looks, default=None),
                          progress_pause=PROGRESS_PAUSE_SECONDS if paced(status) and report.on_the_way > 1 else None)
        await self._write_status(project, old, status, outcome)
        return outcome

    async def _prune(self, project: Obj, stale: list[Obj], current: dict[Key, Obj]) -> None:
        ns = project["metadata"]["namespace"]
        for child in stale:
            if child["metadata"].get("deletionTimestamp"):  # an earlier reconcile deleted it; the cache lags
                current.pop(key(child), None)
                continue
            gone = await self.api.delete(child["apiVersion"], child["kind"], ns, child["metadata"]["name"])
            self.recent.forget((ns, project["metadata"]["name"]), key(child))
            current.pop(key(child), None)
            if gone is False:  # already deleted: said once, by the reconcile that deleted it
                continue
            self.emit(project, "Normal", "Deleted", f"deleted {child['kind']} {child['metadata']['name']}: no longer "
                      "desired by the spec")

    async def _blocked(self, project: Obj, old: Obj, reason: str, message: str, retry: float | None) -> Outcome:
        """Report why nothing can be done (Ready False, Degraded True); every other condition stays as it was."""
        gen = project["metadata"].get("generation")
        ready, degraded = cond.summary([cond.Problem(reason, message, degraded=message)], "")
        kept = [c for c in old.get("conditions") or [] if c.get("type") not in (cond.READY, cond.DEGRADED)]
        status = {**old, "observedGeneration": gen,
                  "conditions": cond.merge(old.get("conditions") or [], [ready, degraded], gen) + kept}
        outcome = Outcome(status=status, retry_after=retry)
        await self._write_status(project, old, status, outcome)
        return outcome

    def _old(self, project: Obj) -> Obj:
        """The project's last status: the one we wrote while the cache has not caught up with our own writes yet
        (the project still has a resourceVersion one of our patches replaced or returned since the cache last
        showed something else, or a write of ours is still in flight: the watch may deliver it before the PATCH's
        answer names its version, and our write lands on top of any other anyway); any other resourceVersion
        means someone else wrote (another leader, a person), and the cluster knows better."""
        meta = project["metadata"]
        memo = (meta["namespace"], meta["name"], meta.get("uid"))
        written = self._written.get(memo)
        if written is None:
            return dict(project.get("status") or {})
        if meta.get("resourceVersion") not in written[1] and not self.status.in_flight(memo[:2]):
            del self._written[memo]
            return dict(project.get("status") or {})
        # Never parsed while its writer's dict is kept (_write_status): a 1000-site project's status is ~400 KB of
        # JSON and its reconciles come several times per write while it rolls out (5.6 s of operator CPU per rollout
        # when parsed at every reconcile, bench/ANALYSIS.md round nine; 2.7 s in a round-ten profile when parsed
        # once per write).
        return dict(self._unpacked.value(str(memo), "status", written[0]))

    async def _write_status(self, project: Obj, old: Obj, status: Obj, outcome: Outcome) -> None:
        meta = project["metadata"]
        if status == old:
            return
        # Off the critical path (status_writer.py): remembered as written now, so the next reconcile compares with
        # it, valid while the cache shows a resourceVersion of our own writes. The versions our writes went through
        # since the cache last showed another writer's, in write order from the one the cache shows (a cache never
        # goes back): a cache that delivers any of them lags behind our latest write, not behind someone else's.
        # The version each write returns is added when it is done (_status_written).
        memo = (meta["namespace"], meta["name"], meta.get("uid"))
        before, version = self._written.get(memo), meta.get("resourceVersion")
        if version:
            chain = before[1] if before is not None and version in before[1] else ()
            text = pack(status)
            self._written[memo] = (text, chain[chain.index(version):] if chain else (version,))
            # The next reconcile's _old reads it: this very dict, not the text parsed again (only read, never changed).
            self._unpacked.put(str(memo), "status", text, status)
        else:  # no version to check a memo against: remember nothing
            self._written.pop(memo, None)
        self.status.submit((meta["namespace"], meta["name"]), status, meta.get("uid"))
        outcome.status_written = True
        outcome.writes += 1
        for change in cond.transitions(old.get("conditions") or [], status["conditions"]):
            metrics.count_job_result(change)
        for change in cond.worth_an_event(old.get("conditions") or [], status["conditions"]):
            kind = "Normal" if cond.is_good(change) else "Warning"
            self.emit(project, kind, change["reason"], event_text(f"{change['type']}={change['status']}: {change['message']}"))
        self._report_orphans(project, old, status)

    def _report_started_jobs(self, project: Obj, spec: MultiSiteProjectSpec, jobs: list[Obj]) -> None:
        """One Event (and one count) per Job created: the decision to write to the shared database.

        A reconcile that runs before the informer has seen a Job created a moment ago applies it again (a no-op for
        the API server: same content, same name); the Job's uid says it is the same Job, so it is reported once."""
        meta = project["metadata"]
        reported = self._jobs_reported.setdefault((meta["namespace"], meta["name"]), set())
        for job in jobs:
            name = job["metadata"]["name"]
            uid = job["metadata"].get("uid")
            if uid and uid in reported:
                continue
            if uid:
                reported.add(uid)
            component = (job["metadata"].get("labels") or {}).get(COMPONENT_LABEL)
            if component == "migrate":
                metrics.MIGRATE_RESULTS.labels("started").inc()
                self.emit(project, "Normal", "MigrationStarted", f"created Job {name} to migrate the database for "
                          f"{spec.image}; sites roll to it once it succeeds")
            else:
                metrics.POPULATE_RESULTS.labels("started").inc()
                slugs = ", ".join(s.slug for s in spec.sites)
                self.emit(project, "Normal", "PopulateStarted", event_text(f"created Job {name} to write sites {slugs}"))

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

    def forget_all(self) -> None:
        """Drop everything remembered across reconciles (statuses written, Secret reads, children applied, Job
        failure messages): for the leader election to call when this replica loses or gains leadership, since
        another replica may have written since (issue 14 item 1). Nothing is lost: every reconcile then reads the
        cluster's own state."""
        self._written.clear()
        self._unpacked.clear()
        self.secret_checks.forget_all()
        self.recent.clear()
        self.failures.prune_all()

    def forget(self, namespace: str, name: str, uid: str | None = None) -> None:
        self.rendered.forget(uid)
        self._jobs_reported.pop((namespace, name), None)
        self.recent.forget((namespace, name))
        self._forget_written((namespace, name))
        self.secret_checks.forget(namespace, name)
        self.failures.prune(namespace, name)
        self.status.forget((namespace, name))


PACED_SITES = 200
# How long status-only child events of a paced project with several sites on their way wait for a reconcile
# (controller.py): its progress is written every few seconds at most (status_writer.py), and the last site's
# Available is not paused, so Ready is not late.
PROGRESS_PAUSE_SECONDS = 0.5


def paced(status: Obj) -> bool:
    """A progress report of a large project, which may wait (status_writer.py). Not below PACED_SITES sites: there a
    status write costs the API server little (~50 ms at 100 sites), and every state a small project passes through
    stays visible, however briefly it lasts."""
    return (status.get("siteCount") or 0) >= PACED_SITES and cond.only_progress(status.get("conditions") or [])


def secret_refs(spec: MultiSiteProjectSpec) -> list[tuple[str, str]]:
    refs = [(spec.database.secret_ref.name, spec.database.secret_ref.key)]
    if spec.storage is not None:
        refs.append((spec.storage.secret_ref.name, spec.storage.secret_ref.key))
    return refs


def visible_secret_refs(spec: MultiSiteProjectSpec) -> list[tuple[str, str | None]]:
    """Every other Secret the pods can see, for redaction: spec.env secretKeyRef (name, key) and spec.envFrom
    secretRef (name, None: all its keys)."""
    refs: list[tuple[str, str | None]] = []
    for var in spec.env:
        ref = (var.get("valueFrom") or {}).get("secretKeyRef") or {}
        if ref.get("name") and ref.get("key"):
            refs.append((str(ref["name"]), str(ref["key"])))
    for source in spec.env_from:
        ref = source.get("secretRef") or {}
        if ref.get("name"):
            refs.append((str(ref["name"]), None))
    return refs


def site_entries(spec: MultiSiteProjectSpec) -> list[Obj]:
    """status.sites: each site's served domains and URL (the mode may add image and replicas)."""
    scheme = "https" if spec.https() else "http"
    out = []
    for site in spec.sites:
        names = spec.site_domains(site).names()
        out.append({"slug": site.slug, "id": site.id, "name": site.name, "domains": names,
                    "url": f"{scheme}://{names[0]}/"})
    return out


def assemble(f: Facts, report: Report, switching: bool, pulling: cond.Problem | None, gen: int | None,
             routed: tuple[cond.Condition, str] | None = None) -> Obj:
    """The status object: the mode's conditions, Ready and Degraded from the one summary, the site lists.

    `routed` (routing_status.annotate): the Routed condition and the routed/total host count; Routed is reported
    after Degraded and never feeds Ready."""
    spec = f.spec
    problems = list(report.problems)
    if spec.routing() == "ingress" and not any(k[0] == "Ingress" for k in f.current):
        problems.append(cond.Problem(cond.R_INGRESS_MISSING, "the Ingress is not there yet"))
    ready, degraded = cond.summary(problems, report.ready_message, pulling=pulling,
                                   switching=switch.note(spec) if switching else None)
    current_ids = {s.id for s in spec.sites}
    return {
        "observedGeneration": gen,
        "conditions": cond.merge(f.old.get("conditions") or [],
                                 [*report.before, ready, report.progressing, degraded, *([routed[0]] if routed else [])],
                                 gen),
        **({"routedHosts": routed[1]} if routed else {}),
        "replicas": report.replicas,
        "selector": report.selector,
        "siteCount": len(spec.sites),
        "sites": f.sites,
        "knownSites": sorted(f.known.values(), key=lambda s: s["id"]),
        "orphanedSites": sorted((s for i, s in f.known.items() if i not in current_ids), key=lambda s: s["id"]),
        "image": report.image,
    }
