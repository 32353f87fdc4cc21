"""spec.gateway: HTTPRoutes instead of an Ingress, redirect hosts answered by the Gateway, and the spec's rules."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from multisite_operator.crd import SPEC_RULES
from multisite_operator.models import MESSAGES, MultiSiteProjectSpec
from multisite_operator.render import Owner, render, render_children

OWNER = Owner(name="example", namespace="shop", uid="0000-1111")
GATEWAY = {"parentRefs": [{"name": "public", "namespace": "gateway-system", "sectionName": "web"}]}


def gateway_spec(spec_dict: dict[str, Any], **changes: Any) -> MultiSiteProjectSpec:
    d = {k: v for k, v in spec_dict.items() if k != "ingress"}
    d.update({"environment": "live", "gateway": GATEWAY, **changes})
    return MultiSiteProjectSpec.model_validate(d)


def routes(spec: MultiSiteProjectSpec) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in render_children(spec, OWNER) if o["kind"] == "HTTPRoute"}


def test_gateway_project_gets_httproutes_and_no_ingress(spec_dict):
    objs = render_children(gateway_spec(spec_dict), OWNER)
    assert "Ingress" not in {o["kind"] for o in objs}
    got = routes(gateway_spec(spec_dict))
    assert sorted(got) == ["example-site-de", "example-site-gh", "example-site-us", "example-site-us.redirect"]
    de = got["example-site-de"]
    assert de["spec"]["hostnames"] == ["example.de", "www.example.de"]
    assert de["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public",
                                         "namespace": "gateway-system", "sectionName": "web"}]
    assert de["spec"]["rules"][0]["backendRefs"][0]["name"] == "example-web"
    assert de["metadata"]["ownerReferences"][0]["uid"] == "0000-1111"


def test_redirect_hosts_are_a_301_rule_to_the_canonical_host_without_backends(spec_dict):
    got = routes(gateway_spec(spec_dict))["example-site-us.redirect"]
    assert got["spec"]["hostnames"] == ["www.example.us"]
    (rule,) = got["spec"]["rules"]
    assert "backendRefs" not in rule  # the CRD's CEL forbids backendRefs beside a RequestRedirect filter
    assert rule["filters"] == [{"type": "RequestRedirect", "requestRedirect": {
        "scheme": "http", "hostname": "example.us", "statusCode": 301}}]
    https = routes(gateway_spec(spec_dict, gateway={**GATEWAY, "https": True}))["example-site-us.redirect"]
    assert https["spec"]["rules"][0]["filters"][0]["requestRedirect"]["scheme"] == "https"


def test_multi_project_routes_go_to_each_sites_service(spec_dict):
    got = routes(gateway_spec(spec_dict, mode="multi-project"))
    assert got["example-site-gh"]["spec"]["rules"][0]["backendRefs"][0]["name"] == "example-site-gh"
    assert got["example-site-us.redirect"]["spec"]["rules"][0]["filters"][0]["requestRedirect"]["hostname"] == \
        "example.us"


def test_more_hosts_than_one_route_holds_are_split_into_routes_of_16(spec_dict):
    d = dict(spec_dict)
    sites = [dict(s) for s in d["sites"]]
    sites[0] = {**sites[0], "live": {"domain": "example.de", "aliases": [f"a{i}.example.de" for i in range(20)]}}
    got = routes(gateway_spec(d, sites=sites))
    assert len(got["example-site-de"]["spec"]["hostnames"]) == 16
    assert got["example-site-de.2"]["spec"]["hostnames"] == [f"a{i}.example.de" for i in range(15, 20)]


def test_user_labels_never_replace_the_operators(spec_dict):
    gw = {**GATEWAY, "labels": {"team": "web", "multisite.dev/project": "other"}, "annotations": {"a": "b"}}
    got = routes(gateway_spec(spec_dict, gateway=gw))["example-site-de"]["metadata"]
    assert got["labels"]["team"] == "web" and got["labels"]["multisite.dev/project"] == "example"
    assert got["annotations"] == {"a": "b"}


def test_status_urls_follow_the_gateways_https(spec_dict):
    from multisite_operator.reconcile import site_entries
    assert site_entries(gateway_spec(spec_dict, gateway={**GATEWAY, "https": True}))[0]["url"] == "https://example.de/"


def test_gateway_and_ingress_together_are_rejected_with_what_to_do(spec_dict):
    d = {**spec_dict, "gateway": GATEWAY}
    with pytest.raises(ValidationError, match="mutually exclusive"):
        MultiSiteProjectSpec.model_validate(d)
    ok = MultiSiteProjectSpec.model_validate({**d, "ingress": {"enabled": False}})
    assert "ingress" not in render(ok, OWNER)
    assert any(r["message"] == MESSAGES["routing"] for r in SPEC_RULES)


def test_gateway_needs_a_parent(spec_dict):
    with pytest.raises(ValidationError, match="parentRefs|parent_refs"):
        gateway_spec(spec_dict, gateway={"parentRefs": []})
