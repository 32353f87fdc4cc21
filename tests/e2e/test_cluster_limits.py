"""Specs the schema accepts but the cluster could never run (issue 14, items 7 and 8), on the real API server.

Each is either rejected at `kubectl apply` with a message, or reported once as `Ready=False InvalidSpec` for the
current generation with a Warning Event while the running children stay as they were; never a silent retry loop.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
import yaml
from kubernetes import client

from helpers import wait_for
from multisite_operator.limits import MAX_ARG_STRLEN, env_string_bytes
from multisite_operator.models import MAX_SITES

from harness.kernel import execve_accepts
from harness.cluster import kubectl, owned_children, resource_versions
from harness.project import (
    apply_example_secrets,
    condition,
    create_project,
    deployment,
    events_for,
    example_project,
    get_project,
    patch_spec,
    wait_condition,
)
from .test_validation import render


def named(name: str, project: dict[str, Any]) -> dict[str, Any]:
    project = copy.deepcopy(project)
    project["metadata"]["name"] = name
    return project


def warnings(api: client.ApiClient, namespace: str, name: str, reason: str) -> list[str]:
    return [e.message for e in events_for(api, namespace, name) if e.type == "Warning" and e.reason == reason]


def invalid_spec(api: client.ApiClient, namespace: str, name: str, timeout: float = 60) -> str:
    """Waits for Ready=False InvalidSpec for the current generation and its Warning Event; returns the message."""
    project = wait_condition(api, namespace, name, "Ready", "False", timeout=timeout, reason="InvalidSpec")
    message = condition(project, "Ready")["message"]
    wait_for(lambda: any(message[:200] in m for m in warnings(api, namespace, name, "InvalidSpec")), timeout=20,
             message="Warning Event InvalidSpec")
    return message


# --- item 7: names ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "says"), [
    ("shop.v2", "metadata.name 'shop.v2' must start with a lowercase letter and contain only lowercase letters, "
                "digits and '-' (no '.')"),
    ("a" * 64, "metadata.name must be at most 63 characters: it is the value of the label "
               "multisite.dev/project on every child"),
])
def test_a_name_no_child_could_carry_is_rejected_at_apply_time(cluster, crd, namespace, name, says):
    doc = named(name, example_project())
    done = kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert done.returncode != 0, f"kubectl apply accepted {name!r}: {done.stdout}"
    assert says in done.stderr.replace('"', "'"), done.stderr
    offline = render(doc)  # `multisite-operator render` says the same
    assert offline.returncode != 0 and says in offline.stderr, offline.stderr


@pytest.mark.parametrize("mode", ["shared", "multi-project"])
def test_the_longest_name_with_the_longest_slugs_converges(api_client, namespace, operator, mode):
    """63 characters is the real limit, not a guess: every child of such a project (names shortened with a hash
    where their own limit is lower) is accepted by the API server and the project becomes Ready."""
    apply_example_secrets(api_client, namespace)
    name = "n" * 63
    doc = named(name, example_project(mode=mode))
    for site in doc["spec"]["sites"]:
        site["slug"] = (site["slug"] * 40)[:40]
    doc["spec"]["testDomainFormat"] = "{slug}.stage.example.com"
    create_project(api_client, namespace, doc)
    wait_condition(api_client, namespace, name, "Ready", "True", timeout=90)
    kinds = sorted(k for k, _ in owned_children(api_client, namespace, name))
    assert kinds.count("Service") == (1 if mode == "shared" else 3) and "Ingress" in kinds and "Job" in kinds


# --- item 8: the environment --------------------------------------------------------------------------------------
def many_sites(n: int, long: bool = False) -> list[dict[str, Any]]:
    """n sites of the tests' shape (each with a live alias and redirect and a test alias); `long`: longer names and
    domains of the same kind, which push DJANGO_MULTISITE_PLUS_SITES over Linux's limit within MAX_SITES sites."""
    domain, title = ("shop.example-holding-international.com", "Site {i} of the international project") if long \
        else ("example.com", "Site number {i}")
    return [{"slug": f"site-{i:04d}", "id": i + 1, "name": title.format(i=i),
             "live": {"domain": f"site-{i:04d}.{domain}", "aliases": [f"www.site-{i:04d}.{domain}"],
                      "redirects": [f"site-{i:04d}.example.net"]},
             "test": {"aliases": [f"preview-{i:04d}.stage.example.com"]}} for i in range(n)]


def test_an_environment_over_linuxs_limit_is_reported_and_the_maximum_runs(api_client, namespace, operator):
    apply_example_secrets(api_client, namespace)
    doc = example_project(testDomainFormat="{slug}.stage.example.com", sites=many_sites(MAX_SITES, long=True))
    offline = render(doc)
    assert offline.returncode != 0 and "environment variable DJANGO_MULTISITE_PLUS_SITES would be" in offline.stderr

    create_project(api_client, namespace, doc)
    message = invalid_spec(api_client, namespace, "example")
    assert "environment variable DJANGO_MULTISITE_PLUS_SITES would be" in message, message
    assert "over Linux's limit of 131072 bytes for one environment string (MAX_ARG_STRLEN)" in message, message
    assert owned_children(api_client, namespace, "example") == {}  # nothing that could never start

    # The documented maximum, MAX_SITES sites of the tests' shape, runs: the operator applies it, and this
    # machine's kernel starts a program with the very environment strings the API server stored.
    patch_spec(api_client, namespace, "example", {"sites": many_sites(MAX_SITES)})
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=120)
    env = {e.name: e.value for e in deployment(api_client, namespace, "example-web").spec.template.spec.containers[0].env
           if e.value is not None}
    largest = max(env, key=lambda n: env_string_bytes(n, env[n]))
    assert largest == "DJANGO_MULTISITE_PLUS_SITES" and env_string_bytes(largest, env[largest]) < MAX_ARG_STRLEN
    assert all(execve_accepts(n, v) for n, v in env.items())
    print(f"\n{MAX_SITES} sites: {largest} is {env_string_bytes(largest, env[largest])} of {MAX_ARG_STRLEN} bytes")


# --- item 8: annotations and other children the API server refuses ---------------------------------------------------
def test_pod_annotations_over_256_kib_are_reported_for_the_current_generation(api_client, namespace, operator):
    """Before: the Deployment's apply was refused on every retry while the project kept Ready=True of the previous
    generation. Now: InvalidSpec for this generation, nothing applied, the running pods keep serving."""
    apply_example_secrets(api_client, namespace)
    create_project(api_client, namespace, example_project())
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
    before = resource_versions(owned_children(api_client, namespace, "example"))

    patch_spec(api_client, namespace, "example", {"podAnnotations": {"example.com/blob": "x" * (300 * 1024)}})
    message = invalid_spec(api_client, namespace, "example")
    assert "the pod annotations of Deployment example-web total" in message, message
    assert "over the API server's limit of 262144 (256 KiB)" in message, message
    time.sleep(2)  # a reconcile that would write has had ample time to do it
    assert resource_versions(owned_children(api_client, namespace, "example")) == before

    patch_spec(api_client, namespace, "example", {"podAnnotations": None})
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)


def test_a_child_the_api_server_refuses_is_reported_not_retried_in_silence(api_client, namespace, operator):
    """Whatever a pre-check misses (here a pod label value with a space): the API server's own message, once."""
    apply_example_secrets(api_client, namespace)
    create_project(api_client, namespace, example_project())
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
    patch_spec(api_client, namespace, "example", {"podLabels": {"tier": "front end"}})
    message = invalid_spec(api_client, namespace, "example")
    assert message.startswith("the API server rejected a child: ") and "front end" in message, message
    status = get_project(api_client, namespace, "example")["status"]
    assert all(c["observedGeneration"] == status["observedGeneration"] for c in status["conditions"]
               if c["type"] in ("Ready", "Degraded"))

    patch_spec(api_client, namespace, "example", {"podLabels": {"tier": "front-end"}})
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)


def test_client_side_apply_over_the_annotation_limit_is_refused_to_the_user(cluster, api_client, namespace, operator):
    """What "Ready=True for an old generation" after a big `kubectl apply` is: client-side apply stores the whole
    manifest a second time, in the annotation kubectl.kubernetes.io/last-applied-configuration; past 256 KiB the API
    server refuses the request, kubectl prints why, and the stored generation (the one Ready describes) is unchanged.
    The operator writes no annotation on the project. Server-side apply stores no copy and takes the same manifest."""
    apply_example_secrets(api_client, namespace)
    doc = example_project()
    assert kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc)).returncode == 0
    project = wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
    assert set(project["metadata"].get("annotations") or {}) == {"kubectl.kubernetes.io/last-applied-configuration"}
    assert {m["manager"] for m in project["metadata"]["managedFields"] if m.get("subresource") != "status"} \
        == {"kubectl-client-side-apply"}  # the operator writes the status only
    generation = project["metadata"]["generation"]

    big = copy.deepcopy(doc)
    big["spec"]["ingress"]["annotations"]["example.com/notes"] = "x" * (200 * 1024)  # fits the Ingress's 256 KiB
    big["spec"]["podAnnotations"] = {"example.com/notes": "y" * (60 * 1024)}
    done = kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(big))
    assert done.returncode != 0 and "metadata.annotations: Too long: may not be more than 262144 bytes" in \
        done.stderr.replace("must have at most", "may not be more than"), done.stderr
    project = get_project(api_client, namespace, "example")
    assert project["metadata"]["generation"] == generation == project["status"]["observedGeneration"]

    done = kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-n", namespace, "-f", "-",
                   stdin=yaml.safe_dump(big))
    assert done.returncode == 0, done.stderr
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
