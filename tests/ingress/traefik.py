"""Traefik as the cluster's ingress controller, run outside the cluster against the local API server.

Why: the operator's Ingress is only proved when a real controller routes requests by Host to the pods behind it.
Traefik (built by build.sh from Go modules) watches Ingresses of the IngressClass `traefik` with a
least-privilege ServiceAccount token (the RBAC its Ingress provider needs, nothing more) and without its 2 s
provider throttle, so an edit is routed in a fraction of a second. Requests go to its entry point on 127.0.0.1
inside the test run's private network namespace (it connects to pod IPs, see tests/runtime/netns.py).
"""

from __future__ import annotations

import base64
import http.client
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from controlplane.cluster import _set_pdeathsig, free_port
from helpers import wait_for
from runtime.netns import require_private_netns

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CLASS_NAME = "traefik"
CONTROLLER = "traefik.io/ingress-controller"
GATEWAY_CONTROLLER = "traefik.io/gateway-controller"
GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_RESOURCES = ["gatewayclasses", "gateways", "httproutes", "grpcroutes", "tcproutes", "tlsroutes", "udproutes",
                     "referencegrants", "backendtlspolicies", "listenersets"]
NAMESPACE = "multisite-ingress"
SERVICE_ACCOUNT = "traefik"

# What Traefik's Kubernetes Ingress provider reads and writes (nodes: without them its cache never syncs).
RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["services", "secrets", "nodes"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingressclasses"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses/status"], "verbs": ["update"]},
]
# What its Gateway API provider reads and writes (../shared/reference/real-ingress-recipe.md), added with gateway=True.
GATEWAY_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["namespaces", "configmaps"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [GATEWAY_GROUP], "resources": GATEWAY_RESOURCES, "verbs": ["get", "list", "watch"]},
    {"apiGroups": [GATEWAY_GROUP], "resources": [f"{r}/status" for r in GATEWAY_RESOURCES],
     "verbs": ["update", "patch"]},
]


def gateway_crds_dir() -> Path:
    """The Gateway API CRDs gateway-crds.sh fetched (its GATEWAY_API_VERSION line is the one place to bump)."""
    script = (HERE / "gateway-crds.sh").read_text()
    version = next(line.split("=", 1)[1] for line in script.splitlines() if line.startswith("GATEWAY_API_VERSION="))
    path = Path(os.environ.get("GATEWAY_API_CACHE") or REPO / ".cache" / "gateway-api") / version
    if not (path / ".complete").is_file():
        raise FileNotFoundError(f"the Gateway API CRDs are not fetched ({path}); run `make gateway-crds`")
    return path


def install_gateway_crds(api: client.ApiClient) -> list[str]:
    """Server-side apply every standard CRD and wait until each is Established; returns their names."""
    ext = client.ApiextensionsV1Api(api)
    names = []
    for path in sorted(gateway_crds_dir().glob("*.yaml")):
        for body in yaml.safe_load_all(path.read_text()):
            if not body or body.get("kind") != "CustomResourceDefinition":
                continue
            ext.patch_custom_resource_definition(body["metadata"]["name"], body, field_manager="multisite-tests",
                                                 force=True, _content_type="application/apply-patch+yaml")
            names.append(body["metadata"]["name"])
    for name in names:
        wait_for(lambda n=name: any(c.type == "Established" and c.status == "True"
                                    for c in ext.read_custom_resource_definition(n).status.conditions or []),
                 timeout=60, message=f"CRD {name} Established")
    return names


def version() -> str:
    for line in (HERE / "go.mod").read_text().splitlines():
        parts = line.split()
        if parts[:2] == ["require", "github.com/traefik/traefik/v3"]:
            return parts[2]
    raise RuntimeError("tests/ingress/go.mod does not require github.com/traefik/traefik/v3")


def binary() -> Path:
    cache = Path(os.environ.get("TRAEFIK_CACHE") or REPO / ".cache" / "traefik")
    path = cache / version() / "bin" / "traefik"
    if not path.is_file():
        raise FileNotFoundError(f"Traefik is not built ({path}); run `make traefik-build`")
    return path


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def unrouted(self) -> bool:
        """Traefik's own answer for a host no router matches (a backend's 404 is another page)."""
        return self.status == 404 and self.body == b"404 page not found\n"


def _apply(api: client.ApiClient, obj: dict[str, Any]) -> None:
    """Create one object; one left by an earlier run on the same control plane is the same, so 409 is fine."""
    core, rbac, net = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api), client.NetworkingV1Api(api)
    kind, ns = obj["kind"], obj["metadata"].get("namespace")
    create = {
        "Namespace": lambda: core.create_namespace(obj),
        "ServiceAccount": lambda: core.create_namespaced_service_account(ns, obj),
        "ClusterRole": lambda: rbac.create_cluster_role(obj),
        "ClusterRoleBinding": lambda: rbac.create_cluster_role_binding(obj),
        "IngressClass": lambda: net.create_ingress_class(obj),
        "GatewayClass": lambda: client.CustomObjectsApi(api).create_cluster_custom_object(
            GATEWAY_GROUP, "v1", "gatewayclasses", obj),
    }[kind]
    try:
        create()
    except ApiException as exc:
        if exc.status != 409:
            raise


class Traefik:
    """One Traefik process for a control plane; ``request(host, path)`` asks its web entry point.

    ``gateway=True``: its Gateway API provider instead of the Ingress provider (GatewayClass ``traefik``, controller
    traefik.io/gateway-controller); a Gateway's listener must use ``web_port``, the entry point's port. The Gateway
    API CRDs must be installed first (install_gateway_crds)."""

    def __init__(self, api: client.ApiClient, kubeconfig: str, state_dir: Path, *, gateway: bool = False) -> None:
        self.gateway = gateway
        self.api = api
        self.kubeconfig = kubeconfig
        self.state_dir = Path(state_dir)
        self.proc: subprocess.Popen[bytes] | None = None
        self.web_port = free_port()
        self.ping_port = free_port()

    @property
    def log_path(self) -> Path:
        return self.state_dir / "traefik.log"

    def install(self) -> None:
        """Namespace, ServiceAccount, its ClusterRole(Binding) and the IngressClass (or GatewayClass) `traefik`."""
        role = "multisite-test-traefik-gateway" if self.gateway else "multisite-test-traefik"
        rules = RULES + GATEWAY_RULES if self.gateway else RULES
        klass = ({"apiVersion": f"{GATEWAY_GROUP}/v1", "kind": "GatewayClass", "metadata": {"name": CLASS_NAME},
                  "spec": {"controllerName": GATEWAY_CONTROLLER}} if self.gateway else
                 {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": CLASS_NAME},
                  "spec": {"controller": CONTROLLER}})
        for obj in (
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": role}, "rules": rules},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": role},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
             "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}]},
            klass,
        ):
            _apply(self.api, obj)

    def _credentials(self) -> tuple[str, Path, Path]:
        cfg = yaml.safe_load(Path(self.kubeconfig).read_text())
        cluster = cfg["clusters"][0]["cluster"]
        ca = self.state_dir / "ca.crt"
        ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        core = client.CoreV1Api(self.api)
        token = wait_for(lambda: core.create_namespaced_service_account_token(
            SERVICE_ACCOUNT, NAMESPACE, {"spec": {"expirationSeconds": 86400}}).status.token,
            timeout=30, message="a token for Traefik's ServiceAccount")
        token_file = self.state_dir / "token"
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token)
        return cluster["server"], token_file, ca

    def start(self, timeout: float = 60) -> Traefik:
        require_private_netns()
        exe = binary()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.install()
        server, token, ca = self._credentials()
        args = [
            str(exe), "--global.checknewversion=false", "--global.sendanonymoususage=false", "--log.level=INFO",
            f"--entrypoints.web.address=127.0.0.1:{self.web_port}",
            "--ping=true", f"--entrypoints.traefik.address=127.0.0.1:{self.ping_port}",
            "--providers.providersThrottleDuration=0s",
        ]
        provider = "kubernetesgateway" if self.gateway else "kubernetesingress"
        args += [f"--providers.{provider}=true", f"--providers.{provider}.endpoint={server}",
                 f"--providers.{provider}.token={token}", f"--providers.{provider}.certauthfilepath={ca}"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            # No KUBECONFIG: Traefik's Kubernetes client prefers it to the endpoint and token given above, so a
            # KUBECONFIG of another cluster in the caller's environment (as `make demo` exports) would be watched.
            env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True, preexec_fn=_set_pdeathsig)
        finally:
            log.close()

        def pinged() -> bool:
            assert self.proc is not None and self.proc.poll() is None, f"traefik exited:\n{self.log_tail()}"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.ping_port, timeout=1)
                conn.request("GET", "/ping")
                return conn.getresponse().status == 200
            except OSError:
                return False

        wait_for(pinged, timeout=timeout, interval=0.1, message="Traefik /ping")
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def request(self, host: str, path: str = "/__site__", timeout: float = 30) -> Response:
        """One GET through Traefik with this Host header; redirects are not followed."""
        conn = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": host})
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def cleanup_cluster_objects(api: client.ApiClient) -> None:
    """Remove what install() created (for scripts that leave a shared control plane as they found it)."""
    rbac, net, core = client.RbacAuthorizationV1Api(api), client.NetworkingV1Api(api), client.CoreV1Api(api)
    for fn, name in ((rbac.delete_cluster_role_binding, "multisite-test-traefik"),
                     (rbac.delete_cluster_role, "multisite-test-traefik"), (net.delete_ingress_class, CLASS_NAME),
                     (core.delete_namespace, NAMESPACE)):
        try:
            fn(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def wait_answer(traefik: Traefik, host: str, predicate: Any, timeout: float, path: str = "/__site__") -> tuple[
        Response, float]:
    """Ask until ``predicate(response)`` holds; returns the response and the seconds it took."""
    start = time.monotonic()
    last: list[Response] = []

    def check() -> Response | None:
        r = traefik.request(host, path)
        last[:] = [r]
        return r if predicate(r) else None

    try:
        resp = wait_for(check, timeout=timeout, interval=0.1, message=f"answer for {host}")
    except AssertionError as exc:
        got = last[0] if last else None
        raise AssertionError(f"{exc}; last: {got.status if got else None} "
                             f"{got.body[:300] if got else b''!r}") from None
    return resp, time.monotonic() - start
