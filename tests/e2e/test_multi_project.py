"""The multi-project mode end to end on the real control plane: one Deployment per site, one database, one image.

Ordering claims ("no site rolls before its migration succeeded") are checked on the API server's own event
order: every test records the watch events of the kinds it cares about, and the resourceVersions of one etcd are
a single increasing revision, so "event A has a smaller resourceVersion than event B" means A was written first.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch

from aldryn_runtime import domain_settings
from helpers import wait_for

from harness.project import (
    FAIL_LABEL,
    GROUP,
    PLURAL,
    VERSION,
    apply_example_secrets,
    condition,
    create_project,
    deployment,
    env_of,
    events_for,
    jobs,
    patch_spec,
    wait_condition,
    wait_gone,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "example-multi-project.yaml"
OLD = "registry.example.com/example/web:1.0.0"
NEW = "registry.example.com/example/web:1.1.0"
SITES = {"de": 1, "gh": 2, "us": 3}
TEST_HOSTS = {slug: f"{slug}.example-stage.eu.aldryn.io" for slug in SITES}
HOLD_LABEL = "multisite-tests/hold"
TIMEOUT = 90  # two shared cores: generous bounds, waits end as soon as the condition holds


# --- helpers --------------------------------------------------------------------------------------------------------
def multi_project(**spec_changes: Any) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    project = copy.deepcopy(next(d for d in docs if d["kind"] == "MultiSiteProject"))
    project["spec"].update(spec_changes)
    return project


def site_deployments(api: client.ApiClient, namespace: str) -> dict[str, client.V1Deployment]:
    items = client.AppsV1Api(api).list_namespaced_deployment(
        namespace, label_selector="app.kubernetes.io/component=site").items
    return {d.metadata.name: d for d in items}


def images(api: client.ApiClient, namespace: str) -> dict[str, str]:
    return {n: d.spec.template.spec.containers[0].image for n, d in site_deployments(api, namespace).items()}


def available(dep: client.V1Deployment) -> bool:
    """Serving: the Deployment's Available condition, with every wanted replica ready."""
    conds = {c.type: c.status for c in dep.status.conditions or []}
    return conds.get("Available") == "True" and (dep.status.ready_replicas or 0) >= dep.spec.replicas


def routes(api: client.ApiClient, namespace: str) -> dict[str, str]:
    ing = client.NetworkingV1Api(api).read_namespaced_ingress("example", namespace)
    return {r.host: r.http.paths[0].backend.service.name for r in ing.spec.rules or []}


def services(api: client.ApiClient, namespace: str) -> list[str]:
    return sorted(s.metadata.name for s in client.CoreV1Api(api).list_namespaced_service(
        namespace, label_selector="multisite.dev/project=example").items)


def secret_versions(api: client.ApiClient, namespace: str) -> dict[str, str]:
    core = client.CoreV1Api(api)
    return {n: core.read_namespaced_secret(n, namespace).metadata.resource_version
            for n in ("example-db", "example-storage")}


def counter(operator, name: str) -> float:
    return sum(float(line.split()[-1]) for line in operator.metrics().splitlines() if line.startswith(name))


def settled_writes(operator) -> float:
    """The operator's write counter once the events that follow convergence (pod and status updates) are handled:
    the same value on two readings a second apart."""
    seen: list[float] = []

    def stable() -> float | None:
        seen.append(counter(operator, "multisite_api_writes_total"))
        return seen[-1] + 1 if len(seen) > 1 and seen[-1] == seen[-2] else None  # +1: 0 writes is a valid value

    return wait_for(stable, timeout=30, interval=1, message="operator idle") - 1


def cond_of(project: dict[str, Any], type_: str) -> dict[str, Any]:
    found = condition(project, type_)
    assert found is not None, f"no {type_} condition in {project.get('status')}"
    return found


class Recorder:
    """Every watch event of one kind in one namespace, as (resourceVersion, type, object as the API sends it)."""

    def __init__(self, api: client.ApiClient, list_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.api = api
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self._stopped = False
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(list_fn, args, kwargs), daemon=True)
        self._thread.start()

    def _run(self, list_fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        since: str | None = None
        while not self._stopped:
            try:
                opts = {"resource_version": since} if since else {}
                for event in self._watch.stream(list_fn, *args, timeout_seconds=600, **opts, **kwargs):
                    obj = event["object"]
                    obj = obj if isinstance(obj, dict) else self.api.sanitize_for_serialization(obj)
                    since = obj["metadata"]["resourceVersion"]
                    self.events.append((int(since), event["type"], obj))
            except Exception:  # noqa: BLE001 - a dropped stream resumes from the last event; after stop() it ends
                if self._stopped:
                    return

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()

    def first(self, match: Callable[[str, dict[str, Any]], bool]) -> int | None:
        """resourceVersion of the first event that matches, or None."""
        return min((rv for rv, typ, obj in self.events if match(typ, obj)), default=None)


def record(api: client.ApiClient, namespace: str, kind: str) -> Recorder:
    fns = {
        "deployments": (client.AppsV1Api(api).list_namespaced_deployment, (namespace,)),
        "jobs": (client.BatchV1Api(api).list_namespaced_job, (namespace,)),
        "ingresses": (client.NetworkingV1Api(api).list_namespaced_ingress, (namespace,)),
        "projects": (client.CustomObjectsApi(api).list_namespaced_custom_object, (GROUP, VERSION, namespace, PLURAL)),
    }
    fn, args = fns[kind]
    return Recorder(api, fn, *args)


def create_recording_until_ready(api: client.ApiClient, namespace: str,
                                 project: dict[str, Any]) -> tuple[dict[str, Any], Recorder, Recorder]:
    """Create ``project`` and wait for Ready while recording every Deployment and Job event: the order in which
    the operator wrote its children is then read from their resourceVersions."""
    deps_rec, jobs_rec = record(api, namespace, "deployments"), record(api, namespace, "jobs")
    try:
        create_project(api, namespace, project)
        ready = wait_condition(api, namespace, project["metadata"]["name"], "Ready", "True", timeout=TIMEOUT)
    finally:
        deps_rec.stop()
        jobs_rec.stop()
    return ready, deps_rec, jobs_rec


def job_done(obj: dict[str, Any]) -> bool:
    """Succeeded, by the Job's own status: SuccessCriteriaMet (set first since Kubernetes 1.31) or Complete."""
    return any(c.get("type") in ("SuccessCriteriaMet", "Complete") and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def job_image(obj: dict[str, Any]) -> str:
    return obj["spec"]["template"]["spec"]["containers"][0]["image"]


def is_migration(obj: dict[str, Any]) -> bool:
    return (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "migrate"


@contextmanager
def hold_pods(api: client.ApiClient, namespace: str) -> Iterator[Callable[[], None]]:
    """Keep pods labelled HOLD_LABEL from being created (an admission policy), so a Job stays running.

    kwok completes Job pods at once; holding the migration is how a test looks at the cluster while a migration
    is under way. Yields `release`, which removes the hold (the Job controller then creates the pod).
    """
    adm = client.AdmissionregistrationV1Api(api)
    name = f"hold-{namespace}"
    adm.create_validating_admission_policy({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [
                {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]},
            "validations": [{"expression": f"!has(object.metadata.labels) || !('{HOLD_LABEL}' in object.metadata.labels)",
                             "message": "held by the test"}],
        },
    })
    adm.create_validating_admission_policy_binding({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}},
    })
    core = client.CoreV1Api(api)
    probe = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "labels": {HOLD_LABEL: "true"}},
             "spec": {"containers": [{"name": "c", "image": "x", "securityContext": {
                 "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
                 "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}}

    def holding() -> bool:
        try:
            core.create_namespaced_pod(namespace, probe, dry_run="All")
        except client.ApiException as exc:
            return "held by the test" in (exc.body or "")
        return False

    wait_for(holding, timeout=30, message="admission policy in force")
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            adm.delete_validating_admission_policy_binding(name)
            adm.delete_validating_admission_policy(name)
            released = True

    try:
        yield release
    finally:
        release()


@pytest.fixture
def example(api_client: client.ApiClient, namespace: str, operator) -> dict[str, Any]:
    """The hosting document's example in multi-project mode, created and waited on until Ready."""
    apply_example_secrets(api_client, namespace)
    create_project(api_client, namespace, multi_project())
    return wait_condition(api_client, namespace, "example", "Ready", "True", timeout=TIMEOUT)


# --- tests ------------------------------------------------------------------------------------------------------------
def test_first_creation_migrates_before_any_site_exists_then_runs_one_instance_per_site(
        api_client, namespace, operator):
    apply_example_secrets(api_client, namespace)
    secrets_before = secret_versions(api_client, namespace)
    project, deps_rec, jobs_rec = create_recording_until_ready(api_client, namespace, multi_project())

    # A fresh database needs its schema first: no site Deployment was written before the migration succeeded.
    migrated_at = jobs_rec.first(lambda t, o: is_migration(o) and job_done(o))
    first_site = deps_rec.first(lambda t, o: t == "ADDED")
    assert migrated_at is not None and first_site is not None
    assert first_site > migrated_at, (first_site, migrated_at)
    [job] = jobs(api_client, namespace, "migrate")
    assert job.metadata.name.startswith("example-migrate-") and job.status.succeeded == 1
    assert job.spec.template.spec.containers[0].command == ["python", "manage.py", "migrate", "--noinput"]

    deps = site_deployments(api_client, namespace)
    assert sorted(deps) == ["example-site-de", "example-site-gh", "example-site-us"]
    envs = {name: env_of(dep) for name, dep in deps.items()}
    # The same Secret references and the same image in every site's pods.
    refs = {name: (e["DATABASE_URL"]["secret_key_ref"], e["DEFAULT_STORAGE_DSN"]["secret_key_ref"])
            for name, e in envs.items()}
    assert len(set(map(repr, refs.values()))) == 1
    assert refs["example-site-de"][0]["name"] == "example-db" and refs["example-site-de"][1]["name"] == "example-storage"
    assert set(images(api_client, namespace).values()) == {OLD}
    # Each its own site, as aldryn-django reads the env (django-getenv's env()).
    for slug, site_id in SITES.items():
        settings = domain_settings(envs[f"example-site-{slug}"])
        assert settings["SITE_ID"] == site_id and settings["STAGE"] == "test"
        assert settings["DOMAIN"] == TEST_HOSTS[slug]
        assert settings["DOMAIN_ALIASES"] == [] and settings["DOMAIN_REDIRECTS"] == []
        assert TEST_HOSTS[slug] in settings["ALLOWED_HOSTS"]
        assert not set(settings["ALLOWED_HOSTS"]) & (set(TEST_HOSTS.values()) - {TEST_HOSTS[slug]})
        assert settings["writes_sites"] == [site_id]  # aldryn-sites touches only its own row of the shared table
    # Per-site overrides: de runs 3 replicas with more memory; the others the project's 2 and defaults.
    assert {n: d.spec.replicas for n, d in deps.items()} == {
        "example-site-de": 3, "example-site-gh": 2, "example-site-us": 2}
    requests = {n: d.spec.template.spec.containers[0].resources.requests for n, d in deps.items()}
    assert requests["example-site-de"] == {"cpu": "200m", "memory": "512Mi"}
    assert requests["example-site-gh"] == requests["example-site-us"] == {"cpu": "100m", "memory": "256Mi"}
    assert all(available(d) for d in deps.values())

    # One Ingress routes each site's domain to that site's Service, with one TLS entry and Secret per site.
    assert routes(api_client, namespace) == {host: f"example-site-{slug}" for slug, host in TEST_HOSTS.items()}
    ing = client.NetworkingV1Api(api_client).read_namespaced_ingress("example", namespace)
    assert {t.secret_name: t.hosts for t in ing.spec.tls} == {
        f"example-tls-{slug}": [host] for slug, host in TEST_HOSTS.items()}
    assert services(api_client, namespace) == ["example-site-de", "example-site-gh", "example-site-us"]

    # Status: per-site image and ready replicas; Ready with every site Available on one image.
    st = project["status"]
    assert {s["slug"]: (s["image"], s["readyReplicas"], s["available"]) for s in st["sites"]} == {
        "de": (OLD, 3, True), "gh": (OLD, 2, True), "us": (OLD, 2, True)}
    assert st["image"] == OLD and st["replicas"] == 7 and st["siteCount"] == 3
    assert cond_of(project, "Migrated")["status"] == "True"
    assert cond_of(project, "VersionSkew")["status"] == "False"
    assert secret_versions(api_client, namespace) == secrets_before


def test_live_environment_routes_aliases_and_redirects_to_their_site(api_client, namespace, example):
    migrations_before = {j.metadata.name for j in jobs(api_client, namespace, "migrate")}
    patch_spec(api_client, namespace, "example", {"environment": "live"})
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=TIMEOUT)
    assert routes(api_client, namespace) == {
        "example.de": "example-site-de", "www.example.de": "example-site-de",
        "example.gh": "example-site-gh",
        "example.us": "example-site-us", "www.example.us": "example-site-us",
    }
    ing = client.NetworkingV1Api(api_client).read_namespaced_ingress("example", namespace)
    assert sorted(h for t in ing.spec.tls for h in t.hosts) == sorted(routes(api_client, namespace))
    assert [t.secret_name for t in ing.spec.tls] == ["example-tls-de", "example-tls-gh", "example-tls-us"]
    de = domain_settings(env_of(deployment(api_client, namespace, "example-site-de")))
    us = domain_settings(env_of(deployment(api_client, namespace, "example-site-us")))
    assert de["STAGE"] == "live" and de["DOMAIN"] == "example.de" and de["DOMAIN_ALIASES"] == ["www.example.de"]
    assert us["DOMAIN_REDIRECTS"] == ["www.example.us"] and us["redirect_config"]["redirects"] == ["www.example.us"]
    assert {"example.us", "www.example.us"} <= set(us["ALLOWED_HOSTS"]) and "example.de" not in us["ALLOWED_HOSTS"]
    # Redirect hosts answer 301, not aldryn-sites' default 302.
    assert env_of(deployment(api_client, namespace, "example-site-us"))["ALDRYN_SITES_REDIRECT_PERMANENT"] == "True"
    # Changing domains changes no code: no new migration (the finished Job of the old pod content may be pruned).
    assert {j.metadata.name for j in jobs(api_client, namespace, "migrate")} <= migrations_before


def test_image_change_migrates_once_and_only_then_rolls_every_site(api_client, namespace, example):
    generations = {n: d.metadata.generation for n, d in site_deployments(api_client, namespace).items()}
    first_job = jobs(api_client, namespace, "migrate")[0].metadata.name
    recs = {k: record(api_client, namespace, k) for k in ("deployments", "jobs", "projects")}
    try:
        with hold_pods(api_client, namespace) as release:
            patch_spec(api_client, namespace, "example",
                       {"image": NEW, "migrate": {"podLabels": {HOLD_LABEL: "true"}}})
            # While the migration runs: every site still serves the old image, untouched, and status says so.
            held = wait_condition(api_client, namespace, "example", "Migrated", "Unknown", timeout=TIMEOUT,
                                  reason="Migrating")
            [running] = [j for j in jobs(api_client, namespace, "migrate") if j.metadata.name != first_job]
            assert running.spec.template.spec.containers[0].image == NEW and not running.status.succeeded
            assert images(api_client, namespace) == {n: OLD for n in generations}
            assert {n: d.metadata.generation for n, d in site_deployments(api_client, namespace).items()} == generations
            skew = cond_of(held, "VersionSkew")
            assert skew["status"] == "True" and "3 sites (de, gh, us) on " + OLD in skew["message"]
            assert cond_of(held, "Ready")["status"] == "False"
            release()
            done = wait_condition(api_client, namespace, "example", "Ready", "True", timeout=TIMEOUT)
    finally:
        for rec in recs.values():
            rec.stop()

    # Exactly one migration for the new image, one pod, and every site rolled only after it succeeded.
    new_jobs = {o["metadata"]["name"] for _, t, o in recs["jobs"].events if is_migration(o) and job_image(o) == NEW}
    assert len(new_jobs) == 1, new_jobs
    [job_name] = new_jobs
    pods = client.CoreV1Api(api_client).list_namespaced_pod(
        namespace, label_selector=f"batch.kubernetes.io/job-name={job_name}").items
    assert len(pods) == 1 and pods[0].status.phase == "Succeeded"
    migrated_at = recs["jobs"].first(lambda t, o: o["metadata"]["name"] == job_name and job_done(o))
    rolled_at = recs["deployments"].first(
        lambda t, o: o["spec"]["template"]["spec"]["containers"][0]["image"] == NEW)
    assert migrated_at is not None and rolled_at is not None and rolled_at > migrated_at, (rolled_at, migrated_at)
    # During the rollout status said which site runs which image.
    rolling = [o["status"] for _, _, o in recs["projects"].events
               if any(s.get("rollingTo") == NEW for s in (o.get("status") or {}).get("sites") or [])]
    assert rolling, "no status showed a site rolling to the new image"
    skew = next(c for c in rolling[0]["conditions"] if c["type"] == "VersionSkew")
    assert skew["status"] == "True" and skew["reason"] == "RollingOut" and f"rolling to {NEW}" in skew["message"]
    assert {s["image"] for s in rolling[0]["sites"]} <= {OLD, NEW}

    # The end: every site on the new image and Available; the old migration Job pruned.
    assert set(images(api_client, namespace).values()) == {NEW}
    assert all(available(d) for d in site_deployments(api_client, namespace).values())
    assert {s["image"] for s in done["status"]["sites"]} == {NEW} and done["status"]["image"] == NEW
    assert cond_of(done, "VersionSkew")["status"] == "False" and cond_of(done, "Migrated")["status"] == "True"
    assert [j.metadata.name for j in jobs(api_client, namespace, "migrate")] == [job_name]


def test_failed_migration_stops_the_rollout_and_a_fixed_image_recovers(api_client, namespace, example, operator):
    before = {n: d.metadata.generation for n, d in site_deployments(api_client, namespace).items()}
    message = 'django.db.utils.ProgrammingError: column "price_eur" of relation "shop_product" already exists'
    patch_spec(api_client, namespace, "example", {"image": NEW, "migrate": {
        "backoffLimit": 0, "podLabels": {FAIL_LABEL: "true"}, "podAnnotations": {f"{FAIL_LABEL}/message": message}}})
    failed = wait_condition(api_client, namespace, "example", "Migrated", "False", timeout=TIMEOUT, reason="Failed")

    assert message in cond_of(failed, "Migrated")["message"]
    skew = cond_of(failed, "VersionSkew")
    assert skew["status"] == "True" and skew["reason"] == "MigrationFailed"
    assert NEW in skew["message"] and f"3 sites (de, gh, us) on {OLD}" in skew["message"]
    ready = cond_of(failed, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "MigrationFailed"
    assert cond_of(failed, "Degraded")["status"] == "True"
    assert {s["slug"]: (s["image"], s["available"]) for s in failed["status"]["sites"]} == {
        slug: (OLD, True) for slug in SITES}
    warnings = wait_for(lambda: [e for e in events_for(api_client, namespace, "example")
                                 if e.type == "Warning" and message in (e.message or "")],
                        timeout=30, message="a Warning Event with the migration's message")
    assert warnings

    # Nothing rolls further: another event reconciles, and writes nothing; every site still serves the old image.
    writes = settled_writes(operator)
    reconciles = counter(operator, "multisite_reconciles_total")
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "example", {"metadata": {"annotations": {"example.com/touched": "1"}}})
    wait_for(lambda: counter(operator, "multisite_reconciles_total") > reconciles, timeout=30,
             message="a reconcile after the annotation change")
    assert counter(operator, "multisite_api_writes_total") == writes
    deps = site_deployments(api_client, namespace)
    assert {n: d.metadata.generation for n, d in deps.items()} == before
    assert set(images(api_client, namespace).values()) == {OLD}
    assert all(available(d) for d in deps.values())

    # Fixing it: a corrected image (without the test's failure marker) migrates and rolls every site.
    fixed = "registry.example.com/example/web:1.1.1"
    patch_spec(api_client, namespace, "example", {"image": fixed, "migrate": None})
    done = wait_condition(api_client, namespace, "example", "Ready", "True", timeout=TIMEOUT)
    assert set(images(api_client, namespace).values()) == {fixed}
    assert cond_of(done, "Migrated")["status"] == "True" and cond_of(done, "VersionSkew")["status"] == "False"
    assert cond_of(done, "Degraded")["status"] == "False"
    assert [j.spec.template.spec.containers[0].image for j in jobs(api_client, namespace, "migrate")] == [fixed]


def test_adding_and_removing_sites(api_client, namespace, example):
    migration = [j.metadata.name for j in jobs(api_client, namespace, "migrate")]
    sites = example["spec"]["sites"] + [
        {"slug": "fr", "id": 4, "name": "France", "live": {"domain": "example.fr"}, "replicas": 1}]
    patch_spec(api_client, namespace, "example", {"sites": sites})
    project = wait_condition(api_client, namespace, "example", "Ready", "True", timeout=TIMEOUT)
    fr = deployment(api_client, namespace, "example-site-fr")
    settings = domain_settings(env_of(fr))
    assert settings["SITE_ID"] == 4 and settings["DOMAIN"] == "fr.example-stage.eu.aldryn.io"
    assert fr.spec.replicas == 1 and fr.spec.template.spec.containers[0].image == OLD and available(fr)
    assert routes(api_client, namespace)["fr.example-stage.eu.aldryn.io"] == "example-site-fr"
    assert "example-site-fr" in services(api_client, namespace)
    assert project["status"]["siteCount"] == 4 and project["status"]["replicas"] == 8

    remaining = [s for s in sites if s["slug"] != "gh"]
    patch_spec(api_client, namespace, "example", {"sites": remaining})
    project = wait_condition(api_client, namespace, "example", "Ready", "True", timeout=TIMEOUT)
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    wait_gone(lambda: apps.read_namespaced_deployment("example-site-gh", namespace), message="gh Deployment pruned")
    wait_gone(lambda: core.read_namespaced_service("example-site-gh", namespace), message="gh Service pruned")
    assert "gh.example-stage.eu.aldryn.io" not in routes(api_client, namespace)
    assert sorted(site_deployments(api_client, namespace)) == ["example-site-de", "example-site-fr", "example-site-us"]
    assert project["status"]["orphanedSites"] == [{"slug": "gh", "id": 2}]
    assert [s["slug"] for s in project["status"]["sites"]] == ["de", "us", "fr"]
    # Sites come and go without a migration: the schema depends on the code only.
    assert [j.metadata.name for j in jobs(api_client, namespace, "migrate")] == migration


def test_ready_only_when_every_site_is_available(api_client, namespace, example):
    sites = copy.deepcopy(example["spec"]["sites"])
    sites[1]["resources"] = {"requests": {"cpu": "5000"}}  # more than the node has: gh's new pods stay Pending
    patch_spec(api_client, namespace, "example", {"sites": sites})
    project = wait_condition(api_client, namespace, "example", "Ready", "False", timeout=TIMEOUT, reason="RollingOut")
    assert "1 of 3 sites are not Available" in cond_of(project, "Ready")["message"]
    by_slug = {s["slug"]: s for s in project["status"]["sites"]}
    assert by_slug["gh"]["available"] is False and by_slug["de"]["available"] is True
    # gh's old pods keep serving meanwhile (maxUnavailable 0).
    assert (deployment(api_client, namespace, "example-site-gh").status.ready_replicas or 0) >= 2

    sites[1]["resources"] = {"requests": {"cpu": "50m"}}
    patch_spec(api_client, namespace, "example", {"sites": sites})
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=TIMEOUT)
    gh = deployment(api_client, namespace, "example-site-gh")
    assert gh.spec.template.spec.containers[0].resources.requests == {"cpu": "50m", "memory": "256Mi"}


def test_switching_modes_converges_both_ways_without_a_gap(api_client, namespace, example, operator):
    secrets_before = secret_versions(api_client, namespace)
    all_hosts = set(TEST_HOSTS.values())

    # multi-project -> shared
    recs = {k: record(api_client, namespace, k) for k in ("deployments", "ingresses")}
    try:
        patch_spec(api_client, namespace, "example", {"mode": "shared"})
        shared = wait_condition(api_client, namespace, "example", "Ready", "True", timeout=TIMEOUT)
        wait_for(lambda: not site_deployments(api_client, namespace) and not jobs(api_client, namespace, "migrate"),
                 timeout=30, message="site Deployments and migration Job pruned")
    finally:
        for rec in recs.values():
            rec.stop()
    assert cond_of(shared, "Populated")["status"] == "True"
    assert routes(api_client, namespace) == {h: "example-web" for h in all_hosts}
    assert services(api_client, namespace) == ["example-web"]
    assert available(deployment(api_client, namespace, "example-web"))
    # No gap: the Ingress moved to the shared Service only once its Deployment was Available, and the site
    # Deployments were deleted only after that.
    web_available = recs["deployments"].first(
        lambda t, o: o["metadata"]["name"] == "example-web" and any(
            c["type"] == "Available" and c["status"] == "True" for c in (o.get("status") or {}).get("conditions") or []))
    switched = recs["ingresses"].first(lambda t, o: all(
        r["http"]["paths"][0]["backend"]["service"]["name"] == "example-web" for r in o["spec"]["rules"]))
    sites_deleted = recs["deployments"].first(lambda t, o: t == "DELETED")
    assert web_available and switched and sites_deleted and web_available < switched < sites_deleted, (
        web_available, switched, sites_deleted)

    # shared -> multi-project: the same image the shared Deployment ran, so no migration (the database is untouched).
    recs = {k: record(api_client, namespace, k) for k in ("deployments", "ingresses", "jobs")}
    try:
        patch_spec(api_client, namespace, "example", {"mode": "multi-project"})
        multi = wait_condition(api_client, namespace, "example", "Ready", "True", timeout=TIMEOUT)
        apps = client.AppsV1Api(api_client)
        wait_gone(lambda: apps.read_namespaced_deployment("example-web", namespace), message="shared Deployment pruned")
        wait_for(lambda: not jobs(api_client, namespace, "populate"), timeout=30, message="populate Job pruned")
    finally:
        for rec in recs.values():
            rec.stop()
    assert routes(api_client, namespace) == {host: f"example-site-{slug}" for slug, host in TEST_HOSTS.items()}
    assert services(api_client, namespace) == ["example-site-de", "example-site-gh", "example-site-us"]
    assert set(images(api_client, namespace).values()) == {OLD}
    assert not [o for _, t, o in recs["jobs"].events if t == "ADDED" and is_migration(o)]
    assert jobs(api_client, namespace, "migrate") == []
    assert cond_of(multi, "Migrated")["status"] == "True"
    sites_available = max(recs["deployments"].first(
        lambda t, o, n=n: o["metadata"]["name"] == n and (o.get("status") or {}).get("availableReplicas", 0) >= o["spec"]["replicas"]
        and any(c["type"] == "Available" and c["status"] == "True" for c in o["status"].get("conditions") or []))
        or 10**18 for n in site_deployments(api_client, namespace))
    switched = recs["ingresses"].first(lambda t, o: all(
        r["http"]["paths"][0]["backend"]["service"]["name"].startswith("example-site-") for r in o["spec"]["rules"]))
    web_deleted = recs["deployments"].first(lambda t, o: t == "DELETED" and o["metadata"]["name"] == "example-web")
    assert switched and web_deleted and sites_available < switched < web_deleted, (sites_available, switched, web_deleted)
    assert secret_versions(api_client, namespace) == secrets_before


def test_a_running_migration_is_not_killed_by_a_switch_to_shared(api_client, namespace, example):
    with hold_pods(api_client, namespace) as release:
        patch_spec(api_client, namespace, "example", {"image": NEW, "migrate": {"podLabels": {HOLD_LABEL: "true"}}})
        wait_condition(api_client, namespace, "example", "Migrated", "Unknown", timeout=TIMEOUT, reason="Migrating")
        [running] = [j for j in jobs(api_client, namespace, "migrate")
                     if j.spec.template.spec.containers[0].image == NEW]
        patch_spec(api_client, namespace, "example", {"mode": "shared"})
        # The shared mode takes over on the image the database is migrated to; NEW waits for its migration.
        wait_for(lambda: not site_deployments(api_client, namespace), timeout=TIMEOUT, message="site Deployments pruned")
        web = deployment(api_client, namespace, "example-web")
        assert web.spec.template.spec.containers[0].image == OLD and available(web)
        wait_condition(api_client, namespace, "example", "Ready", "False", timeout=TIMEOUT, reason="Migrating")
        # The migration writing to the database is let finish, not killed.
        still = client.BatchV1Api(api_client).read_namespaced_job(running.metadata.name, namespace)
        assert still.metadata.uid == running.metadata.uid and still.metadata.deletion_timestamp is None
        release()
    # Once it has succeeded, NEW is migrated: the shared web Deployment rolls to it, and no migration Job is left.
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=TIMEOUT)
    assert deployment(api_client, namespace, "example-web").spec.template.spec.containers[0].image == NEW
    wait_for(lambda: not jobs(api_client, namespace, "migrate"), timeout=TIMEOUT,
             message="the finished migration Job pruned")


def test_idle_reconcile_writes_nothing(api_client, namespace, example, operator):
    rvs = {n: d.metadata.resource_version for n, d in site_deployments(api_client, namespace).items()}
    writes = settled_writes(operator)
    reconciles = counter(operator, "multisite_reconciles_total")
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "example", {"metadata": {"annotations": {"example.com/touched": "yes"}}})
    wait_for(lambda: counter(operator, "multisite_reconciles_total") > reconciles, timeout=30,
             message="a reconcile after the annotation change")
    assert counter(operator, "multisite_api_writes_total") == writes
    assert {n: d.metadata.resource_version for n, d in site_deployments(api_client, namespace).items()} == rvs
