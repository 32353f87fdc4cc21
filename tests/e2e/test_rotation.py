"""Issue 14 item 10 and issue 16 on the real control plane: a rotated DATABASE_URL rolls the pods and re-populates
(shared) or re-migrates (multi-project) within --secret-recheck-seconds; an unchanged project's reconciles GET no
Secret.

Each test failed on the code before (the pod template and the Jobs never changed; every reconcile read the two
Secrets)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from kubernetes import client

from harness.cluster import owned_children
from harness.operator_process import assert_no_traceback, metric, running_operator, wait_quiet
from harness.project import (
    apply_example_secrets,
    condition,
    create_project,
    custom,
    deployment,
    example_docs,
    get_project,
    jobs,
    wait_condition,
)
from harness.project import GROUP, PLURAL, VERSION
from helpers import wait_for

RECHECK = 3  # --secret-recheck-seconds in these tests
NEW_DATABASE_URL = "postgres://example:Rotated-7c1d-Password@db-two:5432/example"
DIGEST = "multisite.dev/secrets-digest"


def rotate_database_url(api_client: client.ApiClient, namespace: str) -> None:
    client.CoreV1Api(api_client).patch_namespaced_secret(
        "example-db", namespace, {"stringData": {"DATABASE_URL": NEW_DATABASE_URL}})


def template_annotations(api_client: client.ApiClient, namespace: str, name: str) -> dict[str, str]:
    return deployment(api_client, namespace, name).spec.template.metadata.annotations or {}


def job_names(api_client: client.ApiClient, namespace: str, component: str) -> set[str]:
    return {j.metadata.name for j in jobs(api_client, namespace, component)}


def no_value_anywhere(api_client: client.ApiClient, namespace: str, project: str) -> None:
    text = json.dumps([c.to_dict() if hasattr(c, "to_dict") else c
                       for c in owned_children(api_client, namespace, project).values()], default=str)
    text += json.dumps(get_project(api_client, namespace, project))
    assert "Rotated-7c1d-Password" not in text and "s3cr3t" not in text.lower()


def test_shared_rotated_database_url_rolls_the_pods_and_populates_the_new_database(
        cluster, crd, api_client, namespace, tmp_path: Path):
    apply_example_secrets(api_client, namespace)
    with running_operator(cluster.kubeconfig, [namespace], tmp_path / "operator.log",
                          ["--secret-recheck-seconds", str(RECHECK)]) as op:
        create_project(api_client, namespace, next(d for d in example_docs() if d["kind"] == "MultiSiteProject"))
        wait_condition(api_client, namespace, "example", "Ready", "True", timeout=120)
        before = template_annotations(api_client, namespace, "example-web")
        [first_job] = job_names(api_client, namespace, "populate")
        assert DIGEST in before

        rotated_at = time.monotonic()
        rotate_database_url(api_client, namespace)
        # Noticed at the next timed look (RECHECK s), not at the next edit: no change to the project is made.
        wait_for(lambda: template_annotations(api_client, namespace, "example-web").get(DIGEST) != before[DIGEST],
                 timeout=RECHECK + 60, interval=0.2, message="web pod template rolled for the rotated Secret")
        noticed = time.monotonic() - rotated_at
        new_jobs = wait_for(lambda: job_names(api_client, namespace, "populate") - {first_job}, timeout=30,
                            message="a populate Job for the new database")
        [new_job] = new_jobs
        # The generation does not move on a rotation, so Ready=True of before counts only once it names the new Job.
        wait_for(lambda: condition(p := get_project(api_client, namespace, "example"), "Populated")["message"]
                 .startswith(f"Job {new_job} wrote") and condition(p, "Ready")["status"] == "True", timeout=120,
                 message="Ready again, populated by the new Job")
        dep = deployment(api_client, namespace, "example-web")
        assert dep.status.updated_replicas == dep.spec.replicas, "the pods run the new template"
        no_value_anywhere(api_client, namespace, "example")
        assert_no_traceback(op.log())
        print(f"rotation noticed after {noticed:.1f} s (recheck every {RECHECK} s)")


def test_multi_project_rotated_database_url_migrates_the_new_database(
        cluster, crd, api_client, namespace, tmp_path: Path):
    apply_example_secrets(api_client, namespace)
    with running_operator(cluster.kubeconfig, [namespace], tmp_path / "operator.log",
                          ["--secret-recheck-seconds", str(RECHECK)]) as op:
        project = next(d for d in example_docs() if d["kind"] == "MultiSiteProject")
        project["spec"]["mode"] = "multi-project"
        create_project(api_client, namespace, project)
        wait_condition(api_client, namespace, "example", "Ready", "True", timeout=180)
        [first] = job_names(api_client, namespace, "migrate")
        rotate_database_url(api_client, namespace)
        [second] = wait_for(lambda: job_names(api_client, namespace, "migrate") - {first}, timeout=RECHECK + 60,
                            interval=0.2, message="a migration Job for the new database")
        wait_for(lambda: (job_complete(api_client, namespace, second)
                          and condition(p := get_project(api_client, namespace, "example"), "Ready")["status"] == "True"
                          and condition(p, "Migrated")["status"] == "True"), timeout=180,
                 message="Ready again once the new database is migrated")
        for slug in ("de", "gh", "us"):
            annotations = template_annotations(api_client, namespace, f"example-site-{slug}")
            assert annotations["multisite.dev/database-digest"] == jobs_digest(api_client, namespace, second)
        no_value_anywhere(api_client, namespace, "example")
        assert_no_traceback(op.log())


def job_complete(api_client: client.ApiClient, namespace: str, name: str) -> bool:
    job = client.BatchV1Api(api_client).read_namespaced_job(name, namespace)
    return any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or [])


def jobs_digest(api_client: client.ApiClient, namespace: str, name: str) -> str:
    job = client.BatchV1Api(api_client).read_namespaced_job(name, namespace)
    return job.spec.template.metadata.annotations["multisite.dev/database-digest"]


def test_reconciles_of_an_unchanged_ready_project_get_no_secret(cluster, crd, api_client, namespace, tmp_path: Path):
    """Issue 16: 2 Secret GETs per reconcile -> 0, counted by the operator's own multisite_secret_reads_total. The
    recheck interval is an hour so that no timed look falls into the counted window, however slow the machine."""
    apply_example_secrets(api_client, namespace)
    with running_operator(cluster.kubeconfig, [namespace], tmp_path / "operator.log",
                          ["--secret-recheck-seconds", "3600"]) as operator:
        create_project(api_client, namespace, next(d for d in example_docs() if d["kind"] == "MultiSiteProject"))
        wait_condition(api_client, namespace, "example", "Ready", "True", timeout=120)
        wait_quiet(operator)
        reads = metric(operator, "multisite_secret_reads_total")
        assert reads >= 2
        for n in range(3):  # a metadata change is a watch event, so a reconcile, of the same generation
            reconciles = metric(operator, "multisite_reconciles_total")
            custom(api_client).patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "example",
                                                              {"metadata": {"annotations": {"touched": str(n)}}})
            wait_for(lambda: metric(operator, "multisite_reconciles_total") > reconciles, timeout=60,
                     message=f"the reconcile after change {n}")
        wait_quiet(operator)
        assert metric(operator, "multisite_secret_reads_total") == reads
        assert_no_traceback(operator.log())
