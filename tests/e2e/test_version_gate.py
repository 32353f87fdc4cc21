"""The version gate on the real control plane: the shared mode migrates before it populates and serves (issue 13
item 6), and a leader that comes back with a stale memory never rolls sites back (issue 14 item 1).

Ordering claims are checked on the API server's own event order (resourceVersions of one etcd increase), as in
test_multi_project.py, whose watch recorder this file reuses.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from kubernetes import client

from helpers import wait_for

from harness.operator_process import OperatorProcess
from harness.project import (
    FAIL_LABEL,
    GROUP,
    PLURAL,
    VERSION,
    apply_example_secrets,
    create_project,
    deployment,
    events_for,
    example_project,
    jobs,
    patch_spec,
    wait_condition,
)

from .test_multi_project import (
    NEW,
    OLD,
    TIMEOUT,
    available,
    cond_of,
    counter,
    create_recording_until_ready,
    images,
    is_migration,
    job_done,
    job_image,
    multi_project,
    settled_writes,
    site_deployments,
)

V3 = "registry.example.com/example/web:1.2.0"


def is_populate(obj: dict) -> bool:
    return (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "populate"


def web_image(api: client.ApiClient, namespace: str) -> str:
    return deployment(api, namespace, "example-web").spec.template.spec.containers[0].image


def failing_migration(message: str) -> dict:
    return {"backoffLimit": 0, "podLabels": {FAIL_LABEL: "true"}, "podAnnotations": {f"{FAIL_LABEL}/message": message}}


def test_a_fresh_shared_project_migrates_then_populates_then_creates_its_web_deployment(api_client, namespace,
                                                                                          operator):
    apply_example_secrets(api_client, namespace)
    project, deps_rec, jobs_rec = create_recording_until_ready(api_client, namespace, example_project())

    migrated_at = jobs_rec.first(lambda t, o: is_migration(o) and job_done(o))
    populate_created = jobs_rec.first(lambda t, o: t == "ADDED" and is_populate(o))
    populated_at = jobs_rec.first(lambda t, o: is_populate(o) and job_done(o))
    web_created = deps_rec.first(lambda t, o: t == "ADDED")
    assert None not in (migrated_at, populate_created, populated_at, web_created)
    assert migrated_at < populate_created < populated_at < web_created, (migrated_at, populate_created,
                                                                         populated_at, web_created)
    [job] = jobs(api_client, namespace, "migrate")
    assert job.spec.template.spec.containers[0].command == ["python", "manage.py", "migrate", "--noinput"]
    assert job_image(api_client.sanitize_for_serialization(job)) == OLD
    env = {e.name for e in job.spec.template.spec.containers[0].env}
    assert {"DATABASE_URL", "DJANGO_MULTISITE_PLUS_SITES"} <= env, "the migration runs with the web pods' env"
    assert cond_of(project, "Migrated")["status"] == "True" and cond_of(project, "Populated")["status"] == "True"
    assert project["status"]["image"] == OLD and web_image(api_client, namespace) == OLD


def test_a_failing_shared_migration_keeps_the_old_pods_serving_and_a_fixed_image_rolls(api_client, namespace,
                                                                                         operator):
    apply_example_secrets(api_client, namespace)
    create_project(api_client, namespace, example_project())
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=TIMEOUT)
    generation = deployment(api_client, namespace, "example-web").metadata.generation
    populates = sorted(j.metadata.name for j in jobs(api_client, namespace, "populate"))
    message = 'django.db.utils.ProgrammingError: relation "shop_product" already exists'

    patch_spec(api_client, namespace, "example", {"image": NEW, "migrate": failing_migration(message)})
    failed = wait_condition(api_client, namespace, "example", "Migrated", "False", timeout=TIMEOUT, reason="Failed")
    assert message in cond_of(failed, "Migrated")["message"]
    ready = cond_of(failed, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "MigrationFailed") and OLD in ready["message"]
    assert cond_of(failed, "Degraded")["status"] == "True"
    wait_for(lambda: [e for e in events_for(api_client, namespace, "example")
                      if e.type == "Warning" and message in (e.message or "")],
             timeout=30, message="a Warning Event with the migration's output")
    writes = settled_writes(operator)
    dep = deployment(api_client, namespace, "example-web")
    assert dep.metadata.generation == generation and web_image(api_client, namespace) == OLD, "old pods stay"
    assert available(dep)
    assert sorted(j.metadata.name for j in jobs(api_client, namespace, "populate")) == populates, \
        "nothing populates with an image whose schema does not exist"
    assert counter(operator, "multisite_api_writes_total") == writes

    fixed = "registry.example.com/example/web:1.1.1"
    patch_spec(api_client, namespace, "example", {"image": fixed, "migrate": None})
    done = wait_condition(api_client, namespace, "example", "Ready", "True", timeout=TIMEOUT)
    assert web_image(api_client, namespace) == fixed and done["status"]["image"] == fixed
    assert [job_image(api_client.sanitize_for_serialization(j)) for j in jobs(api_client, namespace, "populate")] \
        == [fixed]


def test_a_leader_that_comes_back_with_a_stale_memory_never_rolls_sites_back(cluster, api_client, crd, namespace,
                                                                              tmp_path: Path):
    """Issue 14 item 1 as reproduced: A pauses (SIGSTOP) remembering v1; B rolls v1 -> v2, then v3's migration
    fails (v2's Job is pruned); B stops, A resumes and reconciles: every site stays on v2."""
    a = OperatorProcess(cluster.kubeconfig, [namespace], tmp_path / "a.log").start()
    try:
        apply_example_secrets(api_client, namespace)
        create_project(api_client, namespace, multi_project())
        wait_condition(api_client, namespace, "example", "Ready", "True", timeout=TIMEOUT)
        settled_writes(a)
        os.kill(a.proc.pid, signal.SIGSTOP)
        try:
            b = OperatorProcess(cluster.kubeconfig, [namespace], tmp_path / "b.log").start()
            try:
                patch_spec(api_client, namespace, "example", {"image": NEW})
                wait_condition(api_client, namespace, "example", "Ready", "True", timeout=TIMEOUT)
                patch_spec(api_client, namespace, "example", {"image": V3, "migrate": failing_migration("0042 failed")})
                wait_condition(api_client, namespace, "example", "Migrated", "False", timeout=TIMEOUT,
                               reason="Failed")
                wait_for(lambda: [j for j in jobs(api_client, namespace, "migrate")
                                  if j.spec.template.spec.containers[0].image == NEW] == [], timeout=30,
                         message="v2's migration Job pruned")
                settled_writes(b)
            finally:
                b.stop()
        finally:
            os.kill(a.proc.pid, signal.SIGCONT)
        assert set(images(api_client, namespace).values()) == {NEW}
        generations = {n: d.metadata.generation for n, d in site_deployments(api_client, namespace).items()}

        # A is the only operator again: an event makes it reconcile the project with what it remembers.
        reconciles = counter(a, "multisite_reconciles_total")
        client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "example", {"metadata": {"annotations": {"example.com/touch": "1"}}})
        wait_for(lambda: counter(a, "multisite_reconciles_total") > reconciles, timeout=60,
                 message="operator A reconciles after it resumed")
        settled_writes(a)
        assert set(images(api_client, namespace).values()) == {NEW}, "v1 code on a v2 schema"
        assert {n: d.metadata.generation for n, d in site_deployments(api_client, namespace).items()} == generations
        project = wait_condition(api_client, namespace, "example", "Ready", "False", timeout=60,
                                 reason="MigrationFailed")
        assert project["status"]["image"] == NEW
        assert set(images(api_client, namespace).values()) == {NEW}
    except AssertionError as exc:
        raise AssertionError(f"{exc}\noperator A's log:\n{a.log()[-4000:]}") from None
    finally:
        a.stop()
