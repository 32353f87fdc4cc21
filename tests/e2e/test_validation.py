"""Bad input on the real API server: rejected at apply time with a message that says what to fix, or, for what a
schema cannot know (another project's domain, a missing Secret, a missing image), Ready=False with a specific
reason, a Warning Event and the running children left as they were."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from kubernetes import client
from kubernetes.client.rest import ApiException

from helpers import wait_for
from multisite_operator.models import MAX_SITES
from unit.test_models import INVALID, Invalid, model_error

from harness.cluster import (
    kubectl,
    MISSING_IMAGE,
    delete_namespace,
    has_pull_failure_stage,
    owned_children,
    private_control_plane,
    resource_versions,
    restricted_namespace,
)
from harness.operator_process import assert_no_traceback, running_operator
from harness.project import (
    FAIL_LABEL,
    GROUP,
    PLURAL,
    VERSION,
    apply_example_secrets,
    condition,
    create_project,
    custom,
    delete_project,
    deployment,
    env_of,
    events_for,
    example_project,
    get_project,
    ingress_hosts,
    patch_spec,
    wait_condition,
    wait_gone,
)

# Ready=False reasons that hold until something outside the project changes (or the user edits it).
TERMINAL_REASONS = {"InvalidSpec", "DomainConflict", "SecretMissing", "PopulateFailed", "MigrationFailed",
                    "ImagePullFailed"}
BLOCKED_REASONS = {"InvalidSpec", "DomainConflict", "SecretMissing"}  # nothing is applied at all


# --- helpers ------------------------------------------------------------------------------------------------------
def manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MultiSiteProject", "metadata": {"name": name}, "spec": spec}


def render(doc: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """`multisite-operator render -`: the same model the operator uses, without a cluster."""
    return subprocess.run([sys.executable, "-m", "multisite_operator.cli", "render", "-"], input=yaml.safe_dump(doc),
                          capture_output=True, text=True, timeout=60)


def api_rejection(api: client.ApiClient, namespace: str, doc: dict[str, Any]) -> str | None:
    """The API server's message when it rejects a create, None when it accepts it."""
    try:
        create_project(api, namespace, doc)
    except ApiException as exc:
        assert exc.status == 422, f"expected 422 Invalid, got {exc.status}: {exc.body}"
        return json.loads(exc.body)["message"]
    return None


def readable(message: str) -> bool:
    """Names the spec field it is about, and carries no Go internals."""
    return "spec" in message and "map[string]interface" not in message and "Internal error" not in message


def warning_reasons(api: client.ApiClient, namespace: str, name: str) -> set[str]:
    return {e.reason for e in events_for(api, namespace, name) if e.type == "Warning"}


def ready(project: dict[str, Any]) -> dict[str, Any]:
    return condition(project, "Ready") or {}


@pytest.fixture(scope="module")
def scratch_namespace(api_client: client.ApiClient, crd: str) -> Iterator[str]:
    """One namespace for the rejection tests: nothing is ever created in it."""
    name = restricted_namespace(api_client, "t-validation")
    yield name
    delete_namespace(api_client, name)


# --- 1. rejected at apply time --------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_bad_input_is_rejected_at_apply_time_saying_what_to_fix(cluster, api_client, scratch_namespace, case: Invalid):
    doc = manifest(f"bad-{case.id}"[:60], case.spec())
    for label, message in (
        ("kubectl apply", kubectl(cluster, "apply", "-n", scratch_namespace, "-f", "-", stdin=yaml.safe_dump(doc))),
        ("API create", api_rejection(api_client, scratch_namespace, doc)),
    ):
        if isinstance(message, subprocess.CompletedProcess):
            assert message.returncode != 0, f"{label} accepted {case.id}: {message.stdout}"
            message = message.stderr
        assert message, f"{label} accepted {case.id}"
        text = message.replace('"', "'")
        for words in case.says + case.api_says:
            assert words.replace('"', "'") in text, f"{label}: {words!r} not in {message!r}"
        assert readable(message), message
    # `render` (and the operator's own check) rejects it with the same words.
    offline = render(doc)
    assert offline.returncode != 0 and offline.stdout == ""
    for words in case.says + case.render_says:
        assert words.replace('"', "'") in offline.stderr.replace('"', "'"), offline.stderr
    assert custom(api_client).list_namespaced_custom_object(GROUP, VERSION, scratch_namespace, PLURAL)["items"] == []


def test_a_misspelt_field_is_rejected_by_kubectl(cluster, scratch_namespace):
    """kubectl validates strictly by default: a typo is an error, not a silently dropped setting."""
    doc = manifest("typo", {**example_project()["spec"], "replica": 3})
    done = kubectl(cluster, "apply", "-n", scratch_namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    assert done.returncode != 0 and 'unknown field "spec.replica"' in done.stderr, done.stderr
    assert "spec.replica" in render(doc).stderr  # extra="forbid": the model says so too


def generated_project(n_sites: int, name: str = "big") -> dict[str, Any]:
    """A project with n sites, each with a live alias and redirect and a test alias: about 175 bytes per site."""
    sites = [{
        "slug": f"site-{i:04d}", "id": i + 1, "name": f"Site number {i}",
        "live": {"domain": f"site-{i:04d}.example.com", "aliases": [f"www.site-{i:04d}.example.com"],
                 "redirects": [f"site-{i:04d}.example.net"]},
        "test": {"aliases": [f"preview-{i:04d}.stage.example.com"]},
    } for i in range(n_sites)]
    spec = {"image": "registry.example.com/big:1", "testDomainFormat": "{slug}.stage.example.com", "sites": sites,
            "database": {"secretRef": {"name": "db", "key": "DATABASE_URL"}}}
    return manifest(name, spec)


def test_largest_claimed_spec_is_accepted_by_client_and_server_side_apply(cluster, api_client, scratch_namespace):
    """1000 sites (the schema's maximum, MAX_SITES: what still runs, see test_cluster_limits.py) pass the CRD's CEL
    cost budget and the 256 KiB annotation limit of client-side apply, and server-side apply. A duplicate in a
    1000-site list is still found and named; one site more is refused with the limit."""
    big = generated_project(1000)
    text = yaml.safe_dump(big)
    started = time.monotonic()
    done = kubectl(cluster, "apply", "-n", scratch_namespace, "-f", "-", stdin=text)
    client_side = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    stored = get_project(api_client, scratch_namespace, "big")
    assert len(stored["spec"]["sites"]) == 1000
    annotation = stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert len(annotation) < 262144
    delete_project(api_client, scratch_namespace, "big")

    started = time.monotonic()
    done = kubectl(cluster, "apply", "--server-side", "--field-manager=tests", "-n", scratch_namespace, "-f", "-",
                   stdin=text)
    server_side = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert len(get_project(api_client, scratch_namespace, "big")["spec"]["sites"]) == 1000
    # Re-applying the same 1000 sites (what CI/CD does on every deploy) is accepted as well.
    assert kubectl(cluster, "apply", "--server-side", "--field-manager=tests", "-n", scratch_namespace, "-f", "-",
                   stdin=text).returncode == 0
    delete_project(api_client, scratch_namespace, "big")

    dup = copy.deepcopy(big)
    dup["spec"]["sites"][999]["live"]["redirects"] = ["site-0003.example.com"]
    message = api_rejection(api_client, scratch_namespace, dup)
    assert message and "key site-0003.example.com already exists" in message, message

    assert MAX_SITES == 1000
    over = generated_project(MAX_SITES + 1, "over")
    done = kubectl(cluster, "apply", "--server-side", "-n", scratch_namespace, "-f", "-", stdin=yaml.safe_dump(over))
    assert done.returncode != 0 and "spec.sites: Too many: 1001: must have at most 1000 items" in done.stderr, \
        done.stderr
    print(f"\n1000 sites: kubectl apply {client_side:.2f} s (annotation {len(annotation)} bytes), "
          f"server-side {server_side:.2f} s")


# --- 2. what the schema cannot know ---------------------------------------------------------------------------------
def other_project(**spec: Any) -> dict[str, Any]:
    """A second project in the same namespace, on its own domains, sharing the example's Secrets."""
    doc = example_project()
    doc["metadata"]["name"] = "other"
    doc["spec"].update(testDomainFormat="{slug}.other-stage.example.com",
                       sites=[{"slug": "fr", "id": 1, "name": "France", "live": {"domain": "other.fr"}}], **spec)
    return doc


def test_a_served_domain_stays_with_its_project_and_a_second_claim_is_blocked(api_client, namespace, operator):
    """Ownership by claim, not by age (issue 13 item 7): whoever serves a domain keeps it, older or newer."""
    apply_example_secrets(api_client, namespace)
    create_project(api_client, namespace, example_project())
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
    create_project(api_client, namespace, other_project())  # created later: the newer claim
    wait_condition(api_client, namespace, "other", "Ready", "True", timeout=60)
    before = resource_versions(owned_children(api_client, namespace, "other"))
    example_before = resource_versions(owned_children(api_client, namespace, "example"))

    taken = "de.example-stage.eu.aldryn.io"
    sites = other_project()["spec"]["sites"]
    sites[0]["test"] = {"aliases": [taken]}
    patch_spec(api_client, namespace, "other", {"sites": sites})
    blocked = wait_condition(api_client, namespace, "other", "Ready", "False", timeout=30, reason="DomainConflict")
    assert f"domain {taken} is already served by MultiSiteProject {namespace}/example" in ready(blocked)["message"]
    wait_for(lambda: "DomainConflict" in warning_reasons(api_client, namespace, "other"), timeout=20,
             message="Warning Event DomainConflict on the newer project")
    # The newer project's running children are untouched and do not route the domain; the older one is unaffected.
    time.sleep(2)  # a reconcile that would write has had ample time to do it
    assert resource_versions(owned_children(api_client, namespace, "other")) == before
    assert taken not in ingress_hosts(api_client, namespace, "other")
    assert resource_versions(owned_children(api_client, namespace, "example")) == example_before
    assert ready(get_project(api_client, namespace, "example"))["status"] == "True"

    # The older project gives the domain up: the newer one converges without anyone touching it.
    example_sites = get_project(api_client, namespace, "example")["spec"]["sites"]
    released = time.monotonic()
    patch_spec(api_client, namespace, "example", {"sites": [s for s in example_sites if s["slug"] != "de"]})
    wait_for(lambda: taken in ingress_hosts(api_client, namespace, "other"), timeout=60,
             message="the released domain routed to the newer project")
    wait_condition(api_client, namespace, "other", "Ready", "True", timeout=60)
    print(f"\nnewer project routed the released domain {time.monotonic() - released:.2f} s after the release")
    assert taken not in ingress_hosts(api_client, namespace, "example")

    # Now the newer project serves it: the older one asking for it again is the second claim and is blocked.
    patch_spec(api_client, namespace, "example", {"sites": example_sites})
    blocked = wait_condition(api_client, namespace, "example", "Ready", "False", timeout=30, reason="DomainConflict")
    assert f"domain {taken} is already served by MultiSiteProject {namespace}/other" in ready(blocked)["message"]
    assert taken in ingress_hosts(api_client, namespace, "other")
    assert taken not in ingress_hosts(api_client, namespace, "example")
    assert ready(get_project(api_client, namespace, "other"))["status"] == "True"


def test_a_host_routed_by_an_ingress_the_operator_does_not_manage_blocks_until_it_goes(api_client, namespace,
                                                                                      operator):
    legacy = "legacy.other-stage.example.com"
    net = client.NetworkingV1Api(api_client)
    backend = {"service": {"name": "legacy", "port": {"number": 80}}}
    net.create_namespaced_ingress(namespace, {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "legacy-web"},
        "spec": {"rules": [{"host": legacy, "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": backend}]}}]}})
    apply_example_secrets(api_client, namespace)
    doc = other_project()
    doc["spec"]["sites"][0]["test"] = {"aliases": [legacy]}
    create_project(api_client, namespace, doc)
    blocked = wait_condition(api_client, namespace, "other", "Ready", "False", timeout=30, reason="DomainConflict")
    assert (f"domain {legacy} is already routed by Ingress {namespace}/legacy-web, which the operator does not "
            "manage") in ready(blocked)["message"], ready(blocked)["message"]
    assert owned_children(api_client, namespace, "other") == {}, "nothing is created while a host is taken"
    # The foreign Ingress goes: the project converges without anyone touching it, and routes the host.
    net.delete_namespaced_ingress("legacy-web", namespace)
    wait_condition(api_client, namespace, "other", "Ready", "True", timeout=90)
    assert legacy in ingress_hosts(api_client, namespace, "other")


@pytest.mark.parametrize("mode", ["shared", "multi-project"])
def test_web_pods_failing_at_start_show_a_crash_loop_and_recover(api_client, namespace, operator, mode):
    """kwok's chaos stage fails the container of every pod carrying its label with the annotated message, as a
    process exiting at start-up would (issue 13 item 5; the real runtime's proof is in tests/serving)."""
    apply_example_secrets(api_client, namespace)
    create_project(api_client, namespace, example_project(mode=mode))
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=90)
    output = "ImproperlyConfigured: DATABASE_URL postgres://example:example-password@db/x is broken"
    patch_spec(api_client, namespace, "example", {"podLabels": {FAIL_LABEL: "true"},
                                                  "podAnnotations": {f"{FAIL_LABEL}/message": output}})
    failed = wait_condition(api_client, namespace, "example", "Ready", "False", timeout=90, reason="CrashLoop")
    message = ready(failed)["message"]
    assert "exits at start-up" in message and "ImproperlyConfigured: DATABASE_URL" in message, message
    assert "example-password" not in message, "a password in a URL of the output is redacted"
    wait_for(lambda: "CrashLoop" in warning_reasons(api_client, namespace, "example"), timeout=20,
             message="Warning Event CrashLoop")
    # The fix rolls out: the crashing pods were of the replaced template, the project recovers by itself.
    patch_spec(api_client, namespace, "example", {"podLabels": None, "podAnnotations": None})
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=120)


def test_missing_secret_blocks_until_it_appears(api_client, namespace, operator):
    create_project(api_client, namespace, example_project())
    blocked = wait_condition(api_client, namespace, "example", "Ready", "False", timeout=30, reason="SecretMissing")
    assert "Secret example-db not found" in ready(blocked)["message"]
    assert "Secret example-storage not found" in ready(blocked)["message"]
    wait_for(lambda: "SecretMissing" in warning_reasons(api_client, namespace, "example"), timeout=20,
             message="Warning Event SecretMissing")
    assert owned_children(api_client, namespace, "example") == {}  # nothing half-made

    appeared = time.monotonic()
    apply_example_secrets(api_client, namespace)
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
    print(f"\nReady {time.monotonic() - appeared:.1f} s after the Secrets appeared (retried every 10 s)")


def test_missing_secret_key_keeps_running_children_until_it_is_added(api_client, namespace, operator):
    apply_example_secrets(api_client, namespace)
    create_project(api_client, namespace, example_project())
    project = wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
    before = resource_versions(owned_children(api_client, namespace, "example"))

    database = {"secretRef": {"name": "example-db", "key": "DATABASE_URL_V2"}}
    patch_spec(api_client, namespace, "example", {"database": database})
    blocked = wait_condition(api_client, namespace, "example", "Ready", "False", timeout=30, reason="SecretMissing")
    assert ready(blocked)["message"] == "Secret example-db has no key DATABASE_URL_V2"
    assert condition(blocked, "Degraded")["status"] == "True"
    wait_for(lambda: "SecretMissing" in warning_reasons(api_client, namespace, "example"), timeout=20,
             message="Warning Event SecretMissing")
    time.sleep(2)
    assert resource_versions(owned_children(api_client, namespace, "example")) == before
    assert env_of(deployment(api_client, namespace, "example-web"))["DATABASE_URL"]["secret_key_ref"]["key"] == \
        "DATABASE_URL"  # still the old, working reference

    client.CoreV1Api(api_client).patch_namespaced_secret(
        "example-db", namespace, {"stringData": {"DATABASE_URL_V2": "postgres://example:v2@db/example"}})
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=60)
    assert env_of(deployment(api_client, namespace, "example-web"))["DATABASE_URL"]["secret_key_ref"]["key"] == \
        "DATABASE_URL_V2"
    assert project["metadata"]["uid"] == get_project(api_client, namespace, "example")["metadata"]["uid"]


@pytest.fixture
def pull_cluster(cluster, api_client, crd, tmp_path) -> Iterator[tuple[Any, client.ApiClient, str]]:
    """A control plane whose kwok fails image pulls (the shared one if it has the stage, else a private one), a
    namespace in it, and the operator watching that namespace."""
    if has_pull_failure_stage(cluster):
        ns = restricted_namespace(api_client, "t-missing-image")
        try:
            with running_operator(cluster.kubeconfig, [ns], tmp_path / "operator.log") as op:
                yield cluster, api_client, ns
                assert_no_traceback(op.log())
        finally:
            delete_namespace(api_client, ns)
        return
    with private_control_plane() as cp:
        api = cp.api_client()
        ns = restricted_namespace(api, "t-missing-image")
        with running_operator(cp.kubeconfig, [ns], tmp_path / "operator.log") as op:
            yield cp, api, ns
            assert_no_traceback(op.log())


def test_missing_image_is_reported_while_the_old_pods_keep_serving(pull_cluster):
    _, api, ns = pull_cluster
    core = client.CoreV1Api(api)
    apply_example_secrets(api, ns)
    create_project(api, ns, example_project())
    wait_condition(api, ns, "example", "Ready", "True", timeout=60)

    def web_pods() -> list[client.V1Pod]:
        return core.list_namespaced_pod(ns, label_selector="multisite.dev/project=example,"
                                                            "app.kubernetes.io/component=web").items

    serving = {p.metadata.name for p in web_pods() if p.status.phase == "Running"}
    assert len(serving) == 2

    patch_spec(api, ns, "example", {"image": MISSING_IMAGE})
    failed = wait_condition(api, ns, "example", "Ready", "False", timeout=60, reason="ImagePullFailed")
    message = ready(failed)["message"]
    assert f"image {MISSING_IMAGE} cannot be pulled" in message and "not found" in message, message
    assert condition(failed, "Degraded")["reason"] == "ImagePullFailed"
    wait_for(lambda: "ImagePullFailed" in warning_reasons(api, ns, "example"), timeout=20,
             message="Warning Event ImagePullFailed")
    # The rollout never took a serving pod away (maxUnavailable 0): the old pods still run and are Ready.
    pods = {p.metadata.name: p for p in web_pods()}
    assert serving <= set(pods)
    for name in serving:
        assert pods[name].status.phase == "Running"
        assert all(c.ready for c in pods[name].status.container_statuses)
    # The version gate stops the image at its migration Job (whose pod cannot pull it): no web pod gets it at all.
    assert set(pods) == serving
    web = deployment(api, ns, "example-web")
    assert web.status.available_replicas == 2 and web.spec.template.spec.containers[0].image != MISSING_IMAGE
    assert condition(failed, "Migrated")["status"] == "Unknown"

    # The fixed image: its migration waits for the stuck one (never killed: it might be writing), so the user
    # deletes the Job whose image cannot be pulled (README), and the fixed image migrates and rolls out.
    patch_spec(api, ns, "example", {"image": "registry.example.com/example/web:1.0.1"})
    wait_condition(api, ns, "example", "Migrated", "Unknown", timeout=60, reason="Waiting")
    batch = client.BatchV1Api(api)
    for job in batch.list_namespaced_job(ns, label_selector="app.kubernetes.io/component=migrate").items:
        if job.spec.template.spec.containers[0].image == MISSING_IMAGE:
            batch.delete_namespaced_job(job.metadata.name, ns, propagation_policy="Background")
    wait_condition(api, ns, "example", "Ready", "True", timeout=90)
    images = {p.spec.containers[0].image for p in web_pods() if p.status.phase == "Running"}
    assert images == {"registry.example.com/example/web:1.0.1"}


# --- 3. generated specs (property-based) ----------------------------------------------------------------------------
TAKEN = "taken.example.org"  # served by an older project during the property test
HOSTS = ["example.de", "www.example.de", "shop.example.com", "example.gh", "a-b.example.us", "example.fr",
         "www.example.fr", "xn--mnchen-3ya.de"]


def _mutations() -> dict[str, Any]:
    """The mistakes (and the hostile cluster states) a generated spec may get: at most one per spec, so the test
    sees each on its own, next to plenty of valid specs."""
    def site0(spec: dict[str, Any]) -> dict[str, Any]:
        return spec["sites"][0]

    return {
        "duplicate-slug": lambda s: s["sites"].append({**copy.deepcopy(site0(s)), "id": 99, "live": {"domain": "dup.example.com"}}),
        "duplicate-id": lambda s: s["sites"].append({**copy.deepcopy(site0(s)), "slug": "dupid", "live": {"domain": "dup.example.com"}}),
        "duplicate-domain": lambda s: s["sites"].append({"slug": "dupdom", "id": 99, "name": "Dup", "live": {"domain": site0(s)["live"]["domain"]}}),
        "uppercase-domain": lambda s: site0(s)["live"].update(domain=site0(s)["live"]["domain"].upper()),
        "underscore-domain": lambda s: site0(s)["live"].update(domain="my_shop.example.com"),
        "trailing-dot": lambda s: site0(s)["live"].update(domain=site0(s)["live"]["domain"] + "."),
        "wildcard-primary": lambda s: site0(s)["live"].update(domain="*.example.com"),
        "uppercase-alias": lambda s: site0(s)["live"].update(aliases=["WWW.example.com"]),
        "bare-wildcard-alias": lambda s: site0(s)["live"].update(aliases=["*"]),
        "inner-wildcard-redirect": lambda s: site0(s)["live"].update(redirects=["shop.*.example.com"]),
        "wildcard-alias": lambda s: site0(s)["live"].update(aliases=["*.wild.example.com"]),  # valid: served
        "bad-slug": lambda s: site0(s).update(slug="Bad_Slug"),
        "bad-mode": lambda s: s.update(mode="single"),
        "bad-environment": lambda s: s.update(environment="prod"),
        "no-test-domain": lambda s: s.pop("testDomainFormat"),
        "format-without-slug": lambda s: s.update(testDomainFormat="stage.example.com"),
        "test-domains-without-one-pattern": lambda s: site0(s).update(test={"domain": "elsewhere.example.net"}),
        "default-site-missing": lambda s: s.update(defaultSiteId=77),
        "domain-of-an-older-project": lambda s: (s.update(environment="live"), site0(s)["live"].update(domain=TAKEN)),
        "missing-secret": lambda s: s.update(database={"secretRef": {"name": "missing-db", "key": "DATABASE_URL"}}),
        "missing-secret-key": lambda s: s.update(database={"secretRef": {"name": "example-db", "key": "NOPE"}}),
        "failing-populate": lambda s: s.update(populate={
            "backoffLimit": 0, "podLabels": {FAIL_LABEL: "true"},
            "podAnnotations": {f"{FAIL_LABEL}/message": "no such table: django_site"}}),
    }


MUTATIONS = _mutations()


@st.composite
def generated_specs(draw: Any) -> dict[str, Any]:
    """A valid spec (1-3 sites, either mode and environment, aliases, replicas 0-2), then with even odds one of
    MUTATIONS. hypothesis.event() records which, so the statistics show what was covered."""
    n = draw(st.integers(1, 3))
    slugs = draw(st.lists(st.sampled_from(["de", "gh", "us", "fr", "north-america"]), min_size=n, max_size=n,
                          unique=True))
    ids = draw(st.lists(st.integers(1, 9), min_size=n, max_size=n, unique=True))
    hosts = draw(st.lists(st.sampled_from(HOSTS), min_size=2 * n, max_size=2 * n, unique=True))
    sites = []
    for i in range(n):
        live: dict[str, Any] = {"domain": hosts[2 * i]}
        if draw(st.booleans()):
            live["aliases" if draw(st.booleans()) else "redirects"] = [hosts[2 * i + 1]]
        sites.append({"slug": slugs[i], "id": ids[i], "name": f"Site {i}", "live": live})
    spec: dict[str, Any] = {
        "mode": draw(st.sampled_from(["shared", "shared", "multi-project"])),
        "environment": draw(st.sampled_from(["live", "test"])),
        "image": "registry.example.com/example/web:1.0.0",
        "replicas": draw(st.integers(0, 2)),
        "database": {"secretRef": {"name": "example-db", "key": "DATABASE_URL"}},
        "testDomainFormat": draw(st.sampled_from(["{slug}.stage.example.com", "{slug}-preview.example.com"])),
        "sites": sites,
    }
    mutation = draw(st.one_of(st.just("none"), st.sampled_from(sorted(MUTATIONS))))
    if mutation != "none":
        MUTATIONS[mutation](spec)
    event(f"mutation: {mutation}")
    return spec


@pytest.fixture
def property_namespace(api_client, namespace, operator) -> str:
    """The test namespace with the example's Secrets and an older project serving TAKEN in the live environment."""
    apply_example_secrets(api_client, namespace)
    holder = example_project(environment="live")
    holder["metadata"]["name"] = "holder"
    holder["spec"]["sites"] = [{"slug": "hold", "id": 1, "name": "Holder", "live": {"domain": TAKEN}}]
    create_project(api_client, namespace, holder)
    wait_condition(api_client, namespace, "holder", "Ready", "True", timeout=60)
    return namespace


_counter = iter(range(10**6))


def owner_as_the_operator_sees_it(api_client, namespace: str, name: str) -> Any:
    """The operator renders with the project's uid and the digest of its DATABASE_URL value (rotation.py), on which
    the populate/migrate Job's name depends; the generated specs reference only that Secret."""
    import base64

    from multisite_operator.render import Owner
    from multisite_operator.rotation import digests

    uid = get_project(api_client, namespace, name)["metadata"]["uid"]
    secret = client.CoreV1Api(api_client).read_namespaced_secret("example-db", namespace)
    entry = ("example-db", "DATABASE_URL", base64.b64decode(secret.data["DATABASE_URL"]).decode())
    return Owner(name=name, namespace=namespace, uid=uid, digests=digests(uid, entry[:2], [entry]))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=generated_specs())
def test_generated_specs_are_rejected_readably_or_reach_a_terminal_condition(api_client, property_namespace,
                                                                             operator, spec):
    from multisite_operator.models import MultiSiteProjectSpec
    from multisite_operator.render import render_children

    ns = property_namespace
    name = f"gen-{next(_counter)}"
    model_message = model_error(spec)
    rejected = api_rejection(api_client, ns, manifest(name, spec))
    if rejected is not None:
        event("outcome: rejected by the API server")
        assert readable(rejected), rejected
        assert model_message, f"the API server rejected what the model accepts: {rejected}"
        return
    try:
        def terminal() -> dict[str, Any] | None:
            project = get_project(api_client, ns, name)
            c = ready(project)
            if (project.get("status") or {}).get("observedGeneration") != project["metadata"]["generation"]:
                return None
            if c.get("reason") == "DomainConflict" and f"{ns}/holder" not in c.get("message", ""):
                # A project deleted a moment ago may still hold the domain in the operator's cache (kopf handles
                # objects concurrently): its deletion re-triggers this one. Only the live holder's claim is final.
                return None
            if c.get("status") == "True" or c.get("reason") in TERMINAL_REASONS:
                return project
            return None

        project = wait_for(terminal, timeout=90, interval=0.2, message=f"{name} reaches a terminal condition")
        c = ready(project)
        event(f"outcome: Ready={c['status']} {c['reason']}")
        children = set(owned_children(api_client, ns, name))
        if model_message:
            assert c["reason"] == "InvalidSpec" and c["message"] == model_message, (c, model_message)
        else:
            assert c["reason"] != "InvalidSpec", c
        if c["status"] == "False" and c["reason"] in BLOCKED_REASONS:
            assert children == set(), f"{c['reason']} but children exist: {children}"
        else:
            parsed = MultiSiteProjectSpec.model_validate(spec)
            site_image = parsed.image if parsed.mode == "multi-project" else None
            desired = {(d["kind"], d["metadata"]["name"])
                       for d in render_children(parsed, owner_as_the_operator_sees_it(api_client, ns, name), site_image)}
            assert children == desired, f"partial set of children: {children} != {desired}"
        if spec["sites"][0]["live"]["domain"] == TAKEN and spec["environment"] == "live":
            assert c["reason"] == "DomainConflict", c
    finally:
        delete_project(api_client, ns, name)
        wait_gone(lambda: get_project(api_client, ns, name), message=f"{name} deleted")
    assert_no_traceback(operator.log())
