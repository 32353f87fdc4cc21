"""The shared mode's renderers: pure functions from the example spec to the objects a cluster would get."""

from __future__ import annotations

from typing import Any

from multisite_operator.models import MultiSiteProjectSpec
from multisite_operator.render import Owner, render_children

OWNER = Owner(name="example", namespace="shop", uid="0000-1111")


def by_kind(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objs}


def env(dep: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_children_are_owned_labelled_and_in_the_namespace(spec):
    objs = render_children(spec, OWNER)
    assert sorted(o["kind"] for o in objs) == ["Deployment", "Ingress", "Job", "Job", "Service"]
    for o in objs:
        assert o["metadata"]["namespace"] == "shop"
        assert o["metadata"]["ownerReferences"][0]["uid"] == "0000-1111"
        assert o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "multisite-operator"
        assert o["metadata"]["labels"]["multisite.dev/project"] == "example"


def test_ingress_routes_every_test_domain_with_tls(spec):
    ing = by_kind(render_children(spec, OWNER))["Ingress"]
    hosts = [r["host"] for r in ing["spec"]["rules"]]
    assert hosts == ["de.example-stage.eu.aldryn.io", "gh.example-stage.eu.aldryn.io", "us.example-stage.eu.aldryn.io"]
    # One TLS entry and Secret per site (issue 13: one certificate per site; was one Secret for every host).
    assert ing["spec"]["tls"] == [{"hosts": [h], "secretName": f"example-tls-{h[:2]}"} for h in hosts]
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    backends = {r["http"]["paths"][0]["backend"]["service"]["name"] for r in ing["spec"]["rules"]}
    assert backends == {"example-web"}


def test_live_environment_routes_domains_aliases_and_redirects(spec_dict):
    spec = MultiSiteProjectSpec.model_validate({**spec_dict, "environment": "live"})
    objs = by_kind(render_children(spec, OWNER))
    assert [r["host"] for r in objs["Ingress"]["spec"]["rules"]] == [
        "example.de", "www.example.de", "example.gh", "example.us", "www.example.us"]
    values = env(objs["Deployment"])
    assert values["DJANGO_MULTISITE_PLUS_USE_REAL_DOMAIN"] == "True"
    assert values["DJANGO_MULTISITE_PLUS_REWRITE_DOMAINS"] == "False"
    assert "DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT" not in values
    assert values["STAGE"] == "live"


def test_secrets_are_referenced_never_copied(spec):
    objs = render_children(spec, OWNER)
    text = repr(objs)
    assert "change-me" not in text  # the example Secret's password
    values = env(by_kind(objs)["Deployment"])
    assert values["DATABASE_URL"] == {"secretKeyRef": {"name": "example-db", "key": "DATABASE_URL"}}
    assert values["DEFAULT_STORAGE_DSN"] == {"secretKeyRef": {"name": "example-storage", "key": "DEFAULT_STORAGE_DSN"}}


def test_populate_job_name_follows_content_not_unrelated_fields(spec_dict):
    def job_name(**changes: Any) -> str:
        spec = MultiSiteProjectSpec.model_validate({**spec_dict, **changes})
        return by_kind(render_children(spec, OWNER))["Job"]["metadata"]["name"]

    base = job_name()
    assert base.startswith("example-populate-") and len(base) <= 63
    assert job_name(replicas=5) == base  # scaling does not re-populate
    assert job_name(image="registry.example.com/example/web:1.0.1") != base  # new code re-populates
    more = spec_dict["sites"] + [{"slug": "fr", "id": 4, "name": "France", "live": {"domain": "example.fr"}}]
    assert job_name(sites=more) != base  # new site re-populates
    assert job_name(environment="live") != base  # other domains written


def test_pods_meet_the_restricted_pod_security_standard(spec):
    for o in render_children(spec, OWNER):
        if o["kind"] not in ("Deployment", "Job"):
            continue
        pod = o["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_rendering_without_a_cluster_has_no_owner_reference(spec):
    for o in render_children(spec, Owner(name="example", namespace="default")):
        assert "ownerReferences" not in o["metadata"]


def test_long_project_names_still_fit_dns_labels(spec):
    long = Owner(name="a" * 60, namespace="ns", uid="u")
    for o in render_children(spec, long):
        limit = 253 if o["kind"] == "Ingress" else 63
        assert len(o["metadata"]["name"]) <= limit, o["metadata"]["name"]
