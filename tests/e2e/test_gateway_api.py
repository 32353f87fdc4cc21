"""spec.gateway on a real control plane, as deployed: the operator runs with exactly deploy/rbac.yaml.

Without the Gateway API CRDs a gateway project says so (GatewayAPIMissing) and nothing is applied; once the CRDs are
installed (the operator keeps running) the HTTPRoutes appear, a deleted one is put back (the HTTPRoute watch started
when the CRD appeared), and a parent's Accepted condition written as a Gateway controller writes it turns the
per-host status and `kubectl get msp`'s DOMAINS column. The HTTP side is tests/serving/test_gateway.py.
"""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from harness.cluster import deployed_operator_kubeconfig, kubectl, private_control_plane, restricted_namespace
from harness.operator_process import assert_no_permission_denied, assert_no_traceback, running_operator
from harness.project import (
    apply_example_secrets,
    create_project,
    example_project,
    get_project,
    patch_spec,
    wait_condition,
)
from helpers import wait_for
from ingress.traefik import GATEWAY_GROUP, install_gateway_crds

GATEWAY = {"parentRefs": [{"name": "public", "sectionName": "web"}]}


def gateway_project() -> dict:
    project = example_project(environment="live", gateway=GATEWAY)
    project["spec"].pop("ingress")
    return project


def routes(api: client.ApiClient, ns: str) -> list[str]:
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(GATEWAY_GROUP, "v1", ns, "httproutes")["items"]
    return sorted(r["metadata"]["name"] for r in items)


def test_gateway_project_waits_for_the_crds_then_converges_with_the_deployed_rbac(tmp_path):
    with private_control_plane() as cp:
        admin = cp.api_client()
        kubeconfig = deployed_operator_kubeconfig(cp, admin, tmp_path / "sa.kubeconfig")
        ns = restricted_namespace(admin, "t-gateway")
        apply_example_secrets(admin, ns)

        # Both routing layers at once: refused at apply time, saying what to do.
        both = example_project(gateway=GATEWAY)
        with pytest.raises(ApiException) as err:
            create_project(admin, ns, both)
        assert err.value.status == 422
        assert "spec.gateway and spec.ingress are mutually exclusive" in json.loads(err.value.body)["message"]

        with running_operator(str(kubeconfig), [], tmp_path / "operator.log") as op:
            create_project(admin, ns, gateway_project())
            got = wait_condition(admin, ns, "example", "Ready", "False", timeout=60, reason="GatewayAPIMissing")
            ready = next(c for c in got["status"]["conditions"] if c["type"] == "Ready")
            assert "install the Gateway API CRDs" in ready["message"], ready
            assert not client.AppsV1Api(admin).list_namespaced_deployment(ns).items  # nothing applied

            install_gateway_crds(admin)
            want = ["example-site-de", "example-site-gh", "example-site-us", "example-site-us.redirect"]
            wait_for(lambda: routes(admin, ns) == want, timeout=90, message="the project's HTTPRoutes")
            wait_condition(admin, ns, "example", "Ready", "True", timeout=90)
            custom = client.CustomObjectsApi(admin)
            custom.delete_namespaced_custom_object(GATEWAY_GROUP, "v1", ns, "httproutes", "example-site-gh")
            wait_for(lambda: "example-site-gh" in routes(admin, ns), timeout=30, message="deleted HTTPRoute put back")

            project = wait_for(lambda: (p := get_project(admin, ns, "example")).get("status", {}).get("routedHosts")
                               == "0/5" and p, timeout=30, message="routedHosts 0/5")
            routed = next(c for c in project["status"]["conditions"] if c["type"] == "Routed")
            assert routed["status"] == "Unknown" and routed["reason"] == "Pending", routed

            # What a Gateway controller writes on acceptance, for every route.
            for name in want:
                route = custom.get_namespaced_custom_object(GATEWAY_GROUP, "v1", ns, "httproutes", name)
                gen = route["metadata"]["generation"]
                conds = [{"type": t, "status": "True", "reason": t, "message": "", "observedGeneration": gen,
                          "lastTransitionTime": "2026-01-01T00:00:00Z"} for t in ("Accepted", "ResolvedRefs")]
                route["status"] = {"parents": [{"parentRef": {"group": GATEWAY_GROUP, "kind": "Gateway",
                                                              "name": "public", "sectionName": "web"},
                                                "controllerName": "example.com/gateway-controller",
                                                "conditions": conds}]}
                custom.replace_namespaced_custom_object_status(GATEWAY_GROUP, "v1", ns, "httproutes", name, route)
            wait_condition(admin, ns, "example", "Routed", "True", timeout=30)
            table = kubectl(cp, "get", "msp", "-n", ns, check=True).stdout
            assert "DOMAINS" in table and " 5/5 " in table, table

            # An HTTPRoute someone else made on the same Gateway holds a hostname (the Gateway API gives it to the
            # oldest route): adding that host is refused naming the route, and goes through once the route is gone.
            host = "legacy.example.org"
            custom.create_namespaced_custom_object(GATEWAY_GROUP, "v1", ns, "httproutes", {
                "apiVersion": f"{GATEWAY_GROUP}/v1", "kind": "HTTPRoute", "metadata": {"name": "legacy"},
                "spec": {"parentRefs": [{"name": "public", "sectionName": "web"}], "hostnames": [host],
                         "rules": [{"backendRefs": [{"name": "legacy", "port": 80}]}]}})
            sites = get_project(admin, ns, "example")["spec"]["sites"]
            sites[0]["live"]["aliases"] = [*(sites[0]["live"].get("aliases") or []), host]
            patch_spec(admin, ns, "example", {"sites": sites})
            blocked = wait_condition(admin, ns, "example", "Ready", "False", timeout=30, reason="DomainConflict")
            message = next(c for c in blocked["status"]["conditions"] if c["type"] == "Ready")["message"]
            assert f"{host} is already routed by HTTPRoute {ns}/legacy on the same Gateway" in message, message
            mine = f"example-site-{sites[0]['slug']}"
            assert host not in custom.get_namespaced_custom_object(GATEWAY_GROUP, "v1", ns, "httproutes",
                                                                   mine)["spec"]["hostnames"]
            custom.delete_namespaced_custom_object(GATEWAY_GROUP, "v1", ns, "httproutes", "legacy")
            wait_for(lambda: host in custom.get_namespaced_custom_object(GATEWAY_GROUP, "v1", ns, "httproutes",
                                                                         mine)["spec"]["hostnames"],
                     timeout=60, message=f"{host} in {mine} once the other route is gone")
            log = op.log()
            assert_no_permission_denied(log)
            assert_no_traceback(log)
