"""Issue 14 items 5 and 9 on the fake API: every Secret the pods can see is redacted; a Job's name covers all it runs.

Why here: the decisions (what to redact, when a new Job starts) live in the reconcile and render/jobs.py; the e2e
tests in tests/e2e/test_safety_round_two.py prove the same on a real control plane.
"""

from __future__ import annotations

from fake_cluster import FakeCluster, example, reconcile
from multisite_operator.reconcile import Reconciler

API_KEY = "k3y-from-secretKeyRef-777"
FROM_ENV = "value-from-envFrom-888"


def setup(name: str = "example-shared") -> tuple[FakeCluster, Reconciler]:
    cluster = FakeCluster(example(name))
    cluster.secrets[("payment", "API_KEY")] = API_KEY
    cluster.secrets[("extra", "TOKEN")] = FROM_ENV
    return cluster, Reconciler(cluster, cluster.emit)


def failed_populate(cluster: FakeCluster, r: Reconciler, output: str) -> str:
    cluster.migrate(r)
    [job] = cluster.named("Job", "example-populate-")
    cluster.finish(job, ok=False, message=output)
    reconcile(r, cluster)
    return job


def test_values_of_env_secret_key_refs_and_env_from_secrets_never_reach_status_or_events():
    cluster, r = setup()
    cluster.project["spec"]["env"] = [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "payment",
                                                                                         "key": "API_KEY"}}}]
    cluster.project["spec"]["envFrom"] = [{"secretRef": {"name": "extra"}}]
    failed_populate(cluster, r, f"KeyError: api key {API_KEY} rejected; token {FROM_ENV}")
    assert cluster.ready() == ("False", "PopulateFailed")
    message = cluster.condition("Populated")["message"]
    assert "api key [redacted] rejected; token [redacted]" in message
    assert API_KEY not in str(cluster.project["status"]) + str(cluster.events)
    assert FROM_ENV not in str(cluster.project["status"]) + str(cluster.events)


def test_without_the_reference_the_value_is_not_a_secret_of_this_project():
    """The redaction is driven by the spec's references (not a blanket list): the test can fail."""
    cluster, r = setup()
    failed_populate(cluster, r, f"token {FROM_ENV}")
    assert FROM_ENV in cluster.condition("Populated")["message"]


def test_fixing_spec_env_after_a_failed_populate_starts_a_new_job():
    cluster, r = setup()
    old = failed_populate(cluster, r, "DJANGO_SETTINGS_MODULE not set")
    cluster.edit_spec(env=[{"name": "DJANGO_SETTINGS_MODULE", "value": "settings"}])
    seen = len(cluster.events)
    reconcile(r, cluster)
    [new] = [j for j in cluster.named("Job", "example-populate-") if j != old]
    assert ("apply", "Job", new) in cluster.writes
    assert ("Normal", "PopulateStarted") in [(t, reason) for t, reason, _ in cluster.events[seen:]]
    assert not [w for w in cluster.writes if w[:2] == ("apply", "Job") and "-migrate-" in w[2]], \
        "the image is migrated already: no new migration for an env change"
    cluster.finish(new)
    reconcile(r, cluster)
    cluster.roll_out()
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")
    assert cluster.named("Job") == [new], "the failed Job of the old content is pruned"


def test_any_change_to_what_the_job_pod_runs_with_renames_it():
    cluster, r = setup()
    cluster.migrate(r)
    [first] = cluster.named("Job", "example-populate-")
    for change in ({"envFrom": [{"secretRef": {"name": "extra"}}]}, {"resources": {"limits": {"memory": "1Gi"}}},
                   {"serviceAccountName": "populator"}):
        cluster.edit_spec(**change)
        reconcile(r, cluster)
        assert first not in cluster.named("Job") or len(cluster.named("Job")) == 2, change
        jobs = [w for w in cluster.writes if w[:2] == ("apply", "Job")]
        assert len(jobs) == 1 and jobs[0][2] != first, change
        first = jobs[0][2]


def test_a_populate_job_deleted_by_hand_runs_again_for_the_same_content():
    """Decision (README): populate is idempotent, so a Job deleted by hand is created again; that is how a user
    re-runs it. With the Job in place, nothing is applied again."""
    cluster, r = setup()
    cluster.migrate(r)
    [job] = cluster.named("Job", "example-populate-")
    cluster.finish(job)
    reconcile(r, cluster)
    cluster.roll_out()
    reconcile(r, cluster)
    assert reconcile(r, cluster).writes == 0
    del cluster.objects[("Job", job)]
    reconcile(r, cluster)
    assert ("apply", "Job", job) in cluster.writes


def test_multi_fixing_env_after_a_failed_migration_migrates_again_and_a_migrated_image_never_reruns():
    cluster = FakeCluster(example("example-multi-project"))
    r = Reconciler(cluster, cluster.emit)
    reconcile(r, cluster)
    [first] = cluster.named("Job")
    cluster.finish(first, ok=False, message="no DJANGO_SETTINGS_MODULE")
    reconcile(r, cluster)
    assert cluster.condition("Migrated")["status"] == "False"
    cluster.edit_spec(env=[{"name": "DJANGO_SETTINGS_MODULE", "value": "settings"}])
    reconcile(r, cluster)
    [second] = [j for j in cluster.named("Job") if j != first]
    cluster.finish(second)
    reconcile(r, cluster)
    cluster.roll_out()
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")
    # The image is migrated: another env change rolls the sites but runs no migration.
    cluster.edit_spec(env=[{"name": "DJANGO_SETTINGS_MODULE", "value": "settings"}, {"name": "X", "value": "1"}])
    reconcile(r, cluster)
    assert not [w for w in cluster.writes if w[:2] == ("apply", "Job")]
    assert cluster.condition("Migrated")["status"] == "True"
