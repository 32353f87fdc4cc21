"""Per-host routing status, the Routed condition and the Ingress <-> Gateway API handover, on the fake API.

The fake plays the routing layer's controller: `accept` writes an HTTPRoute's parent conditions the way a Gateway
controller does (Traefik's kubernetesgateway provider in tests/serving proves the real one).
"""

from __future__ import annotations

import copy
from typing import Any

from fake_cluster import FakeCluster, example, reconcile
from multisite_operator.reconcile import Reconciler
from multisite_operator.routing_status import hostname_matches

GATEWAY = {"parentRefs": [{"name": "public", "sectionName": "web"}]}
GW_KEY = ("shop", "public")


def gateway_cluster(**gateway: Any) -> tuple[FakeCluster, Reconciler]:
    project = example()
    project["spec"].pop("ingress")
    project["spec"].update(environment="live", gateway={**GATEWAY, **gateway})
    cluster = FakeCluster(project)
    return cluster, Reconciler(cluster, cluster.emit)


def run(r: Reconciler, cluster: FakeCluster, gateways: dict | None = None) -> Any:
    return reconcile(r, cluster, gateways=gateways)


def accept(cluster: FakeCluster, ok: bool = True, reason: str = "Accepted", message: str = "") -> None:
    for (kind, _), route in cluster.objects.items():
        if kind != "HTTPRoute":
            continue
        gen = route["metadata"]["generation"]
        conds = [{"type": "Accepted", "status": "True" if ok else "False", "reason": reason, "message": message,
                  "observedGeneration": gen},
                 {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "observedGeneration": gen}]
        route["status"] = {"parents": [{"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                                      "name": "public", "sectionName": "web"},
                                        "controllerName": "traefik.io/gateway-controller", "conditions": conds}]}


def gateway_obj(*listeners: dict) -> dict:
    return {"metadata": {"name": "public", "namespace": "shop"}, "spec": {"listeners": list(listeners)}}


def hosts(cluster: FakeCluster) -> dict[str, tuple[str, str, str]]:
    return {h["name"]: (h["role"], h["routed"], h["reason"]) for s in cluster.project["status"]["sites"]
            for h in s["hosts"]}


def condition(cluster: FakeCluster, type_: str) -> dict:
    return next(c for c in cluster.project["status"]["conditions"] if c["type"] == type_)


def test_every_host_is_pending_until_the_gateway_accepts_then_routed_and_idle():
    cluster, r = gateway_cluster()
    run(r, cluster)
    assert cluster.named("HTTPRoute") == ["example-site-de", "example-site-gh", "example-site-us",
                                          "example-site-us.redirect"]
    assert cluster.named("Ingress") == []
    assert hosts(cluster)["www.example.us"] == ("redirect", "Unknown", "Pending")
    assert condition(cluster, "Routed")["status"] == "Unknown"
    assert cluster.project["status"]["routedHosts"] == "0/5"
    accept(cluster)
    run(r, cluster)
    assert hosts(cluster) == {"example.de": ("primary", "True", "Accepted"), "www.example.de": ("alias", "True", "Accepted"),
                              "example.gh": ("primary", "True", "Accepted"), "example.us": ("primary", "True", "Accepted"),
                              "www.example.us": ("redirect", "True", "Accepted")}
    assert condition(cluster, "Routed")["status"] == "True"
    assert cluster.project["status"]["routedHosts"] == "5/5"
    assert run(r, cluster).writes == 0


def test_a_route_the_gateway_rejects_says_why_and_ready_does_not_depend_on_it():
    cluster, r = gateway_cluster()
    cluster.settle(r)
    accept(cluster, ok=False, reason="NotAllowedByListeners", message="namespace not allowed")
    run(r, cluster)
    routed = condition(cluster, "Routed")
    assert routed["status"] == "False" and routed["reason"] == "NotAllowedByListeners"
    assert "namespace not allowed" in routed["message"]
    assert condition(cluster, "Ready")["status"] == "True"  # informational: Ready is about the workloads
    assert ("Warning", "NotAllowedByListeners") in [(t, r) for t, r, _ in cluster.events]


def test_a_host_no_listener_allows_is_false_although_its_route_is_accepted():
    cluster, r = gateway_cluster()
    run(r, cluster)
    accept(cluster)
    gw = {GW_KEY: gateway_obj({"name": "web", "hostname": "*.example.de"}, {"name": "other"})}
    run(r, cluster, gw)
    got = hosts(cluster)
    assert got["www.example.de"] == ("alias", "True", "Accepted")
    assert got["example.de"] == ("primary", "False", "NoMatchingListenerHostname")
    de = next(h for h in cluster.project["status"]["sites"][0]["hosts"] if h["name"] == "example.de")
    assert de["message"] == "listener web of Gateway shop/public does not allow example.de (its hostname: *.example.de)"
    assert cluster.project["status"]["routedHosts"] == "1/5"
    assert condition(cluster, "Routed")["reason"] == "NoMatchingListenerHostname"


def test_stale_route_status_counts_as_pending_after_a_host_is_added():
    cluster, r = gateway_cluster()
    run(r, cluster)
    accept(cluster)
    sites = copy.deepcopy(cluster.project["spec"]["sites"])
    sites[1]["live"]["aliases"] = ["www.example.gh"]
    cluster.edit_spec(sites=sites)
    run(r, cluster)
    assert hosts(cluster)["www.example.gh"] == ("alias", "Unknown", "Pending")
    assert hosts(cluster)["example.gh"] == ("primary", "Unknown", "Pending")  # its route's generation moved
    assert hosts(cluster)["example.de"] == ("primary", "True", "Accepted")


def test_without_the_gateway_api_nothing_is_applied_and_ready_says_why():
    cluster, r = gateway_cluster()
    cluster.served.clear()
    run(r, cluster)
    assert cluster.objects == {}
    ready = condition(cluster, "Ready")
    assert ready["reason"] == "GatewayAPIMissing" and "Gateway API CRDs" in ready["message"]


def test_switch_from_ingress_keeps_the_ingress_until_every_route_is_accepted():
    cluster = FakeCluster(example())
    r = Reconciler(cluster, cluster.emit)
    run(r, cluster)
    assert cluster.named("Ingress") == ["example"]
    spec = cluster.project["spec"]
    spec.pop("ingress")
    cluster.edit_spec(gateway=GATEWAY)
    run(r, cluster)
    assert cluster.named("Ingress") == ["example"] and len(cluster.named("HTTPRoute")) == 3
    assert "the Ingress serves until every HTTPRoute is Accepted" in condition(cluster, "Routed")["message"]
    accept(cluster)
    run(r, cluster)
    assert cluster.named("Ingress") == []
    assert ("delete", "Ingress", "example") in cluster.writes
    # and back: the routes go once the Ingress exists
    cluster.edit_spec(gateway=None, ingress={"className": "nginx"})
    cluster.project["spec"].pop("gateway")
    run(r, cluster)
    assert cluster.named("Ingress") == ["example"] and len(cluster.named("HTTPRoute")) == 3
    run(r, cluster)  # the Ingress is in the cache now
    assert cluster.named("HTTPRoute") == []
    assert ("delete", "HTTPRoute", "example-site-de") in cluster.writes


def test_ingress_hosts_are_routed_once_the_controller_publishes_an_address():
    cluster = FakeCluster(example())
    r = Reconciler(cluster, cluster.emit)
    run(r, cluster)
    assert condition(cluster, "Routed")["status"] == "Unknown"
    assert condition(cluster, "Routed")["reason"] == "NoAddress"
    assert not [e for e in cluster.events if e[1] == "NoAddress" and e[0] == "Warning"]
    cluster.objects[("Ingress", "example")]["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
    run(r, cluster)
    assert condition(cluster, "Routed")["status"] == "True"
    assert cluster.project["status"]["routedHosts"] == "3/3"
    assert [h["role"] for h in cluster.project["status"]["sites"][0]["hosts"]] == ["primary"]
    assert cluster.project["status"]["sites"][0]["domains"] == ["de.example-stage.eu.aldryn.io"]  # kept for readers


def test_hostname_intersection_follows_the_gateway_api():
    assert hostname_matches(None, "example.de")
    assert hostname_matches("example.de", "example.de") and not hostname_matches("example.de", "www.example.de")
    assert hostname_matches("*.example.de", "a.b.example.de") and not hostname_matches("*.example.de", "example.de")
    assert hostname_matches("test.example.com", "*.example.com")
    assert hostname_matches("*.example.com", "*.example.com") and hostname_matches("*.a.example.com", "*.example.com")
    assert not hostname_matches("*.example.com", "*.example.net")


# --- cert-manager: read-only, only when its CRD is served ---------------------------------------------------------
def run_with_certs(r: Reconciler, cluster: FakeCluster, certs: dict[str, dict]) -> Any:
    return reconcile(r, cluster, certs=certs.get)


def cert(ready: str, reason: str, message: str = "") -> dict:
    return {"status": {"conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message}]}}


def test_each_sites_certificate_is_reported_when_cert_manager_is_installed():
    cluster = FakeCluster(example())  # ingress.tls enabled: one Certificate per site
    cluster.served.add(("cert-manager.io/v1", "certificates"))
    r = Reconciler(cluster, cluster.emit)
    certs = {"example-tls-de": cert("True", "Ready"),
             "example-tls-gh": cert("False", "Failed", "DNS for gh.example-stage.eu.aldryn.io does not resolve")}
    run_with_certs(r, cluster, certs)
    got = {s["slug"]: s["certificate"] for s in cluster.project["status"]["sites"]}
    assert got["de"] == {"name": "example-tls-de", "ready": "True", "reason": "Ready"}
    assert got["gh"]["ready"] == "False" and "does not resolve" in got["gh"]["message"]
    assert got["us"] == {"name": "example-tls-us", "ready": "Unknown", "reason": "NotFound",
                         "message": "cert-manager has no Certificate of this name (yet)"}
    assert run_with_certs(r, cluster, certs).writes == 0


def test_without_cert_manager_nothing_about_certificates_is_written():
    cluster = FakeCluster(example())
    r = Reconciler(cluster, cluster.emit)
    run_with_certs(r, cluster, {"example-tls-de": cert("True", "Ready")})
    assert all("certificate" not in s for s in cluster.project["status"]["sites"])
    assert ("discovery", "cert-manager.io/v1/certificates") in cluster.reads


def test_a_host_added_is_routed_in_the_first_batch_of_writes_when_its_service_exists():
    cluster, r = gateway_cluster()
    cluster.settle(r)
    accept(cluster)
    sites = copy.deepcopy(cluster.project["spec"]["sites"])
    sites[1]["live"]["aliases"] = ["www.example.gh"]
    cluster.edit_spec(sites=sites)
    run(r, cluster)
    applied = [k for v, k, _ in cluster.writes if v == "apply"]
    assert applied[0] == "HTTPRoute" and applied.index("HTTPRoute") < applied.index("Deployment"), applied


def test_routing_to_a_service_of_the_same_reconcile_waits_for_it():
    cluster, r = gateway_cluster()
    run(r, cluster)
    applied = [n if k == "HTTPRoute" else k for v, k, n in cluster.writes if v == "apply"]
    assert applied.index("Job") < applied.index("Service") < applied.index("example-site-de"), applied
    # A redirect route sends nothing to a Service: it never waits.
    assert applied.index("example-site-us.redirect") < applied.index("Job"), applied


def test_mode_switch_keeps_the_httproutes_on_the_old_workloads_until_the_new_are_available():
    cluster, r = gateway_cluster()
    run(r, cluster)
    accept(cluster)
    cluster.roll_out()
    cluster.finish(cluster.named("Job")[0])
    run(r, cluster)
    before = cluster.objects[("HTTPRoute", "example-site-de")]["spec"]
    cluster.edit_spec(mode="multi-project")
    run(r, cluster)
    assert cluster.objects[("HTTPRoute", "example-site-de")]["spec"] == before, "routes stay on the old mode"
    assert ("Service", "example-web") in cluster.objects
    cluster.roll_out(*cluster.named("Deployment", "example-site-"))
    run(r, cluster)
    backend = cluster.objects[("HTTPRoute", "example-site-de")]["spec"]["rules"][0]["backendRefs"][0]["name"]
    assert backend == "example-site-de" and ("Service", "example-web") not in cluster.objects
