"""`kubectl apply -k deploy/`: what a platform engineer installs, checked against the real API server.

No Kubernetes node here runs containers (kwok fakes the pods; the image itself is built and run by podman in
test_image.py), so the install is proved in three parts: the rendered objects are what a
cluster needs (and say what the image and the CLI expect), the API server accepts every one of them (server-side
dry-run, plus the operator Pod itself under the namespace's restricted Pod Security), and the operator started
with exactly the Deployment's command line, as the Deployment's ServiceAccount, reconciles the example to Ready.
"""

from __future__ import annotations

import copy
import json
import sys
import tomllib
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from kubernetes import client

from multisite_operator.cli import parser

from harness.cluster import CRD_FILE, ROOT, kubectl
from harness.operator_process import OperatorProcess
from harness.project import apply_example_secrets, create_project, example_project, wait_condition

NAMESPACE = "multisite-operator"
ACCOUNT = "multisite-operator"
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def rendered(cluster) -> list[Obj]:
    """`kubectl kustomize deploy/`: the objects `kubectl apply -k deploy/` sends."""
    return [d for d in yaml.safe_load_all(kubectl(cluster, "kustomize", "deploy/", check=True).stdout) if d]


def one(objs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} rendered"
    return found[0]


def container(objs: list[Obj]) -> Obj:
    (c,) = one(objs, "Deployment", "multisite-operator")["spec"]["template"]["spec"]["containers"]
    return c


def image_entrypoint() -> list[str]:
    df = DockerfileParser(str(ROOT / "Dockerfile"))
    (entry,) = [json.loads(i["value"]) for i in df.structure if i["instruction"] == "ENTRYPOINT"]
    return entry


def test_kustomize_renders_the_whole_install(rendered):
    kinds = {o["kind"] for o in rendered}
    assert {"Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
            "Deployment", "Service"} <= kinds
    for obj in rendered:
        if obj["kind"] not in ("Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"].get("namespace") == NAMESPACE, f"{obj['kind']} {obj['metadata']['name']}"
    assert one(rendered, "Namespace", NAMESPACE)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == \
        "restricted"
    # The CRD is the generated one (crds/multisiteprojects.yaml, checked against the models by test_crd.py).
    assert one(rendered, "CustomResourceDefinition") == yaml.safe_load(CRD_FILE.read_text())
    one(rendered, "ServiceAccount", ACCOUNT)
    bound = [b for b in rendered if b["kind"] in ("ClusterRoleBinding", "RoleBinding")
             and {"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE} in b.get("subjects", [])]
    assert bound, "nothing grants the ServiceAccount any permission"
    for binding in bound:
        one(rendered, binding["roleRef"]["kind"], binding["roleRef"]["name"])  # the role is installed too


def test_deployment_is_highly_available_probed_and_restricted(rendered):
    dep = one(rendered, "Deployment", "multisite-operator")
    pod = dep["spec"]["template"]["spec"]
    c = container(rendered)
    assert dep["spec"]["replicas"] == 2
    assert pod["serviceAccountName"] == ACCOUNT
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert c["image"] == f"multisite-operator:{version}"
    assert "command" not in c, "the image's ENTRYPOINT (multisite-operator run) is the command"

    args = parser().parse_args(["run", *c["args"]])
    assert args.namespace == [], "installed cluster-wide"
    assert args.peering is None, "kopf peering pauses replicas of equal priority"
    assert args.leader_elect, "two replicas need leader election: only the Lease holder reconciles"
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in c.get("env", [])}
    assert env.get("POD_NAME") == "metadata.name" and env.get("POD_NAMESPACE") == "metadata.namespace"

    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    liveness = urlparse(args.liveness)
    assert liveness.hostname == "0.0.0.0", "the kubelet probes the pod IP"
    for probe in ("livenessProbe", "startupProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == liveness.path and ports[get["port"]] == liveness.port, probe
    assert ports["metrics"] == args.metrics_port
    service = one(rendered, "Service", "multisite-operator-metrics")
    assert service["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert args.log_format == "json"

    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and "memory" in c["resources"]["limits"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    assert sc["readOnlyRootFilesystem"] is True


def test_server_side_dry_run_accepts_every_object(cluster, rendered):
    # A dry-run creates nothing, so namespaced objects would find no namespace (and a Pod no ServiceAccount):
    # those two are created for real, harmless and idempotent.
    prerequisites = [one(rendered, "Namespace", NAMESPACE), one(rendered, "ServiceAccount", ACCOUNT)]
    kubectl(cluster, "apply", "--server-side", "--field-manager", "multisite-tests", "-f", "-",
            stdin=yaml.safe_dump_all(prerequisites), check=True)

    # --force-conflicts: on a control plane shared with the rest of the suite the CRD is also applied by the tests'
    # own field manager (tests/e2e/conftest.py); field ownership says nothing about whether the objects are valid.
    done = kubectl(cluster, "apply", "-k", "deploy/", "--server-side", "--dry-run=server", "--force-conflicts", check=True)
    accepted = [line for line in done.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(rendered), done.stdout
    assert "Warning" not in done.stderr, done.stderr  # e.g. "would violate PodSecurity"
    # The README's plain `kubectl apply -k deploy/` (client-side apply: the last-applied annotation must fit).
    done = kubectl(cluster, "apply", "-k", "deploy/", "--dry-run=server", check=True)
    assert len([line for line in done.stdout.splitlines() if line.endswith("(server dry run)")]) == len(rendered)

    # The operator's Pod as the ReplicaSet will create it: admitted under the namespace's restricted profile.
    template = one(rendered, "Deployment", "multisite-operator")["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
           "metadata": {**template["metadata"], "name": "multisite-operator-dry-run", "namespace": NAMESPACE}}
    kubectl(cluster, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod), check=True)
    # ... which is a real check: the same Pod allowed to escalate privileges is refused.
    bad = copy.deepcopy(pod)
    bad["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    refused = kubectl(cluster, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(bad), check=False)
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr


def service_account_kubeconfig(cluster, path: Path) -> Path:
    """A kubeconfig holding a token of the operator's ServiceAccount: what the pod's in-cluster config gives it."""
    token = kubectl(cluster, "create", "token", ACCOUNT, "-n", NAMESPACE, "--duration", "1h", check=True).stdout.strip()
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    server = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [{"name": "local", "cluster": server}],
        "users": [{"name": ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "local", "user": ACCOUNT}}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


# `--namespace` (this test's one addition to the args) makes kopf list and watch namespaces, which the cluster-wide
# install never does; without it kopf retries for about a minute, then carries on. Granted here, in the test only.
NAMESPACED_RUN_RBAC: list[Obj] = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
     "metadata": {"name": "multisite-operator-tests-namespaces"},
     "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
     "metadata": {"name": "multisite-operator-tests-namespaces"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                 "name": "multisite-operator-tests-namespaces"},
     "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}]},
]


def revoke_other_grants(api: client.ApiClient, keep: set[str]) -> None:
    """Bindings of the ServiceAccount left on a reused control plane by older versions of deploy/ would grant what
    the current one may no longer grant: the operator must work with exactly the rendered RBAC."""
    rbac = client.RbacAuthorizationV1Api(api)
    subject = (ACCOUNT, NAMESPACE)
    for b in rbac.list_cluster_role_binding().items:
        if b.metadata.name not in keep and any((s.name, s.namespace) == subject for s in b.subjects or []):
            rbac.delete_cluster_role_binding(b.metadata.name)
    for b in rbac.list_namespaced_role_binding(NAMESPACE).items:
        if b.metadata.name not in keep and any((s.name, s.namespace) == subject for s in b.subjects or []):
            rbac.delete_namespaced_role_binding(b.metadata.name, NAMESPACE)


class DeployedOperator(OperatorProcess):
    """The image's ENTRYPOINT plus the Deployment's args, as the kubelet would start them.

    Only what a laptop cannot share with a pod is changed: the two ports (free local ones instead of 8080/9090)
    and `--namespace` (the test's own, so it touches nothing of other tests on the same control plane).
    """

    def __init__(self, entrypoint: list[str], args: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entrypoint, self.args = entrypoint, args

    @property
    def command(self) -> list[str]:
        parsed = parser().parse_args(["run", *self.args])
        swap = {parsed.liveness: parsed.liveness.replace(f":{urlparse(parsed.liveness).port}/",
                                                         f":{self.health_port}/"),
                str(parsed.metrics_port): str(self.metrics_port)}
        program = str(Path(sys.executable).parent / self.entrypoint[0])  # the console script pip installed
        return [program, *self.entrypoint[1:], *(swap.get(a, a) for a in self.args),
                *(x for ns in self.namespaces for x in ("--namespace", ns))]


def test_operator_runs_with_the_deployment_args_as_its_service_account(cluster, api_client, namespace, crd,
                                                                       rendered, tmp_path):
    rbac = [o for o in rendered if o["kind"] in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                                                  "Role", "RoleBinding")]
    revoke_other_grants(api_client, {o["metadata"]["name"] for o in rbac + NAMESPACED_RUN_RBAC})
    kubectl(cluster, "apply", "--server-side", "--field-manager", "multisite-tests", "-f", "-",
            stdin=yaml.safe_dump_all(rbac + NAMESPACED_RUN_RBAC), check=True)
    c = container(rendered)
    pod_name = f"multisite-operator-{uuid.uuid4().hex[:10]}"
    fields = {"metadata.name": pod_name, "metadata.namespace": NAMESPACE}
    env = {e["name"]: e.get("value") or fields[e["valueFrom"]["fieldRef"]["fieldPath"]] for e in c.get("env", [])}
    proc = DeployedOperator(image_entrypoint(), c["args"], kubeconfig=str(service_account_kubeconfig(
        cluster, tmp_path / "sa.kubeconfig")), namespaces=[namespace], log_path=tmp_path / "operator.log", env=env)
    assert Path(proc.command[0]).name == image_entrypoint()[0] and proc.command[1] == image_entrypoint()[1]
    proc.start()
    try:
        apply_example_secrets(api_client, namespace)
        create_project(api_client, namespace, example_project())
        project = wait_condition(api_client, namespace, "example", "Ready", "True", timeout=120)
        assert {c["type"]: c["status"] for c in project["status"]["conditions"]}["Populated"] == "True"
        lease = client.CoordinationV1Api(api_client).read_namespaced_lease("multisite-operator", NAMESPACE)
        assert lease.spec.holder_identity.startswith(pod_name)
        assert "\nmultisite_leader 1.0\n" in proc.metrics()  # the metrics port of the args, swapped for a free one
        for line in proc.log().splitlines():  # --log-format json from the Deployment's args
            if line.strip():
                assert isinstance(json.loads(line), dict), line
        denied = [line for line in proc.log().splitlines() if "Forbidden" in line]
        assert not denied, f"RBAC denied the operator something: {denied[:3]}"
    except AssertionError as exc:
        raise AssertionError(f"{exc}\noperator log (tail):\n{proc.log()[-4000:]}") from None
    finally:
        proc.stop()

