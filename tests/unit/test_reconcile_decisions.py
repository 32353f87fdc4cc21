"""The reconcile's decisions on a fake API: what is applied, kept, deleted, and what the conditions say.

These are the decisions the e2e suite proves on a real control plane; here each is pinned in milliseconds, so a
broken decision fails a unit test with the step that broke it. The fake plays the controllers (roll_out, finish).
"""

from __future__ import annotations

import asyncio
import copy
import time

import pytest

from fake_cluster import FakeCluster, example, reconcile
from multisite_operator.reconcile import PACED_SITES, PROGRESS_PAUSE_SECONDS, Reconciler

OLD, NEW = "registry.example.com/example/web:1.0.0", "registry.example.com/example/web:1.1.0"


def setup(name: str = "example-shared") -> tuple[FakeCluster, Reconciler]:
    cluster = FakeCluster(example(name))
    return cluster, Reconciler(cluster, cluster.emit)


def ready_shared() -> tuple[FakeCluster, Reconciler]:
    cluster, r = setup()
    cluster.migrate(r)
    finish_all(cluster)
    reconcile(r, cluster)
    cluster.roll_out()
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")
    return cluster, r


def finish_all(cluster: FakeCluster) -> None:
    for job in cluster.named("Job"):
        if not cluster.objects[("Job", job)].get("status"):
            cluster.finish(job)


def web_image(cluster: FakeCluster) -> str:
    return cluster.objects[("Deployment", "example-web")]["spec"]["template"]["spec"]["containers"][0]["image"]


def kinds(writes: list[tuple[str, str, str]], verb: str = "apply") -> list[str]:
    return sorted(k for v, k, _ in writes if v == verb)


# --- shared mode -----------------------------------------------------------------------------------------------------
def test_a_lagging_cache_causes_no_second_write_and_a_child_deleted_later_is_put_back():
    """The next reconcile often runs before the watch shows what the last one applied: it writes nothing again
    (recent.py). Once the cache has caught up, a child deleted by hand is created again as before."""
    import asyncio

    cluster, r = setup()
    reconcile(r, cluster)
    cluster.writes.clear()
    asyncio.run(r.reconcile(cluster.project, []))  # the informer has shown nothing yet
    assert [w for w in cluster.writes if w[0] == "apply"] == []
    reconcile(r, cluster)  # caught up
    del cluster.objects[("Ingress", "example")]
    reconcile(r, cluster)
    assert ("apply", "Ingress", "example") in cluster.writes


def test_the_status_written_stands_in_for_a_lagging_cache_and_each_reconcile_gets_its_own_copy():
    """Until the watch shows the operator's own status write, the next reconcile compares with what was written
    (parsed once per write and shared: a 1000-site status is ~400 KB); what one reconcile does to the status it was
    handed must not reach the next."""
    cluster, r = setup()
    reconcile(r, cluster)
    written = copy.deepcopy(cluster.project["status"])
    lagging = {**cluster.project, "metadata": {**cluster.project["metadata"], "resourceVersion": "1"}, "status": {}}
    first = r._old(lagging)
    assert first == written
    first["image"], first["conditions"] = "changed", []
    assert r._old(lagging) == written
    caught_up = copy.deepcopy(cluster.project)
    caught_up["status"]["image"] = "someone else's"  # a version none of our writes returned: the cluster's counts
    caught_up["metadata"]["resourceVersion"] = "7"
    assert r._old(caught_up)["image"] == "someone else's"


def test_a_child_deleted_by_hand_right_after_an_apply_is_created_again():
    """An edit rolls the web Deployment and someone deletes it before any reconcile saw the roll in the cache (seen
    on the real control plane after an API server restart: the Deployment stayed gone). What was applied stood in
    for the cache's missing copy; the DELETED event (same uid) drops it, and the reconcile asks for another look
    when such a stand-in expires, in case that event was missed."""
    cluster, r = setup()
    cluster.settle(r)
    cluster.edit_spec(replicas=3)
    reconcile(r, cluster)
    gone = cluster.objects.pop(("Deployment", "example-web"))
    out = reconcile(r, cluster)  # the cache already shows it gone; the apply of a moment ago stands in for it
    assert ("apply", "Deployment", "example-web") not in cluster.writes
    assert out.retry_after is not None and out.retry_after <= 10, "a look again once the stand-in expires"
    r.recent.gone(("shop", "example"), ("Deployment", "example-web"), gone["metadata"]["uid"])  # its DELETED event
    reconcile(r, cluster)
    assert ("apply", "Deployment", "example-web") in cluster.writes


def test_a_project_under_way_is_looked_at_again_without_events_and_a_ready_one_is_not():
    """kopf holds every event handler while it lists a resource kind whose CRD appeared at run time (seen: the
    Gateway API CRDs installed while a project migrated; its Job's completion reached no handler for 90 s). A project
    that is migrating, populating or rolling out is reconciled again from the indexes within 10 s anyway."""
    cluster, r = setup()
    out = reconcile(r, cluster)
    assert cluster.condition("Progressing")["status"] == "True"
    assert out.retry_after is not None and out.retry_after <= 10
    cluster.settle(r)
    out = reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready") and (out.retry_after is None or out.retry_after > 10)


def test_a_job_applied_again_by_a_lagging_cache_is_reported_once():
    """The next reconcile may run before the informer has seen the Job just created: it applies the same Job
    again (a no-op for the API server), and must not say MigrationStarted twice."""
    import asyncio

    cluster, r = setup()
    reconcile(r, cluster)
    lagging = [c for c in cluster.children() if c["kind"] != "Job"]
    asyncio.run(r.reconcile(cluster.project, lagging))
    assert [reason for _, reason, _ in cluster.events].count("MigrationStarted") == 1


def test_shared_new_project_migrates_then_populates_then_creates_the_web_deployment():
    cluster, r = setup()
    out = reconcile(r, cluster)
    assert kinds(cluster.writes) == ["Ingress", "Job", "Service"]
    applied = [k for v, k, _ in cluster.writes if v == "apply"]
    assert applied.index("Service") < applied.index("Ingress")
    assert cluster.named("Deployment") == [], "no pod serves a database without its schema"
    [migrate] = cluster.named("Job")
    assert migrate.startswith("example-migrate-") and out.writes == 4 and out.status_written
    command = cluster.objects[("Job", migrate)]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command == ["python", "manage.py", "migrate", "--noinput"]
    assert cluster.ready() == ("False", "Migrating")
    assert (cluster.condition("Migrated")["status"], cluster.condition("Migrated")["reason"]) == ("Unknown", "Migrating")
    assert cluster.condition("Populated")["reason"] == "Waiting"
    assert cluster.condition("Progressing")["status"] == "True"
    assert ("Normal", "MigrationStarted") in [(t, r) for t, r, _ in cluster.events]
    cluster.finish(migrate)
    reconcile(r, cluster)
    assert cluster.named("Deployment") == [], "the sites' rows first"
    [populate] = cluster.named("Job", "example-populate-")
    assert cluster.objects[("Job", populate)]["metadata"]["annotations"]["multisite.dev/image"] == OLD
    assert cluster.condition("Migrated")["status"] == "True"
    assert cluster.ready() == ("False", "Populating")
    assert ("Normal", "PopulateStarted") in [(t, r) for t, r, _ in cluster.events]
    cluster.finish(populate)
    reconcile(r, cluster)
    assert cluster.named("Deployment") == ["example-web"]
    assert cluster.ready() == ("False", "RollingOut")
    cluster.roll_out()
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")
    assert cluster.project["status"]["image"] == OLD
    # `kubectl events` tells the story in five lines: what started, what succeeded, Ready (conditions.worth_an_event).
    assert [(t, reason) for t, reason, _ in cluster.events] == [
        ("Normal", "MigrationStarted"), ("Normal", "PopulateStarted"), ("Normal", "Succeeded"), ("Normal", "Succeeded"),
        ("Normal", "Ready")]


def test_shared_is_ready_only_when_rolled_out_and_populated_then_idle_writes_nothing():
    cluster, r = setup()
    cluster.migrate(r)
    [job] = cluster.named("Job", "example-populate-")
    cluster.finish(job)
    reconcile(r, cluster)
    assert cluster.ready() == ("False", "RollingOut")
    cluster.roll_out()
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")
    assert cluster.condition("Populated")["reason"] == "Succeeded"
    assert cluster.condition("Degraded")["status"] == "False"
    assert [s["slug"] for s in cluster.project["status"]["knownSites"]] == ["de", "gh", "us"]
    out = reconcile(r, cluster)
    assert out.writes == 0 and cluster.writes == []


def test_shared_new_image_migrates_then_populates_with_it_then_rolls():
    cluster, r = ready_shared()
    cluster.edit_spec(image=NEW)
    reconcile(r, cluster)
    assert web_image(cluster) == OLD and kinds(cluster.writes) == ["Job"], "only the migration starts"
    assert cluster.ready() == ("False", "Migrating")
    [migrate] = [j for j in cluster.named("Job", "example-migrate-") if not cluster.objects[("Job", j)]["status"]]
    cluster.finish(migrate)
    reconcile(r, cluster)
    assert web_image(cluster) == OLD, "the new image serves only once its sites' rows are written"
    [populate] = [j for j in cluster.named("Job", "example-populate-") if not cluster.objects[("Job", j)]["status"]]
    assert cluster.objects[("Job", populate)]["spec"]["template"]["spec"]["containers"][0]["image"] == NEW
    assert cluster.ready() == ("False", "Populating")
    cluster.finish(populate)
    reconcile(r, cluster)
    assert web_image(cluster) == NEW
    cluster.roll_out()
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready") and cluster.project["status"]["image"] == NEW
    assert reconcile(r, cluster).writes == 0


def test_shared_failed_migration_keeps_the_old_pods_and_says_why_without_secrets():
    cluster, r = ready_shared()
    cluster.edit_spec(image=NEW)
    reconcile(r, cluster)
    [migrate] = [j for j in cluster.named("Job", "example-migrate-") if not cluster.objects[("Job", j)]["status"]]
    cluster.finish(migrate, ok=False, message="django.db.utils.ProgrammingError at "
                   "postgres://example:s3cr3t-pw@db:5432/example: column exists")
    reconcile(r, cluster)
    assert web_image(cluster) == OLD and not cluster.named("Job", "example-populate-") == []
    assert all(cluster.objects[("Job", j)]["metadata"]["annotations"]["multisite.dev/image"] == OLD
               for j in cluster.named("Job", "example-populate-")), "nothing populates with the failed image"
    migrated = cluster.condition("Migrated")
    assert (migrated["status"], migrated["reason"]) == ("False", "Failed")
    assert "column exists" in migrated["message"] and "s3cr3t-pw" not in str(cluster.project["status"])
    assert cluster.ready() == ("False", "MigrationFailed")
    assert cluster.condition("Degraded")["status"] == "True"
    assert ("Warning", "Failed") in [(t, r) for t, r, _ in cluster.events]
    assert not any("s3cr3t-pw" in m for _, _, m in cluster.events)
    assert reconcile(r, cluster).writes == 0
    cluster.edit_spec(image=FIXED)  # a fixed image recovers by itself
    reconcile(r, cluster)
    finish_all(cluster)
    reconcile(r, cluster)
    finish_all(cluster)
    reconcile(r, cluster)
    assert web_image(cluster) == FIXED


def test_shared_first_migration_failing_creates_no_web_deployment():
    cluster, r = setup()
    cluster.migrate(r, ok=False, message="no such table: django_site")
    assert cluster.named("Deployment") == [] and cluster.named("Job", "example-populate-") == []
    assert cluster.ready() == ("False", "MigrationFailed")
    assert "no web Deployment" in cluster.condition("Ready")["message"]
    assert "no such table" in cluster.condition("Migrated")["message"]


def test_shared_hand_edit_is_put_back_alone():
    cluster, r = ready_shared()
    cluster.objects[("Deployment", "example-web")]["spec"]["replicas"] = 7
    reconcile(r, cluster)
    assert [w for w in cluster.writes if w[0] != "status"] == [("apply", "Deployment", "example-web")]
    assert cluster.objects[("Deployment", "example-web")]["spec"]["replicas"] == 2


def test_shared_populate_failure_is_reported_without_secret_values():
    cluster, r = setup()
    cluster.migrate(r)
    [job] = cluster.named("Job", "example-populate-")
    cluster.finish(job, ok=False, message="could not connect to postgres://example:s3cr3t-pw@db:5432/example")
    reconcile(r, cluster)
    assert cluster.ready() == ("False", "PopulateFailed")
    populated = cluster.condition("Populated")
    assert populated["status"] == "False" and "could not connect" in populated["message"]
    assert "s3cr3t-pw" not in str(cluster.project["status"]) + str(cluster.events)
    assert cluster.condition("Degraded")["status"] == "True"
    assert ("Warning", "PopulateFailed") in [(t, r) for t, r, _ in cluster.events]


def test_shared_removed_site_is_orphaned_never_forgotten():
    cluster, r = ready_shared()
    cluster.edit_spec(sites=cluster.project["spec"]["sites"][:2])
    reconcile(r, cluster)
    assert cluster.project["status"]["orphanedSites"] == [{"slug": "us", "id": 3}]
    assert ("Normal", "SiteOrphaned") in [(t, r) for t, r, _ in cluster.events]
    assert len(cluster.named("Job", "example-populate-")) == 1, "the finished populate Job of the old content is pruned"


def test_image_pull_failure_replaces_rolling_out_but_never_a_ready_project():
    cluster, r = setup()
    cluster.migrate(r)
    finish_all(cluster)
    reconcile(r, cluster)
    reconcile(r, cluster, image_problems=["image x cannot be pulled by 2 pod(s): not found"])
    assert cluster.ready() == ("False", "ImagePullFailed")
    assert cluster.condition("Degraded")["reason"] == "ImagePullFailed"
    cluster.roll_out()
    reconcile(r, cluster, image_problems=["image x cannot be pulled by 1 pod(s): not found"])
    assert cluster.ready() == ("True", "Ready")


# --- blocked states: report, change nothing ---------------------------------------------------------------------------
@pytest.mark.parametrize("case, reason, retry", [
    ("invalid", "InvalidSpec", None), ("secret", "SecretMissing", 10), ("conflict", "DomainConflict", 30)])
def test_blocked_project_writes_only_its_status(case, reason, retry):
    cluster, r = setup()
    conflicts = None
    if case == "invalid":
        cluster.project["spec"]["sites"][0]["slug"] = "Not A Slug"
    elif case == "secret":
        cluster.secrets.pop(("example-db", "DATABASE_URL"))
    else:
        conflicts = ["domain example.de is already served by MultiSiteProject other/first"]
    out = reconcile(r, cluster, conflicts=conflicts)
    assert cluster.writes == [("status", "MultiSiteProject", "example")]
    assert out.retry_after == retry
    assert cluster.ready() == ("False", reason)
    assert cluster.condition("Degraded") == {**cluster.condition("Degraded"), "status": "True", "reason": reason}
    assert reconcile(r, cluster, conflicts=conflicts).writes == 0


def test_blocked_keeps_the_other_conditions_and_recovers():
    cluster, r = setup()
    cluster.migrate(r)
    value = cluster.secrets.pop(("example-db", "DATABASE_URL"))
    # On its way to Ready, the Secrets read at the generation's start hold until the timed look (rotation.py).
    r.secret_checks.clock = lambda: time.monotonic() + r.secret_checks.interval
    reconcile(r, cluster)
    assert cluster.ready() == ("False", "SecretMissing")
    assert cluster.condition("Populated")["status"] == "Unknown", "kept from before"
    cluster.secrets[("example-db", "DATABASE_URL")] = value  # the same value back (a new one is a rotation)
    finish_all(cluster)
    reconcile(r, cluster)
    cluster.roll_out()
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")


# --- multi-project: migrate, then roll ------------------------------------------------------------------------------
def test_multi_new_project_migrates_before_any_site_exists():
    cluster, r = setup("example-multi-project")
    reconcile(r, cluster)
    assert kinds(cluster.writes) == ["Ingress", "Job"], "each site's Service comes with its Deployment"
    assert cluster.named("Deployment") == [], "no site runs on a database without its schema"
    assert cluster.named("Job", "example-migrate-")
    assert cluster.condition("Migrated")["reason"] == "Migrating"
    assert cluster.ready() == ("False", "RollingOut")
    cluster.finish(cluster.named("Job")[0])
    reconcile(r, cluster)
    assert kinds(cluster.writes) == ["Deployment"] * 3 + ["Service"] * 3, "the rollout first, then its Services"
    assert cluster.named("Deployment") == ["example-site-de", "example-site-gh", "example-site-us"]
    assert cluster.condition("Migrated")["status"] == "True"
    cluster.roll_out()
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")
    assert cluster.condition("VersionSkew")["reason"] == "AllSitesOnImage"
    assert {s["image"] for s in cluster.project["status"]["sites"]} == {OLD}
    assert reconcile(r, cluster).writes == 0


def test_a_large_rollout_lets_status_moves_wait_while_several_sites_are_on_their_way():
    """controller.py's progress pause: asked for while two or more sites of a paced project are on their way, never
    for the last one (its Available makes the project Ready and must not wait), nor for a small project."""
    cluster, r = setup("example-multi-project")
    cluster.migrate(r)
    cluster.roll_out(*cluster.named("Deployment")[:1])
    assert reconcile(r, cluster).progress_pause is None, "3 sites: below PACED_SITES nothing waits"

    cluster, r = setup("example-multi-project")
    site = {k: v for k, v in cluster.project["spec"]["sites"][1].items() if k not in ("slug", "id", "live", "test")}
    cluster.project["spec"]["sites"] = [{**site, "slug": f"s{i}", "id": i, "live": {"domain": f"s{i}.example.com"}}
                                        for i in range(1, PACED_SITES + 1)]
    cluster.migrate(r)
    sites = cluster.named("Deployment")
    cluster.roll_out(*sites[:-2])
    assert reconcile(r, cluster).progress_pause == PROGRESS_PAUSE_SECONDS
    cluster.roll_out(sites[-2])
    assert reconcile(r, cluster).progress_pause is None, "the last site on its way"
    cluster.roll_out(sites[-1])
    assert reconcile(r, cluster).progress_pause is None and cluster.ready() == ("True", "Ready")


def ready_multi() -> tuple[FakeCluster, Reconciler]:
    cluster, r = setup("example-multi-project")
    reconcile(r, cluster)
    cluster.finish(cluster.named("Job")[0])
    reconcile(r, cluster)
    cluster.roll_out()
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")
    return cluster, r


def images(cluster: FakeCluster) -> set[str]:
    return {c["image"] for n in cluster.named("Deployment")
            for c in cluster.objects[("Deployment", n)]["spec"]["template"]["spec"]["containers"]}


def test_multi_image_change_rolls_only_after_its_migration_succeeded():
    cluster, r = ready_multi()
    cluster.edit_spec(image=NEW)
    reconcile(r, cluster)
    assert images(cluster) == {OLD}, "no site rolls before the migration succeeded"
    assert kinds(cluster.writes) == ["Job"]
    skew = cluster.condition("VersionSkew")
    assert skew["status"] == "True" and skew["reason"] == "RollingOut"
    new_job = [j for j in cluster.named("Job") if cluster.objects[("Job", j)].get("status") == {}][0]
    cluster.finish(new_job)
    reconcile(r, cluster)
    assert images(cluster) == {NEW}
    assert cluster.ready() == ("False", "RollingOut")
    cluster.roll_out()
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")
    assert cluster.project["status"]["image"] == NEW


def test_multi_failed_migration_keeps_every_site_on_the_old_image():
    cluster, r = ready_multi()
    cluster.edit_spec(image=NEW)
    reconcile(r, cluster)
    new_job = [j for j in cluster.named("Job") if cluster.objects[("Job", j)].get("status") == {}][0]
    cluster.finish(new_job, ok=False, message="relation already exists")
    reconcile(r, cluster)
    assert images(cluster) == {OLD}
    assert cluster.ready() == ("False", "MigrationFailed")
    assert cluster.condition("VersionSkew")["reason"] == "MigrationFailed"
    assert "relation already exists" in cluster.condition("Migrated")["message"]
    assert cluster.condition("Degraded")["status"] == "True"
    assert reconcile(r, cluster).writes == 0


def test_multi_running_migration_is_never_killed_and_a_newer_one_waits():
    cluster, r = ready_multi()
    cluster.edit_spec(image=NEW)
    reconcile(r, cluster)
    running = [j for j in cluster.named("Job") if cluster.objects[("Job", j)].get("status") == {}][0]
    cluster.edit_spec(image="registry.example.com/example/web:1.2.0")
    reconcile(r, cluster)
    assert ("delete", "Job", running) not in cluster.writes
    assert kinds(cluster.writes) == [], "the newer migration waits for the running one"
    assert cluster.condition("Migrated")["reason"] == "Waiting"


# --- switching modes ---------------------------------------------------------------------------------------------------
def test_switch_shared_to_multi_keeps_the_old_workloads_serving_until_the_new_are_available():
    cluster, r = ready_shared()
    ingress_before = cluster.objects[("Ingress", "example")]["spec"]
    cluster.edit_spec(mode="multi-project")
    reconcile(r, cluster)
    assert ("Deployment", "example-web") in cluster.objects
    assert cluster.objects[("Ingress", "example")]["spec"] == ingress_before, "routes stay on the old mode"
    assert cluster.ready() == ("False", "SwitchingMode")
    assert kinds(cluster.writes) == ["Deployment", "Deployment", "Deployment", "Service", "Service", "Service"], \
        "a switch runs no migration"
    cluster.roll_out(*cluster.named("Deployment", "example-site-"))
    reconcile(r, cluster)
    assert ("Deployment", "example-web") not in cluster.objects and ("Service", "example-web") not in cluster.objects
    backends = {p["backend"]["service"]["name"] for rule in cluster.objects[("Ingress", "example")]["spec"]["rules"]
                for p in rule["http"]["paths"]}
    assert backends == {"example-site-de", "example-site-gh", "example-site-us"}
    assert cluster.ready() == ("True", "Ready")


def test_switch_lets_a_running_populate_job_finish():
    cluster, r = setup()
    cluster.migrate(r)
    [job] = cluster.named("Job", "example-populate-")
    cluster.edit_spec(mode="multi-project")
    reconcile(r, cluster)
    assert ("Job", job) in cluster.objects
    cluster.finish(job)
    reconcile(r, cluster)
    assert ("Job", job) not in cluster.objects


def test_switch_keeps_a_failure_reason_during_handover():
    cluster, r = ready_multi()
    cluster.edit_spec(mode="shared")
    reconcile(r, cluster)
    cluster.finish(cluster.named("Job", "example-populate-")[0], ok=False, message="boom")
    reconcile(r, cluster)
    status, reason = cluster.ready()
    assert (status, reason) == ("False", "PopulateFailed")
    assert "switching to shared" in cluster.condition("Ready")["message"]


def test_failure_messages_are_read_once_and_forgotten_with_their_job():
    cluster, r = setup()
    cluster.migrate(r)
    [job] = cluster.named("Job", "example-populate-")
    cluster.finish(job, ok=False, message="boom")
    reconcile(r, cluster)
    cluster.job_logs[job] = "changed later"
    reconcile(r, cluster)
    assert "boom" in cluster.condition("Populated")["message"], "read once: status does not flap"
    assert r.failures._known
    cluster.edit_spec(sites=cluster.project["spec"]["sites"][:2])
    reconcile(r, cluster)
    assert all(memo[2] != job for memo in r.failures._known), "the pruned Job's message is forgotten"


# --- start-up crashes (issue 13 item 5) -------------------------------------------------------------------------------
CRASH = ("django.core.exceptions.ImproperlyConfigured: could not connect to "
         "postgres://example:s3cr3t-pw@db:5432/example")
FIXED = "registry.example.com/example/web:1.1.1"




def test_shared_web_process_crashing_at_start_is_reported_with_its_redacted_output_and_recovers():
    cluster, r = ready_shared()
    [web] = cluster.named("Deployment")
    old_template = cluster.objects[("Deployment", web)]["spec"]["template"]
    cluster.edit_spec(image=NEW)
    reconcile(r, cluster)
    finish_all(cluster)  # the migration
    reconcile(r, cluster)
    finish_all(cluster)  # the populate Job
    reconcile(r, cluster)
    crashing = cluster.pod(web, output=CRASH, rs_hash="new1")
    serving = cluster.pod(web, template=old_template, rs_hash="old1")  # the old ReplicaSet keeps serving
    reconcile(r, cluster, pods=[crashing, serving])
    ready = cluster.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "CrashLoop")
    assert "ImproperlyConfigured: could not connect" in ready["message"] and web in ready["message"]
    assert "s3cr3t-pw" not in ready["message"] and "[redacted]" in ready["message"]
    assert cluster.condition("Degraded")["reason"] == "CrashLoop"
    warnings = [m for t, reason, m in cluster.events if (t, reason) == ("Warning", "CrashLoop")]
    assert sorted(m.split("=")[0] for m in warnings) == ["Degraded", "Ready"]
    assert not any("s3cr3t-pw" in m for m in warnings)
    # The same crash again (the kubelet restarts it): no new write, no new Event.
    out = reconcile(r, cluster, pods=[crashing, serving])
    assert out.writes == 0
    # A fixed image rolls out: the old template's crashing pods no longer count, the project recovers by itself.
    cluster.edit_spec(image=FIXED)
    reconcile(r, cluster, pods=[crashing, serving])
    finish_all(cluster)
    reconcile(r, cluster, pods=[crashing, serving])
    finish_all(cluster)
    reconcile(r, cluster, pods=[crashing, serving])  # the web Deployment rolls to the fixed image
    reconcile(r, cluster, pods=[crashing, serving])  # its event: the crashing pods run a replaced template
    assert cluster.ready()[1] != "CrashLoop"
    cluster.roll_out()
    reconcile(r, cluster, pods=[crashing, cluster.pod(web, rs_hash="fix1")])
    assert cluster.ready() == ("True", "Ready")


def test_multi_crash_of_a_site_is_reported_and_an_old_crashing_pod_is_not():
    cluster, r = ready_multi()
    before = cluster.objects[("Deployment", "example-site-gh")]["spec"]["template"]
    cluster.edit_spec(image=NEW)
    reconcile(r, cluster)
    finish_all(cluster)
    reconcile(r, cluster)
    assert images(cluster) == {NEW}
    old_crash = cluster.pod("example-site-gh", output="old trouble", template=before, rs_hash="old2")
    reconcile(r, cluster, pods=[old_crash])
    assert cluster.ready() == ("False", "RollingOut"), "a pod of a template being replaced blocks nothing"
    reconcile(r, cluster, pods=[old_crash, cluster.pod("example-site-de", output=CRASH, rs_hash="new2")])
    ready = cluster.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "CrashLoop")
    assert "example-site-de" in ready["message"] and "example-site-gh" not in ready["message"]
    assert "old trouble" not in ready["message"] and "s3cr3t-pw" not in ready["message"]
    assert ("Warning", "CrashLoop") in [(t, reason) for t, reason, _ in cluster.events]
    cluster.roll_out()
    reconcile(r, cluster, pods=[old_crash])
    assert cluster.ready() == ("True", "Ready")


# --- a leader that comes back with stale memory (issue 14 item 1) -----------------------------------------------------
V3 = "registry.example.com/example/web:1.2.0"


def site_images(cluster: FakeCluster) -> dict[str, str]:
    return {n: cluster.objects[("Deployment", n)]["spec"]["template"]["spec"]["containers"][0]["image"]
            for n in cluster.named("Deployment")}


def b_rolls_to_new_then_v3_fails(cluster: FakeCluster) -> None:
    """Replica B, while A is paused: v1 -> v2 (migration succeeded, its Job pruned later), then v3's fails."""
    b = Reconciler(cluster, cluster.emit)
    cluster.edit_spec(image=NEW)
    reconcile(b, cluster)
    finish_all(cluster)
    reconcile(b, cluster)
    cluster.roll_out()
    reconcile(b, cluster)
    cluster.edit_spec(image=V3)
    reconcile(b, cluster)
    [v3] = [j for j in cluster.named("Job") if not cluster.objects[("Job", j)]["status"]]
    cluster.finish(v3, ok=False, message="migration 0042 failed")
    reconcile(b, cluster)
    assert set(site_images(cluster).values()) == {NEW}
    assert cluster.named("Job") == [v3], "v2's migration Job is pruned: only the Deployments show v2 ran"


def test_a_returning_leader_with_stale_memory_never_rolls_sites_back():
    cluster, a = ready_multi()  # A remembers the status it wrote: sites on v1
    b_rolls_to_new_then_v3_fails(cluster)
    before = site_images(cluster)
    reconcile(a, cluster)  # A is the leader again
    assert site_images(cluster) == before, "v1 code on a v2 schema"
    assert not [w for w in cluster.writes if w[0] == "apply" and w[1] == "Deployment"]
    assert cluster.project["status"]["image"] == NEW
    assert cluster.ready() == ("False", "MigrationFailed")


def test_sites_never_roll_back_to_an_older_image_named_by_a_stale_status():
    """Even the cluster's own status may lag the Deployments (a status write lost with its leader): what the
    Deployments run wins over any image but spec.image."""
    cluster, _ = ready_multi()
    b_rolls_to_new_then_v3_fails(cluster)
    cluster.project["status"]["image"] = OLD
    cluster.bump()
    before = site_images(cluster)
    reconcile(Reconciler(cluster, cluster.emit), cluster)
    assert site_images(cluster) == before
    assert not [w for w in cluster.writes if w[0] == "apply" and w[1] == "Deployment"]


def test_the_memory_of_our_own_write_serves_only_until_the_cache_catches_up_and_can_be_dropped():
    cluster, r = ready_multi()
    cluster.edit_spec(image=NEW)
    stale = copy.deepcopy(cluster.project)  # the cache's copy, from before our status write
    asyncio.run(r.reconcile(copy.deepcopy(stale), cluster.children()))
    events = len(cluster.events)
    cluster.writes.clear()
    asyncio.run(r.reconcile(copy.deepcopy(stale), cluster.children()))  # the cache has not caught up yet
    assert [w for w in cluster.writes if w[0] == "status"] == [] and len(cluster.events) == events, \
        "our own write is remembered: no second write, no repeated Event"
    r.forget_all()
    assert not r._written and not r.failures._known


def test_a_cache_delivering_our_earlier_write_after_a_later_one_repeats_no_event():
    """Two writes in a row while the cache lags: the cache then shows the first of them. That is our own write, not
    someone else's: the memory of the latest one holds, so no condition change is announced twice."""
    cluster, r = setup("example-multi-project")
    first = copy.deepcopy(cluster.project)  # rv 1
    asyncio.run(r.reconcile(copy.deepcopy(first), cluster.children()))  # writes status: rv 2
    after_first = copy.deepcopy(cluster.project)
    cluster.finish(cluster.named("Job")[0], ok=False, message="boom")
    asyncio.run(r.reconcile(copy.deepcopy(first), cluster.children()))  # the cache still at rv 1: writes rv 3
    assert cluster.project["metadata"]["resourceVersion"] == "3"
    events = len(cluster.events)
    cluster.writes.clear()
    asyncio.run(r.reconcile(copy.deepcopy(after_first), cluster.children()))  # the cache delivers rv 2
    assert len(cluster.events) == events, cluster.events[events:]
    assert [w for w in cluster.writes if w[0] == "status"] == []


def test_an_image_roll_waits_for_caches_that_lag_the_cluster():
    """The decision to roll is checked against the live project and Deployments: a lagging cache rolls nothing."""
    cluster, r = ready_multi()
    cluster.edit_spec(image=NEW)
    reconcile(r, cluster)
    [new_job] = [j for j in cluster.named("Job") if not cluster.objects[("Job", j)]["status"]]
    cluster.finish(new_job)
    lagging = copy.deepcopy(cluster.project)
    cluster.edit_spec(replicas=3)  # someone else wrote the project since the cache's copy
    cluster.writes.clear()
    out = asyncio.run(r.reconcile(lagging, cluster.children()))
    assert images(cluster) == {OLD} and cluster.writes == [] and out.retry_after == 1
    stale_children = cluster.children()
    cluster.objects[("Deployment", "example-site-de")]["metadata"]["annotations"]["multisite.dev/image"] = V3
    out = asyncio.run(r.reconcile(copy.deepcopy(cluster.project), stale_children))  # the Deployments' cache lags
    assert images(cluster) == {OLD} and cluster.writes == [] and out.retry_after == 1
    del cluster.objects[("Deployment", "example-site-de")]["metadata"]["annotations"]["multisite.dev/image"]
    cluster.objects[("Deployment", "example-site-de")]["metadata"]["annotations"]["multisite.dev/image"] = OLD
    reconcile(r, cluster)  # caches current: the roll goes ahead
    assert images(cluster) == {NEW}


def test_the_cache_delivering_a_write_whose_answer_is_still_on_its_way_repeats_no_event():
    """The watch can deliver our status write before the PATCH's own answer (with its resourceVersion) is read: a
    version the memo does not know yet, while a write is in flight, is ours; the conditions already announced
    against the newer status are not announced again (CI saw Ready posted twice)."""
    cluster, _ = setup()
    answered = asyncio.Event()
    write = cluster.patch_status

    async def answer_late(namespace: str, name: str, status: dict) -> str:
        version = await write(namespace, name, status)  # stored, and the watch may show it from now on
        await answered.wait()
        return version

    cluster.patch_status = answer_late  # type: ignore[method-assign]
    r = Reconciler(cluster, cluster.emit)

    async def scenario() -> None:
        first = copy.deepcopy(cluster.project)  # rv 1
        await r.reconcile(copy.deepcopy(first), cluster.children())  # Migrating, written as rv 2, answer pending
        await asyncio.sleep(0)
        [job] = cluster.named("Job")
        cluster.finish(job)
        await r.reconcile(copy.deepcopy(first), cluster.children())  # Migrated: waits behind the first write
        events = list(cluster.events)
        delivered = copy.deepcopy(cluster.project)  # rv 2, our first write, before its answer is read
        assert delivered["metadata"]["resourceVersion"] == "2"
        await r.reconcile(delivered, cluster.children())
        assert cluster.events == events, cluster.events[len(events):]
        answered.set()
        await r.flush()

    asyncio.run(scenario())
    assert cluster.condition("Migrated")["status"] == "True"
