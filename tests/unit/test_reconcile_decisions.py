"""The reconcile's decisions on a fake API: what is applied, kept, deleted, and what the conditions say.

These are the decisions the e2e suite proves on a real control plane; here each is pinned in milliseconds, so a
broken decision fails a unit test with the step that broke it. The fake plays the controllers (roll_out, finish).
"""

from __future__ import annotations

import pytest

from fake_cluster import FakeCluster, example, reconcile
from multisite_operator.reconcile import Reconciler

OLD, NEW = "registry.example.com/example/web:1.0.0", "registry.example.com/example/web:1.1.0"


def setup(name: str = "example-shared") -> tuple[FakeCluster, Reconciler]:
    cluster = FakeCluster(example(name))
    return cluster, Reconciler(cluster, cluster.emit)


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


def test_a_job_applied_again_by_a_lagging_cache_is_reported_once():
    """The next reconcile may run before the informer has seen the Job just created: it applies the same Job
    again (a no-op for the API server), and must not say PopulateStarted twice."""
    import asyncio

    cluster, r = setup()
    reconcile(r, cluster)
    lagging = [c for c in cluster.children() if c["kind"] != "Job"]
    asyncio.run(r.reconcile(cluster.project, lagging))
    assert [reason for _, reason, _ in cluster.events].count("PopulateStarted") == 1


def test_shared_new_project_applies_every_child_once_and_reports_rolling_out():
    cluster, r = setup()
    out = reconcile(r, cluster)
    assert kinds(cluster.writes) == ["Deployment", "Ingress", "Job", "Service"]
    # Services before workloads, workloads before the Ingress that routes to them.
    applied = [k for v, k, _ in cluster.writes if v == "apply"]
    assert applied.index("Service") < applied.index("Deployment") < applied.index("Ingress")
    assert out.writes == 5 and out.status_written
    assert cluster.ready() == ("False", "RollingOut")
    assert cluster.condition("Populated")["status"] == "Unknown"
    assert cluster.condition("Progressing")["status"] == "True"
    assert ("Normal", "PopulateStarted") in [(t, r) for t, r, _ in cluster.events]


def test_shared_is_ready_only_when_rolled_out_and_populated_then_idle_writes_nothing():
    cluster, r = setup()
    reconcile(r, cluster)
    cluster.roll_out()
    reconcile(r, cluster)
    assert cluster.ready() == ("False", "Populating")
    [job] = cluster.named("Job")
    cluster.finish(job)
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")
    assert cluster.condition("Populated")["reason"] == "Succeeded"
    assert cluster.condition("Degraded")["status"] == "False"
    assert [s["slug"] for s in cluster.project["status"]["knownSites"]] == ["de", "gh", "us"]
    out = reconcile(r, cluster)
    assert out.writes == 0 and cluster.writes == []


def test_shared_hand_edit_is_put_back_alone():
    cluster, r = setup()
    reconcile(r, cluster)
    cluster.objects[("Deployment", "example-web")]["spec"]["replicas"] = 7
    reconcile(r, cluster)
    assert cluster.writes == [("apply", "Deployment", "example-web")]
    assert cluster.objects[("Deployment", "example-web")]["spec"]["replicas"] == 2


def test_shared_populate_failure_is_reported_without_secret_values():
    cluster, r = setup()
    reconcile(r, cluster)
    cluster.roll_out()
    [job] = cluster.named("Job")
    cluster.finish(job, ok=False, message="could not connect to postgres://example:s3cr3t-pw@db:5432/example")
    reconcile(r, cluster)
    assert cluster.ready() == ("False", "PopulateFailed")
    populated = cluster.condition("Populated")
    assert populated["status"] == "False" and "could not connect" in populated["message"]
    assert "s3cr3t-pw" not in str(cluster.project["status"]) + str(cluster.events)
    assert cluster.condition("Degraded")["status"] == "True"
    assert ("Warning", "PopulateFailed") in [(t, r) for t, r, _ in cluster.events]


def test_shared_removed_site_is_orphaned_never_forgotten():
    cluster, r = setup()
    reconcile(r, cluster)
    cluster.roll_out()
    cluster.finish(cluster.named("Job")[0])
    reconcile(r, cluster)
    cluster.edit_spec(sites=cluster.project["spec"]["sites"][:2])
    reconcile(r, cluster)
    assert cluster.project["status"]["orphanedSites"] == [{"slug": "us", "id": 3}]
    assert ("Normal", "SiteOrphaned") in [(t, r) for t, r, _ in cluster.events]
    assert len(cluster.named("Job")) == 1, "the finished populate Job of the old content is pruned"


def test_image_pull_failure_replaces_rolling_out_but_never_a_ready_project():
    cluster, r = setup()
    reconcile(r, cluster)
    reconcile(r, cluster, image_problems=["image x cannot be pulled by 2 pod(s): not found"])
    assert cluster.ready() == ("False", "ImagePullFailed")
    assert cluster.condition("Degraded")["reason"] == "ImagePullFailed"
    cluster.roll_out()
    cluster.finish(cluster.named("Job")[0])
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
    reconcile(r, cluster)
    cluster.secrets.pop(("example-db", "DATABASE_URL"))
    reconcile(r, cluster)
    assert cluster.ready() == ("False", "SecretMissing")
    assert cluster.condition("Populated")["status"] == "Unknown", "kept from before"
    cluster.secrets[("example-db", "DATABASE_URL")] = "postgres://x:y@db/x"
    cluster.roll_out()
    cluster.finish(cluster.named("Job")[0])
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")


# --- multi-project: migrate, then roll ------------------------------------------------------------------------------
def test_multi_new_project_migrates_before_any_site_exists():
    cluster, r = setup("example-multi-project")
    reconcile(r, cluster)
    assert kinds(cluster.writes) == ["Ingress", "Job", "Service", "Service", "Service"]
    assert cluster.named("Deployment") == [], "no site runs on a database without its schema"
    assert cluster.named("Job", "example-migrate-")
    assert cluster.condition("Migrated")["reason"] == "Migrating"
    assert cluster.ready() == ("False", "RollingOut")
    cluster.finish(cluster.named("Job")[0])
    reconcile(r, cluster)
    assert cluster.named("Deployment") == ["example-site-de", "example-site-gh", "example-site-us"]
    assert cluster.condition("Migrated")["status"] == "True"
    cluster.roll_out()
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")
    assert cluster.condition("VersionSkew")["reason"] == "AllSitesOnImage"
    assert {s["image"] for s in cluster.project["status"]["sites"]} == {OLD}
    assert reconcile(r, cluster).writes == 0


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
    cluster, r = setup()
    reconcile(r, cluster)
    cluster.roll_out()
    cluster.finish(cluster.named("Job")[0])
    reconcile(r, cluster)
    ingress_before = cluster.objects[("Ingress", "example")]["spec"]
    cluster.edit_spec(mode="multi-project")
    reconcile(r, cluster)
    assert ("Deployment", "example-web") in cluster.objects
    assert cluster.objects[("Ingress", "example")]["spec"] == ingress_before, "routes stay on the old mode"
    assert cluster.ready() == ("False", "SwitchingMode")
    assert not cluster.named("Job", "example-migrate-"), "a switch runs no migration"
    cluster.roll_out(*cluster.named("Deployment", "example-site-"))
    reconcile(r, cluster)
    assert ("Deployment", "example-web") not in cluster.objects and ("Service", "example-web") not in cluster.objects
    backends = {p["backend"]["service"]["name"] for rule in cluster.objects[("Ingress", "example")]["spec"]["rules"]
                for p in rule["http"]["paths"]}
    assert backends == {"example-site-de", "example-site-gh", "example-site-us"}
    assert cluster.ready() == ("True", "Ready")


def test_switch_lets_a_running_populate_job_finish():
    cluster, r = setup()
    reconcile(r, cluster)
    [job] = cluster.named("Job")
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
    reconcile(r, cluster)
    cluster.roll_out()
    [job] = cluster.named("Job")
    cluster.finish(job, ok=False, message="boom")
    reconcile(r, cluster)
    cluster.job_logs[job] = "changed later"
    reconcile(r, cluster)
    assert "boom" in cluster.condition("Populated")["message"], "read once: status does not flap"
    assert r.failures._known
    cluster.edit_spec(image=NEW)
    reconcile(r, cluster)
    assert all(memo[2] != job for memo in r.failures._known), "the pruned Job's message is forgotten"


# --- start-up crashes (issue 13 item 5) -------------------------------------------------------------------------------
CRASH = ("django.core.exceptions.ImproperlyConfigured: could not connect to "
         "postgres://example:s3cr3t-pw@db:5432/example")
FIXED = "registry.example.com/example/web:1.1.1"


def ready_shared() -> tuple[FakeCluster, Reconciler]:
    cluster, r = setup()
    reconcile(r, cluster)
    cluster.roll_out()
    cluster.finish(cluster.named("Job")[0])
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")
    return cluster, r


def finish_all(cluster: FakeCluster) -> None:
    for job in cluster.named("Job"):
        if not cluster.objects[("Job", job)].get("status"):
            cluster.finish(job)


def test_shared_web_process_crashing_at_start_is_reported_with_its_redacted_output_and_recovers():
    cluster, r = ready_shared()
    [web] = cluster.named("Deployment")
    old_template = cluster.objects[("Deployment", web)]["spec"]["template"]
    cluster.edit_spec(image=NEW)
    reconcile(r, cluster)
    finish_all(cluster)
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
