"""Domain ownership between projects (the project serving a domain keeps it; else the older claim) and the spec
parsed once per generation."""

from __future__ import annotations

import copy

from fake_cluster import example
from multisite_operator import claims
from multisite_operator.reconcile import site_entries
from multisite_operator.specs import SpecCache, validate


def project(name: str, created: str, uid: str) -> dict:
    p = example()
    p["metadata"].update(name=name, creationTimestamp=created, uid=uid)
    return p


def index_of(*projects: dict, specs: SpecCache) -> dict[str, list]:
    index: dict[str, list] = {}
    for p in projects:
        for host, c in claims.claimed_domains(specs, p).items():
            index.setdefault(host, []).append(c)
    return index


def serving(p: dict) -> dict:
    """The project as its last unblocked reconcile left it: status.sites lists the domains it routes."""
    p["status"] = {"sites": site_entries(validate(p["spec"]))}
    return p


def test_the_serving_project_keeps_a_domain_an_older_project_adds_later():
    specs = SpecCache()
    old = project("first", "2026-01-01T00:00:00Z", "u1")
    young = serving(project("second", "2026-02-01T00:00:00Z", "u2"))
    index = index_of(old, young, specs=specs)
    assert claims.conflicts(specs, ("shop", "second"), young, index) == []
    found = claims.conflicts(specs, ("shop", "first"), old, index)
    assert found[0] == "domain de.example-stage.eu.aldryn.io is already served by MultiSiteProject shop/second"
    # The same answer from the objects alone, as after an operator restart (fresh cache, fresh index).
    fresh = SpecCache()
    assert claims.conflicts(fresh, ("shop", "first"), old, index_of(old, young, specs=fresh)) == found


def test_the_older_project_keeps_a_contested_domain():
    specs = SpecCache()
    old, young = project("first", "2026-01-01T00:00:00Z", "u1"), project("second", "2026-02-01T00:00:00Z", "u2")
    index = index_of(old, young, specs=specs)
    assert claims.conflicts(specs, ("shop", "first"), old, index) == []
    found = claims.conflicts(specs, ("shop", "second"), young, index)
    assert found[0] == ("domain de.example-stage.eu.aldryn.io is claimed first (an older project) by "
                        "MultiSiteProject shop/first")
    assert len(found) == 3
    # Both serving it (both routed while the operator was down, statuses from before): age decides as well.
    index = index_of(serving(old), serving(young), specs=specs)
    assert claims.conflicts(specs, ("shop", "first"), old, index) == []
    assert len(claims.conflicts(specs, ("shop", "second"), young, index)) == 3


def test_an_invalid_spec_claims_nothing():
    specs = SpecCache()
    bad = project("bad", "2026-01-01T00:00:00Z", "u3")
    bad["spec"]["sites"][0]["slug"] = "Not A Slug"
    assert claims.claimed_domains(specs, bad) == {}


def test_the_spec_is_parsed_once_per_generation():
    specs = SpecCache()
    p = example()
    first = specs.parse(p)
    assert specs.parse(copy.deepcopy(p)) is first
    p["metadata"]["generation"] += 1
    assert specs.parse(p) is not first


def test_only_recent_specs_stay_parsed_while_every_projects_domains_stay_current(monkeypatch):
    specs = SpecCache(size=2)
    ps = [project(f"p{i}", "2026-01-01T00:00:00Z", f"u{i}") for i in range(3)]
    for i, p in enumerate(ps):
        p["spec"]["environment"] = "live"
        p["spec"]["sites"][0]["live"]["domain"] = f"p{i}.example.com"
    parsed = [specs.parse(p) for p in ps]
    assert specs.parse(ps[2]) is parsed[2] and specs.parse(ps[1]) is parsed[1]
    assert specs.parse(ps[0]) is not parsed[0]  # the least recent was let go, parsed again
    assert [f"p{i}.example.com" in specs.domains(p) for i, p in enumerate(ps)] == [True] * 3
    parses = []
    monkeypatch.setattr("multisite_operator.specs.validate", lambda spec: parses.append(spec) or parsed[0])
    for p in ps:  # the domains index on every project event: no parsing for a generation it knows
        specs.domains(copy.deepcopy(p))
    assert parses == []
    monkeypatch.undo()
    ps[2]["spec"]["sites"][0]["live"]["domain"] = "renamed.example.com"
    ps[2]["metadata"]["generation"] += 1
    assert "renamed.example.com" in specs.domains(ps[2]) and "p2.example.com" not in specs.domains(ps[2])


def test_a_host_routed_by_an_ingress_the_operator_does_not_manage_is_a_conflict_naming_it():
    specs = SpecCache()
    p = project("first", "2026-01-01T00:00:00Z", "u1")
    ingress = {"spec": {"rules": [{"host": "gh.example-stage.eu.aldryn.io"}, {"http": {}}]}}
    foreign = {h: [("web", "legacy")] for h in claims.ingress_hosts(ingress)}
    index = index_of(p, specs=specs)
    assert claims.conflicts(specs, ("shop", "first"), p, index, foreign) == [
        "domain gh.example-stage.eu.aldryn.io is already routed by Ingress web/legacy, which the operator does not "
        "manage"]
    # The project served it first: the foreign Ingress came second and does not take the host away.
    assert claims.conflicts(specs, ("shop", "first"), serving(p), index_of(serving(p), specs=specs), foreign) == []


def test_a_host_of_an_httproute_the_operator_does_not_manage_on_the_same_gateway_is_a_conflict_naming_it():
    specs = SpecCache()
    p = project("first", "2026-01-01T00:00:00Z", "u1")
    p["spec"]["gateway"] = {"parentRefs": [{"name": "public", "sectionName": "web"}]}
    p["spec"].pop("ingress", None)
    host = "gh.example-stage.eu.aldryn.io"

    def foreign(gateway_namespace: str | None) -> dict:
        route = {"spec": {"hostnames": [host], "parentRefs": [{"name": "public", "namespace": gateway_namespace}]}}
        return {h: [("web", "legacy", claims.route_gateways(route, "web"))] for h in claims.route_hosts(route)}

    index = index_of(p, specs=specs)
    ns = p["metadata"]["namespace"]
    assert claims.conflicts(specs, (ns, "first"), p, index, None, foreign(ns)) == [
        f"domain {host} is already routed by HTTPRoute web/legacy on the same Gateway, which the operator does not "
        "manage"]
    # Another Gateway (here public in the route's own namespace, web) routes other traffic: no conflict.
    assert claims.conflicts(specs, (ns, "first"), p, index, None, foreign(None)) == []
    # Served first: the foreign route came second and takes nothing away.
    assert claims.conflicts(specs, (ns, "first"), serving(p), index_of(serving(p), specs=specs), None,
                            foreign(ns)) == []
    # A project routed by an Ingress is not on any Gateway.
    ingress_routed = project("second", "2026-01-01T00:00:00Z", "u2")
    assert claims.conflicts(specs, (ns, "second"), ingress_routed, index_of(ingress_routed, specs=specs), None,
                            foreign(ns)) == []
