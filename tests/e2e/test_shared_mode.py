"""The shared mode end to end on the real control plane: what a user sees with kubectl after each edit."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from kubernetes import client

from helpers import wait_for
from multisite_operator.populate import ALIASES_ENV, DEFAULT_POPULATE_COMMAND

from harness.operator_process import metric, wait_quiet
from harness.project import (
    apply_example_secrets,
    create_project,
    delete_project,
    deployment,
    env_of,
    events_for,
    example_project,
    failing_populate_project,
    get_project,
    ingress_hosts,
    jobs,
    patch_spec,
    wait_condition,
    wait_gone,
)

TEST_HOSTS = ["de.example-stage.eu.aldryn.io", "gh.example-stage.eu.aldryn.io", "us.example-stage.eu.aldryn.io"]


@pytest.fixture
def example(api_client: client.ApiClient, namespace: str, operator) -> dict:
    """The hosting document's example, applied in the test environment and waited on until Ready."""
    apply_example_secrets(api_client, namespace)
    create_project(api_client, namespace, example_project())
    return wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)


def runtime_parse(env: dict[str, str]) -> dict:
    """Parse our env the way Divio's runtime does: aldryn-addons' settings loader is django-getenv's env()."""
    from aldryn_addons.utils import boolean_ish
    from getenv import env as getenv

    saved = dict(os.environ)
    try:
        os.environ.update({k: v for k, v in env.items() if isinstance(v, str)})
        return {
            "sites": getenv("DJANGO_MULTISITE_PLUS_SITES", {}),
            "rewrite": boolean_ish(getenv("DJANGO_MULTISITE_PLUS_REWRITE_DOMAINS", True)),
            "use_real": boolean_ish(getenv("DJANGO_MULTISITE_PLUS_USE_REAL_DOMAIN", False)),
            "auto_populate": boolean_ish(getenv("DJANGO_MULTISITE_PLUS_AUTO_POPULATE_SITES", True)),
            "format": getenv("DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT", "{}.divio.me"),
            "allowed_hosts": getenv("ALLOWED_HOSTS", ["localhost", "*"]),
            "site_id": getenv("SITE_ID", 1),
            "mode": getenv("DJANGO_MULTISITE_PLUS_MODE"),
        }
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_example_in_test_environment_is_ready_populated_and_routed(api_client, namespace, example):
    assert example["status"]["siteCount"] == 3
    assert [c["status"] for c in example["status"]["conditions"] if c["type"] == "Populated"] == ["True"]
    assert sorted(ingress_hosts(api_client, namespace, "example")) == TEST_HOSTS

    env = env_of(deployment(api_client, namespace, "example-web"))
    parsed = runtime_parse(env)
    assert parsed["sites"] == {
        "de": {"id": 1, "real_domain": "example.de", "name": "Germany"},
        "gh": {"id": 2, "real_domain": "example.gh", "name": "Ghana"},
        "us": {"id": 3, "real_domain": "example.us", "name": "USA"},
    }
    # django-multisite-plus computes each test domain as FORMAT.format(slug): it must give the routed hosts.
    assert sorted(parsed["format"].format(slug) for slug in parsed["sites"]) == TEST_HOSTS
    assert parsed["rewrite"] is True and parsed["use_real"] is False and parsed["auto_populate"] is False
    assert parsed["mode"] == "single-process" and parsed["site_id"] == 1
    assert isinstance(parsed["allowed_hosts"], list) and sorted(parsed["allowed_hosts"]) == TEST_HOSTS
    # Secrets by reference only, the same for web and populate pods.
    assert env["DATABASE_URL"]["secret_key_ref"] == {"name": "example-db", "key": "DATABASE_URL", "optional": None}
    job = jobs(api_client, namespace, "populate")[0]
    job_env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
    assert job_env["DJANGO_MULTISITE_PLUS_SITES"] == env["DJANGO_MULTISITE_PLUS_SITES"]
    assert job.spec.template.spec.containers[0].command == DEFAULT_POPULATE_COMMAND
    # The example's aliases and redirects are live ones: the test environment's Job writes no Alias row.
    assert json.loads(job_env[ALIASES_ENV]) == {}
    urls = {s["slug"]: s["url"] for s in example["status"]["sites"]}
    assert urls["de"] == "https://de.example-stage.eu.aldryn.io/"


def test_adding_a_site_repopulates_and_routes_it(api_client, namespace, example):
    first_job = jobs(api_client, namespace, "populate")[0].metadata.name
    sites = example["spec"]["sites"] + [{"slug": "fr", "id": 4, "name": "France", "live": {"domain": "example.fr"}}]
    patch_spec(api_client, namespace, "example", {"sites": sites})
    project = wait_condition(api_client, namespace, "example", "Populated", "True", timeout=60)
    assert "fr" in re.sub(r".*wrote sites ", "", next(
        c["message"] for c in project["status"]["conditions"] if c["type"] == "Populated"))
    assert "fr.example-stage.eu.aldryn.io" in ingress_hosts(api_client, namespace, "example")
    names = [j.metadata.name for j in jobs(api_client, namespace, "populate")]
    assert first_job not in names and len(names) == 1, names  # a new Job for new content; the old one pruned
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
    assert '"fr"' not in str(env_of(deployment(api_client, namespace, "example-web")))  # python literal, not JSON
    assert "'fr': {'id': 4" in env_of(deployment(api_client, namespace, "example-web"))["DJANGO_MULTISITE_PLUS_SITES"]


def test_switching_to_live_serves_live_domains(api_client, namespace, example):
    patch_spec(api_client, namespace, "example", {"environment": "live"})
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
    assert sorted(ingress_hosts(api_client, namespace, "example")) == sorted(
        ["example.de", "www.example.de", "example.gh", "example.us", "www.example.us"])
    parsed = runtime_parse(env_of(deployment(api_client, namespace, "example-web")))
    assert parsed["use_real"] is True and parsed["rewrite"] is False
    assert "example.us" in parsed["allowed_hosts"] and "www.example.us" in parsed["allowed_hosts"]
    # The live populate Job writes the example's alias (served) and redirect (301) as django-multisite Alias rows.
    assert {"www.example.de": [1, False], "www.example.us": [3, True]} in populate_aliases(api_client, namespace)


def test_a_wildcard_alias_is_routed_allowed_and_written(api_client, namespace, example):
    """Issue 13: '*.example.de' reaches every layer in the form that layer matches."""
    sites = example["spec"]["sites"]
    sites[0]["live"]["aliases"] = ["www.example.de", "*.example.de"]
    patch_spec(api_client, namespace, "example", {"environment": "live", "sites": sites})
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
    assert "*.example.de" in ingress_hosts(api_client, namespace, "example")
    allowed = runtime_parse(env_of(deployment(api_client, namespace, "example-web")))["allowed_hosts"]
    assert ".example.de" in allowed and "*.example.de" not in allowed
    assert any(a.get("*.example.de") == [1, False] for a in populate_aliases(api_client, namespace))


def populate_aliases(api_client: client.ApiClient, namespace: str) -> list[dict]:
    """The Alias JSON of each populate Job (the previous content's Job may not be pruned yet)."""
    return [json.loads(next(e.value for e in j.spec.template.spec.containers[0].env if e.name == ALIASES_ENV))
            for j in jobs(api_client, namespace, "populate")]


def test_failing_populate_job_reports_its_message(api_client, namespace, operator):
    apply_example_secrets(api_client, namespace)
    create_project(api_client, namespace, failing_populate_project("django.db.utils.OperationalError: no such table: django_site"))
    failed = wait_condition(api_client, namespace, "example", "Populated", "False", timeout=60, reason="Failed")
    message = next(c["message"] for c in failed["status"]["conditions"] if c["type"] == "Populated")
    assert "no such table: django_site" in message
    ready = next(c for c in failed["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "PopulateFailed"
    warnings = wait_for(lambda: [e for e in events_for(api_client, namespace, "example") if e.type == "Warning"],
                        timeout=20, message="a Warning Event for the failed population")
    assert any("no such table" in (e.message or "") for e in warnings)


def test_hand_edits_are_put_back_and_idle_reconcile_writes_nothing(api_client, namespace, example, operator):
    apps = client.AppsV1Api(api_client)
    apps.patch_namespaced_deployment("example-web", namespace, {"spec": {"replicas": 5}})
    wait_for(lambda: deployment(api_client, namespace, "example-web").spec.replicas == 2, timeout=20,
             message="replicas put back to the spec's 2")
    client.NetworkingV1Api(api_client).delete_namespaced_ingress("example", namespace)
    wait_for(lambda: sorted(ingress_hosts(api_client, namespace, "example")) == TEST_HOSTS, timeout=20,
             message="Ingress re-created")
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=30)
    # The scaled-down Deployment's status still moves for a while; count from a quiet operator.
    writes_before = wait_quiet(operator)
    reconciles_before = metric(operator, "multisite_reconciles_total")
    rv_before = deployment(api_client, namespace, "example-web").metadata.resource_version
    # An event that changes nothing the operator owns: the reconcile runs and must write nothing.
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        "multisite.dev", "v1alpha1", namespace, "multisiteprojects", "example",
        {"metadata": {"annotations": {"example.com/touched": "yes"}}})
    wait_for(lambda: metric(operator, "multisite_reconciles_total") > reconciles_before, timeout=20,
             message="a reconcile after the annotation change")
    assert metric(operator, "multisite_api_writes_total") == writes_before
    assert deployment(api_client, namespace, "example-web").metadata.resource_version == rv_before


def test_scale_subresource_and_kubectl_wait(cluster, api_client, namespace, example):
    kubectl = [os.path.join(cluster.bin_dir, "kubectl"), "--kubeconfig", cluster.kubeconfig, "-n", namespace]
    subprocess.run(kubectl + ["scale", "msp/example", "--replicas=3"], check=True, capture_output=True)
    wait_for(lambda: deployment(api_client, namespace, "example-web").spec.replicas == 3, timeout=20,
             message="Deployment scaled through the MultiSiteProject")
    done = subprocess.run(kubectl + ["wait", "msp/example", "--for=condition=Ready", "--timeout=60s"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    table = subprocess.run(kubectl + ["get", "msp"], capture_output=True, text=True, check=True).stdout
    assert re.search(r"example\s+shared\s+test\s+3\s+True\s+True", table), table
    assert get_project(api_client, namespace, "example")["status"]["replicas"] == 3


def test_deleting_the_project_removes_children_but_no_secret(api_client, namespace, example):
    delete_project(api_client, namespace, "example")
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    wait_gone(lambda: apps.read_namespaced_deployment("example-web", namespace), message="Deployment collected")
    wait_gone(lambda: client.NetworkingV1Api(api_client).read_namespaced_ingress("example", namespace),
              message="Ingress collected")
    wait_for(lambda: not jobs(api_client, namespace, "populate"), timeout=30, message="populate Job collected")
    assert core.read_namespaced_secret("example-db", namespace).data["DATABASE_URL"]
    assert core.read_namespaced_secret("example-storage", namespace).data["DEFAULT_STORAGE_DSN"]
