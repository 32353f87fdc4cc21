"""The multi-project renderers as pure functions: the example manifest in, the objects a cluster would get out."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from aldryn_runtime import domain_settings
from multisite_operator.models import MultiSiteProjectSpec
from multisite_operator.render import Owner, migrate_job, render_children
from multisite_operator.render.env import site_env

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "example-multi-project.yaml"
OWNER = Owner(name="example", namespace="shop", uid="0000-1111")
OLD, NEW = "registry.example.com/example/web:1.0.0", "registry.example.com/example/web:1.1.0"
SECRETS = {
    "DATABASE_URL": {"secretKeyRef": {"name": "example-db", "key": "DATABASE_URL"}},
    "DEFAULT_STORAGE_DSN": {"secretKeyRef": {"name": "example-storage", "key": "DEFAULT_STORAGE_DSN"}},
}


def multi_spec_dict() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    return copy.deepcopy(next(d for d in docs if d["kind"] == "MultiSiteProject")["spec"])


@pytest.fixture
def spec() -> MultiSiteProjectSpec:
    return MultiSiteProjectSpec.model_validate(multi_spec_dict())


def of_kind(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def env(obj: dict[str, Any]) -> dict[str, Any]:
    """name -> value as the container sees it (a stored var without value is ''), or the valueFrom reference."""
    container = obj["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["valueFrom"] if "valueFrom" in e else e.get("value", "") for e in container["env"]}


def test_one_deployment_and_service_per_site_plus_ingress_and_migration(spec):
    objs = render_children(spec, OWNER, site_image=OLD)
    names = ["example-site-de", "example-site-gh", "example-site-us"]
    assert sorted(of_kind(objs, "Deployment")) == names
    assert sorted(of_kind(objs, "Service")) == names
    assert list(of_kind(objs, "Ingress")) == ["example"]
    [job] = of_kind(objs, "Job").values()
    assert job["metadata"]["name"].startswith("example-migrate-")
    for o in objs:
        assert o["metadata"]["ownerReferences"][0]["uid"] == "0000-1111"
        assert o["metadata"]["labels"]["multisite.dev/project"] == "example"
    for name, svc in of_kind(objs, "Service").items():
        # Each Service selects exactly its own site's pods.
        dep = of_kind(objs, "Deployment")[name]
        assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
        assert svc["spec"]["selector"]["multisite.dev/site"] == name.rsplit("-", 1)[1]


def test_every_site_pod_gets_the_same_secret_references_and_image(spec):
    deps = of_kind(render_children(spec, OWNER, site_image=OLD), "Deployment").values()
    for dep in deps:
        values = env(dep)
        assert {k: values[k] for k in SECRETS} == SECRETS
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == OLD
    assert "change-me" not in repr(render_children(spec, OWNER, site_image=OLD))


def test_sites_run_the_migrated_image_while_the_job_runs_the_new_one():
    spec = MultiSiteProjectSpec.model_validate({**multi_spec_dict(), "image": NEW})
    objs = render_children(spec, OWNER, site_image=OLD)
    assert {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in of_kind(objs, "Deployment").values()} == {OLD}
    [job] = of_kind(objs, "Job").values()
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == NEW
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert {k: env(job)[k] for k in SECRETS} == SECRETS  # the same database the sites use


def test_no_site_deployment_before_any_migration_succeeded(spec):
    objs = render_children(spec, OWNER, site_image=None)
    assert of_kind(objs, "Deployment") == {}
    assert len(of_kind(objs, "Job")) == 1
    assert len(of_kind(objs, "Service")) == 3  # routing can be in place; nothing serves yet


@pytest.mark.parametrize("environment", ["test", "live"])
def test_each_site_env_is_what_aldryn_django_reads_for_that_site(environment):
    spec = MultiSiteProjectSpec.model_validate({**multi_spec_dict(), "environment": environment})
    deps = of_kind(render_children(spec, OWNER, site_image=OLD), "Deployment")
    seen_ids = set()
    for site in spec.sites:
        settings = domain_settings(env(deps[f"example-site-{site.slug}"]))
        names = spec.site_domains(site)
        assert settings["SITE_ID"] == site.id and settings["STAGE"] == environment
        assert settings["DOMAIN"] == names.domain
        assert settings["DOMAIN_ALIASES"] == names.aliases and settings["DOMAIN_REDIRECTS"] == names.redirects
        assert set(settings["ALLOWED_HOSTS"]) == set(names.names())
        # aldryn-sites: this instance redirects with its own config and writes only its own Site row.
        assert settings["redirect_config"]["domain"] == names.domain
        assert settings["redirect_config"]["redirects"] == names.redirects
        assert settings["writes_sites"] == [site.id]
        seen_ids.add(settings["SITE_ID"])
    assert seen_ids == {1, 2, 3}
    if environment == "live":
        us = domain_settings(env(deps["example-site-us"]))
        assert us["DOMAIN_REDIRECTS"] == ["www.example.us"] and "www.example.us" in us["ALLOWED_HOSTS"]


def test_without_aldryn_sites_domains_every_instance_would_write_site_1(spec):
    """Why ALDRYN_SITES_DOMAINS is set: aldryn-django's DOMAIN fallback is keyed by 1 whatever SITE_ID is."""
    gh = next(s for s in spec.sites if s.slug == "gh")
    values = {e["name"]: e.get("value") for e in site_env(spec, gh) if "value" in e}
    del values["ALDRYN_SITES_DOMAINS"]
    settings = domain_settings(values)
    assert settings["writes_sites"] == [1] and settings["redirect_config"] is None


def test_per_site_replicas_and_resources_override_the_project(spec):
    deps = of_kind(render_children(spec, OWNER, site_image=OLD), "Deployment")
    resources = {n: d["spec"]["template"]["spec"]["containers"][0]["resources"] for n, d in deps.items()}
    assert deps["example-site-de"]["spec"]["replicas"] == 3
    assert deps["example-site-gh"]["spec"]["replicas"] == deps["example-site-us"]["spec"]["replicas"] == 2
    assert resources["example-site-de"] == {"requests": {"cpu": "200m", "memory": "512Mi"}}
    assert resources["example-site-gh"] == {"requests": {"cpu": "100m", "memory": "256Mi"}}


def test_a_site_override_changes_only_what_it_names():
    raw = multi_spec_dict()
    raw["resources"] = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
    raw["sites"][0]["resources"] = {"requests": {"memory": "512Mi"}}
    raw["sites"][1]["replicas"] = 0
    spec = MultiSiteProjectSpec.model_validate(raw)
    deps = of_kind(render_children(spec, OWNER, site_image=OLD), "Deployment")
    assert deps["example-site-de"]["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    assert deps["example-site-gh"]["spec"]["replicas"] == 0  # an explicit 0 is an override, not "unset"


def test_ingress_routes_every_domain_alias_and_redirect_to_its_site_with_tls():
    spec = MultiSiteProjectSpec.model_validate({**multi_spec_dict(), "environment": "live"})
    ing = of_kind(render_children(spec, OWNER, site_image=OLD), "Ingress")["example"]
    routes = {r["host"]: r["http"]["paths"][0]["backend"]["service"]["name"] for r in ing["spec"]["rules"]}
    assert routes == {
        "example.de": "example-site-de", "www.example.de": "example-site-de",
        "example.gh": "example-site-gh",
        "example.us": "example-site-us", "www.example.us": "example-site-us",
    }
    # One TLS entry and Secret per site (issue 13: one certificate per site; was one Secret for every host).
    assert ing["spec"]["tls"] == [
        {"hosts": ["example.de", "www.example.de"], "secretName": "example-tls-de"},
        {"hosts": ["example.gh"], "secretName": "example-tls-gh"},
        {"hosts": ["example.us", "www.example.us"], "secretName": "example-tls-us"},
    ]
    assert ing["spec"]["ingressClassName"] == "nginx"


def test_migration_job_name_follows_the_code_not_the_sites(spec):
    first = migrate_job(spec, OWNER)["metadata"]["name"]
    raw = multi_spec_dict()
    raw["sites"].append({"slug": "fr", "id": 4, "name": "France", "live": {"domain": "example.fr"}})
    raw["replicas"] = 5
    assert migrate_job(MultiSiteProjectSpec.model_validate(raw), OWNER)["metadata"]["name"] == first
    assert migrate_job(MultiSiteProjectSpec.model_validate({**raw, "image": NEW}), OWNER)["metadata"]["name"] != first
    raw["migrate"] = {"command": ["sh", "-c", "python manage.py migrate --noinput && python manage.py check"]}
    assert migrate_job(MultiSiteProjectSpec.model_validate(raw), OWNER)["metadata"]["name"] != first


def test_migration_pod_labels_and_annotations_reach_the_job_pod():
    raw = multi_spec_dict()
    raw["migrate"] = {"backoffLimit": 0, "podLabels": {"team": "web"}, "podAnnotations": {"note": "x"}}
    job = migrate_job(MultiSiteProjectSpec.model_validate(raw), OWNER)
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["metadata"]["labels"]["team"] == "web"
    assert job["spec"]["template"]["metadata"]["annotations"] == {"note": "x"}


def test_empty_values_are_rendered_as_the_api_server_stores_them(spec):
    """DOMAIN_ALIASES of a site without aliases: the stored object has no `value`, so neither has ours
    (otherwise every reconcile would see a difference and re-apply)."""
    dep = of_kind(render_children(spec, OWNER, site_image=OLD), "Deployment")["example-site-gh"]
    raw_env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert raw_env["DOMAIN_ALIASES"] == {"name": "DOMAIN_ALIASES"}
    gh = next(s for s in spec.sites if s.slug == "gh")
    assert {"name": "DOMAIN_ALIASES", "value": ""} in site_env(spec, gh)  # site-env/local use keeps the value
