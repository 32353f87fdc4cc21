"""Counting the operator's API requests on the API server's side, by verb, apart from every other client.

``apiserver_request_total`` has verb and resource labels but no user, and kube-controller-manager, the scheduler
and kwok write Deployments, Jobs and Pods all the time. So the benchmark runs the operator as its own
ServiceAccount (deploy/rbac.yaml's) and gives that identity one API Priority and Fairness FlowSchema per verb: the
API server then counts exactly the operator's requests in
``apiserver_flowcontrol_dispatched_requests_total{flow_schema=...}``.
The FlowSchemas send those requests to ``workload-low``, the priority level every ServiceAccount gets by default,
so the operator is throttled no differently from a real install.
"""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from harness.cluster import ROOT
from harness.cluster import token_kubeconfig
from tracker import raw

# The ServiceAccount deploy/rbac.yaml makes: the benchmark runs the operator with exactly the RBAC users install.
SA_NAMESPACE = "multisite-operator"
SA_NAME = "multisite-operator"
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
SCHEMA_PREFIX = "bench-operator-"


def operator_identity(cluster: Any, api: client.ApiClient, out: Path, grant_namespace_list: bool = False) -> str:
    """deploy/namespace.yaml and deploy/rbac.yaml applied verbatim, one FlowSchema per verb for that
    ServiceAccount, and a kubeconfig holding a token of it (as the pod's in-cluster config would); returns its path.
    """
    for doc in ("namespace.yaml", "rbac.yaml"):
        res = subprocess.run([cluster.kubectl, "--kubeconfig", cluster.kubeconfig, "apply", "-f",
                              str(ROOT / "deploy" / doc)], capture_output=True, text=True)
        if res.returncode:
            raise RuntimeError(f"kubectl apply -f deploy/{doc}: {res.stderr.strip()}")
    if grant_namespace_list:
        # Operators from before `--namespace` turned kopf's namespace scanning off (runner.py) list namespaces,
        # which rbac.yaml does not allow: without this they spend ~54 s in kopf's retries at start. Today's
        # operator needs nothing beyond deploy/rbac.yaml (this is off by default, and the bench proves it).
        rbac = client.RbacAuthorizationV1Api(api)
        rbac.create_cluster_role({"metadata": {"name": "bench-namespace-reader"}, "rules": [
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}]})
        rbac.create_cluster_role_binding({
            "metadata": {"name": "bench-namespace-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "bench-namespace-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": SA_NAME, "namespace": SA_NAMESPACE}]})
    subject = {"kind": "ServiceAccount", "serviceAccount": {"name": SA_NAME, "namespace": SA_NAMESPACE}}
    # Leader election's Lease traffic is counted apart (it matches first: lower precedence number wins).
    _flow_schema(api, "leases", {"subjects": [subject], "resourceRules": [{
        "verbs": ["*"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "namespaces": ["*"]}]},
        precedence=400)
    # So are its Secret GETs (rotation.py's rechecks), to tell them from what a reconcile asks for.
    _flow_schema(api, "secrets", {"subjects": [subject], "resourceRules": [{
        "verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "namespaces": ["*"]}]}, precedence=450)
    for verb in VERBS:
        _flow_schema(api, verb, {"subjects": [subject], "resourceRules": [{
            "verbs": [verb], "apiGroups": ["*"], "resources": ["*"], "clusterScope": True, "namespaces": ["*"]}]})
    _flow_schema(api, "nonresource", {"subjects": [subject], "nonResourceRules": [{
        "verbs": ["*"], "nonResourceURLs": ["*"]}]})
    return str(token_kubeconfig(cluster, api, SA_NAMESPACE, SA_NAME, out))


def _flow_schema(api: client.ApiClient, verb: str, rule: dict, precedence: int = 500) -> None:
    raw(api, "POST", "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas", body={
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
        "metadata": {"name": SCHEMA_PREFIX + verb},
        "spec": {"priorityLevelConfiguration": {"name": "workload-low"}, "matchingPrecedence": precedence,
                 "distinguisherMethod": {"type": "ByUser"}, "rules": [rule]},
    })


def scrape(api: client.ApiClient) -> str:
    """GET /metrics on the API server with the admin credential."""
    m, url, hdrs, data, post = api.param_serialize("GET", "/metrics", header_params={"Accept": "text/plain"},
                                                   auth_settings=["BearerToken"])
    return api.call_api(m, url, header_params=hdrs, body=data, post_params=post, _request_timeout=(5, 60)).read().decode()


class Snapshot:
    """The counters the benchmark reads, at one moment: the operator's requests by verb, every request by
    (verb, resource), and that minus the other."""

    def __init__(self, text: str) -> None:
        self.operator: dict[str, float] = defaultdict(float)
        self.all: dict[tuple[str, str], float] = defaultdict(float)
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "apiserver_flowcontrol_dispatched_requests_total":
                    fs = s.labels.get("flow_schema", "")
                    if fs.startswith(SCHEMA_PREFIX):
                        self.operator[fs.removeprefix(SCHEMA_PREFIX)] += s.value
                elif s.name == "apiserver_request_total":
                    res = s.labels.get("resource", "") + (f"/{s.labels['subresource']}" if s.labels.get("subresource") else "")
                    self.all[(s.labels.get("verb", ""), res)] += s.value

    @classmethod
    def take(cls, api: client.ApiClient) -> Snapshot:
        return cls(scrape(api))

    def operator_since(self, before: Snapshot) -> dict[str, int]:
        """The operator's requests by verb between two snapshots (verbs with none left out); "leases" holds its
        leader-election requests (any verb) and "secrets" its Secret GETs, which the verbs do not include."""
        out = {v: int(self.operator.get(v, 0) - before.operator.get(v, 0))
               for v in (*VERBS, "secrets", "nonresource", "leases")}
        return {v: n for v, n in out.items() if n}

    def writes_since(self, before: Snapshot) -> dict[str, int]:
        """Every client's writes by 'VERB resource' between two snapshots, as apiserver_request_total counts them."""
        out = {}
        for (verb, res), n in self.all.items():
            d = int(n - before.all.get((verb, res), 0))
            if d and verb in ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"):
                out[f"{verb} {res}"] = d
        return dict(sorted(out.items()))


def operator_total(counts: dict[str, int], verbs: tuple[str, ...] | None = None) -> int:
    return sum(n for v, n in counts.items() if verbs is None or v in verbs)
