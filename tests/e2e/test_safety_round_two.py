"""Issue 14 items 3, 5 and 9 on the real control plane: no adopted objects, no leaked value of any Secret the pods
see, and a failed populate that the user's fix actually re-runs.

Each test failed on the code before these fixes (the project took over the Service; the envFrom and secretKeyRef
values reached status and Events; fixing the spec started no new populate Job)."""

from __future__ import annotations

import json

from kubernetes import client

from harness.cluster import owned_children
from harness.operator_process import assert_no_traceback
from harness.project import (
    FAIL_LABEL,
    apply_example_secrets,
    condition,
    create_project,
    create_with_populate_output,
    example_project,
    get_project,
    patch_spec,
    wait_condition,
)
from helpers import wait_for

API_KEY = "Sentinel-5e1b-ApiKey"
FROM_ENV = "Sentinel-5e1b-EnvFrom"


def events(core: client.CoreV1Api, namespace: str) -> list[client.CoreV1Event]:
    return core.list_namespaced_event(namespace).items


# --- item 3: never adopt -------------------------------------------------------------------------------------------
def test_a_project_never_adopts_an_object_it_did_not_create(api_client, namespace, operator):
    core = client.CoreV1Api(api_client)
    apply_example_secrets(api_client, namespace)
    # Another team's Service that happens to carry the name the project's web Service would get.
    theirs = core.create_namespaced_service(namespace, {"metadata": {"name": "example-web", "labels": {"team": "b"}},
                                                        "spec": {"ports": [{"name": "api", "port": 8080}],
                                                                 "selector": {"app": "theirs"}}})
    create_project(api_client, namespace, example_project())
    blocked = wait_condition(api_client, namespace, "example", "Ready", "False", timeout=60, reason="NotOwned")
    assert "Service example-web" in condition(blocked, "Ready")["message"]
    wait_for(lambda: any(e.reason == "NotOwned" and e.type == "Warning" for e in events(core, namespace)),
             timeout=20, message="NotOwned Warning Event")
    after = core.read_namespaced_service("example-web", namespace)
    assert after.metadata.resource_version == theirs.metadata.resource_version, "their Service was not written"
    assert not after.metadata.owner_references and after.spec.ports[0].port == 8080
    assert owned_children(api_client, namespace, "example") == {}, "nothing at all was created"

    # Once it is gone the project converges by itself (no edit of the project).
    core.delete_namespaced_service("example-web", namespace)
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=90)
    ours = core.read_namespaced_service("example-web", namespace)
    assert ours.metadata.owner_references[0].uid == get_project(api_client, namespace, "example")["metadata"]["uid"]
    assert_no_traceback(operator.log())


# --- item 5: every Secret the pods can see -------------------------------------------------------------------------
def test_values_of_every_secret_the_pods_see_are_redacted(api_client, namespace, verbose_operator):
    core = client.CoreV1Api(api_client)
    apply_example_secrets(api_client, namespace)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "payment"}, "stringData": {"API_KEY": API_KEY}})
    core.create_namespaced_secret(namespace, {"metadata": {"name": "extra"}, "stringData": {"TOKEN": FROM_ENV}})
    project = example_project(
        env=[{"name": "PAYMENT_API_KEY", "valueFrom": {"secretKeyRef": {"name": "payment", "key": "API_KEY"}}}],
        envFrom=[{"secretRef": {"name": "extra"}}])
    # The values reach the pod's output only (not the spec): as a settings module printing them would.
    create_with_populate_output(api_client, namespace, project, f"payment gateway refused key {API_KEY}; TOKEN={FROM_ENV}")
    failed = wait_condition(api_client, namespace, "example", "Populated", "False", timeout=60, reason="Failed")
    assert "payment gateway refused key [redacted]; TOKEN=[redacted]" in condition(failed, "Populated")["message"]
    wait_for(lambda: any(e.reason == "PopulateFailed" for e in events(core, namespace)), timeout=20,
             message="PopulateFailed Event")
    everything = {
        "status": json.dumps(get_project(api_client, namespace, "example")),
        "events": json.dumps([e.to_dict() for e in events(core, namespace)], default=str),
        "operator log": verbose_operator.log(),
    }
    for where, text in everything.items():
        for value in (API_KEY, FROM_ENV):
            assert value not in text, f"secret value found in {where}"
    assert_no_traceback(verbose_operator.log())


# --- item 9: the Job's name covers everything its pod runs with ----------------------------------------------------
def populate_jobs(api_client, namespace: str) -> list[str]:
    return sorted(n for k, n in owned_children(api_client, namespace, "example") if k == "Job" and "-populate-" in n)


def test_fixing_spec_env_after_a_failed_populate_starts_a_new_job(api_client, namespace, operator):
    apply_example_secrets(api_client, namespace)
    project = example_project()
    project["spec"]["populate"] = {"backoffLimit": 0, "podLabels": {FAIL_LABEL: "true"},
                                   "podAnnotations": {f"{FAIL_LABEL}/message": "DJANGO_SETTINGS_MODULE is not set"}}
    create_project(api_client, namespace, project)
    wait_condition(api_client, namespace, "example", "Ready", "False", timeout=90, reason="PopulateFailed")
    [first] = populate_jobs(api_client, namespace)

    # The user's fix is in spec.env: a new Job runs with it (it fails too here: the kwok failure label stays).
    patch_spec(api_client, namespace, "example", {"env": [{"name": "DJANGO_SETTINGS_MODULE", "value": "settings"}]})
    second = wait_for(lambda: [j for j in populate_jobs(api_client, namespace) if j != first], timeout=60,
                      message="a new populate Job for the new env")[0]
    batch = client.BatchV1Api(api_client)
    env = batch.read_namespaced_job(second, namespace).spec.template.spec.containers[0].env
    assert {"DJANGO_SETTINGS_MODULE": "settings"}.items() <= {e.name: e.value for e in env}.items()

    # Anything else the pod runs with counts too: dropping the failing pod label runs a Job that succeeds.
    patch_spec(api_client, namespace, "example", {"populate": {"backoffLimit": 0, "podLabels": None,
                                                               "podAnnotations": None}})
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=90)
    assert condition(get_project(api_client, namespace, "example"), "Populated")["reason"] == "Succeeded"
    assert_no_traceback(operator.log())
