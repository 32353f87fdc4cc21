"""The only module that talks to the Kubernetes API: server-side apply, delete, status patch, secret checks, Leases.

Calls go through one urllib3 pool in worker threads of the KubeApi's own pool (API_THREADS; not asyncio's default
executor, which has min(32, cores + 4) threads, 6 on two cores, and is shared with kopf), so the kopf event loop
never blocks and the controller's RECONCILE_WORKERS never queue behind a pool smaller than themselves. Every
write retries 409 Conflict, 429 and 5xx with a short backoff: a flaky or restarting API server costs latency, not a
lost change.

Credentials are kopf's (`credentials()`: the pod's service account, else the kubeconfig), shared with kopf's own
watches. The official `kubernetes` client is not used: every request here is a plain JSON call on a known path, and
the client cost ~9 MB of the operator's memory (65 -> 56 MB at start) and half of the image (316 -> 184 MB).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

import kopf
import urllib3

from . import metrics, tracing
from .models import GROUP, PLURAL, VERSION
from .obj import Obj

log = logging.getLogger(__name__)
FIELD_MANAGER = "multisite-operator"

# apiVersion/kind -> (path prefix, plural): the few kinds the operator manages.
KINDS: dict[tuple[str, str], tuple[str, str]] = {
    ("apps/v1", "Deployment"): ("/apis/apps/v1", "deployments"),
    ("v1", "Service"): ("/api/v1", "services"),
    ("networking.k8s.io/v1", "Ingress"): ("/apis/networking.k8s.io/v1", "ingresses"),
    ("batch/v1", "Job"): ("/apis/batch/v1", "jobs"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): ("/apis/gateway.networking.k8s.io/v1", "httproutes"),
    (f"{GROUP}/{VERSION}", "MultiSiteProject"): (f"/apis/{GROUP}/{VERSION}", PLURAL),
}
RETRYABLE = {409, 429, 500, 502, 503, 504}
SERVED_RECHECK_SECONDS = 60
# Threads for blocking API calls: as many as the controller runs reconciles at once (controller.RECONCILE_WORKERS),
# each of which sends at most a few requests at a time. Measured (bench/ANALYSIS.md): 16 reconciles on 16 threads
# keep the start-up of 200 projects as fast as unbounded concurrency at a far lower peak memory.
API_THREADS = 16
TIMEOUT = urllib3.Timeout(connect=5, read=30)
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
T = TypeVar("T")


class ApiError(Exception):
    """An HTTP error answer of the API server; `body` is its Status object as text (see api_message)."""

    def __init__(self, status: int, reason: str = "", body: str = "") -> None:
        super().__init__(f"({status}) {reason}")
        self.status, self.reason, self.body = status, reason, body


def credentials(**_: Any) -> kopf.ConnectionInfo:
    """In a pod, its service account (the API server's address from the environment, as client-go reads it, and
    the token file, which the kubelet rotates: read again by every call of this); else $KUBECONFIG or
    ~/.kube/config through kopf's reader (certificates, tokens, basic auth; not exec plugins). kopf's login
    handler returns the same, so kopf's watches and KubeApi act as one identity."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    token = os.path.join(SERVICE_ACCOUNT, "token")
    if host and port and os.path.exists(token):
        with open(token, encoding="utf-8") as f:
            bearer = f.read().strip()
        ca = os.path.join(SERVICE_ACCOUNT, "ca.crt")
        return kopf.ConnectionInfo(server=f"https://{f'[{host}]' if ':' in host else host}:{port}",
                                   ca_path=ca if os.path.exists(ca) else None, token=bearer)
    info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    if info is None:
        raise kopf.LoginError("no service account token and no kubeconfig ($KUBECONFIG or ~/.kube/config)")
    if not (info.token or info.certificate_path or info.certificate_data or info.username):
        raise kopf.LoginError("the kubeconfig's current user has no token, client certificate or password; the "
                              "operator does not run exec or auth-provider plugins: give it a token (e.g. "
                              "`kubectl create token`) or run it in the cluster with its service account")
    return info


class Connection:
    """One urllib3 pool to the API server (thread-safe; API_THREADS connections kept alive) and the headers that
    authenticate; `renew` builds both again from fresh credentials (a 401 after the token file was rotated)."""

    def __init__(self, info: kopf.ConnectionInfo | Callable[[], kopf.ConnectionInfo], *,
                 maxsize: int = API_THREADS) -> None:
        self._load = info if callable(info) else (lambda: info)
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._connect(self._load())

    def _connect(self, info: kopf.ConnectionInfo) -> None:
        self.server = (info.server or "").rstrip("/")
        self.headers = info.as_http_headers()
        tls = {"ssl_context": info.as_ssl_context()} if self.server.startswith("https:") else {}
        if info.proxy_url:
            self.pool: urllib3.PoolManager = urllib3.ProxyManager(info.proxy_url, maxsize=self._maxsize, **tls)
        else:
            self.pool = urllib3.PoolManager(maxsize=self._maxsize, **tls)

    def renew(self) -> None:
        with self._lock:
            self._connect(self._load())

    def request(self, method: str, path: str, *, query: list | None, headers: dict[str, str],
                body: bytes | None, timeout: urllib3.Timeout = TIMEOUT,
                stream: bool = False) -> urllib3.BaseHTTPResponse:
        """`stream`: the body is read by the caller (a watch), not before this returns."""
        url = self.server + path + (f"?{urlencode(query)}" if query else "")
        return self.pool.request(method, url, body=body, headers={**self.headers, **headers}, retries=False,
                                 timeout=timeout, preload_content=not stream)


def object_path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    prefix, plural = KINDS[(api_version, kind)]
    path = f"{prefix}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


@dataclass
class SecretCheck:
    """Whether a referenced Secret key exists; values are kept (in memory only) to redact them from messages, and
    `entries` (name, key, value or None when absent) to digest them (rotation.py)."""

    missing: list[str]
    values: list[str]
    entries: list[tuple[str, str, str | None]] = field(default_factory=list)


def secret_names(refs: list[tuple[str, str]], visible: list[tuple[str, str | None]] | None) -> list[str]:
    """Every Secret to read, once each, in the order referenced."""
    return list(dict.fromkeys([n for n, _ in refs] + [n for n, _ in visible or []]))


def secret_check(refs: list[tuple[str, str]], visible: list[tuple[str, str | None]] | None,
                 found: dict[str, Obj | None]) -> SecretCheck:
    """What the Secrets read (`found`, name -> Secret or None) say about `refs` and `visible`."""
    missing: list[str] = []
    values: list[str] = []
    entries: list[tuple[str, str, str | None]] = []
    for name, key in refs:
        secret = found.get(name)
        data = (secret or {}).get("data") or {}
        value = _decode(data[key]) if key in data else None
        if secret is None:
            missing.append(f"Secret {name} not found")
        elif value is None:
            missing.append(f"Secret {name} has no key {key}")
        else:
            values.append(value)
        entries.append((name, key, value))
    for name, key in visible or []:
        data = (found.get(name) or {}).get("data") or {}
        pairs = [(k, _decode(v)) for k, v in data.items() if key is None or k == key]
        values += [v for _, v in pairs]
        entries += [(name, k, v) for k, v in pairs] or [(name, key or "*", None)]
    return SecretCheck(missing=missing, values=values, entries=entries)


class KubeApi:
    """`guard`, when given, is called before every write request (each retry too) and raises to refuse it: with
    leader election it is the Lease's validity by this replica's clock (leader.LeaderElector.check), so a replica
    whose lease has expired sends nothing, however far into a reconcile it is. `counts_writes` is False for the
    Lease client, whose renewals are not the reconciles' writes."""

    def __init__(self, connection: Connection, *, attempts: int = 6, guard: Callable[[], None] | None = None,
                 counts_writes: bool = True, threads: int = API_THREADS) -> None:
        self.connection = connection
        self.attempts = attempts
        self.guard = guard
        self.counts_writes = counts_writes
        self.requests = 0  # requests sent, for benchmarks and the per-reconcile metric
        # Threads start on demand, so a KubeApi that sends little (the Lease loop's) costs one or two.
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube-api")
        self._served: dict[tuple[str, str], tuple[bool, float]] = {}  # discovery answers (serves_sync)

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)` on this API's own threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(func, *args))

    def _call(self, path: str, method: str, *, body: Any = None, query: list | None = None,
              content_type: str | None = None, accept: str = "application/json") -> Any:
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        delay, renewed, attempt = 0.1, False, 0
        write = method != "GET"
        while True:
            attempt += 1
            if write and self.guard is not None:
                self.guard()  # raises when this replica may no longer write (checked again before each retry)
            if write and self.counts_writes:
                metrics.WRITE_REQUESTS.inc()
            self.requests += 1
            tracer, t0 = tracing.current(), time.monotonic()
            try:
                return json.loads(self._raw(method, path, query=query, headers=headers, body=body) or b"null")
            except ApiError as exc:
                if exc.status == 401 and not renewed:  # the service account token was rotated: read it again
                    self.connection.renew()
                    renewed, attempt = True, attempt - 1  # once, and not counted as an attempt
                    continue
                if exc.status not in RETRYABLE or attempt >= self.attempts:
                    raise
                log.info("retrying %s %s after HTTP %s", method, path, exc.status)
            except (OSError, urllib3.exceptions.HTTPError) as exc:  # refused/reset while the API server restarts
                if attempt >= self.attempts:
                    raise
                log.info("retrying %s %s after %s", method, path, type(exc).__name__)
            finally:
                if tracer is not None:
                    tracer.request(method, path, t0, time.monotonic())
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 3.0)

    def _raw(self, method: str, path: str, *, query: list | None, headers: dict[str, str], body: Any = None) -> bytes:
        """One request; an HTTP error answer raises ApiError."""
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        if data is not None:
            headers = {"Content-Type": "application/json", **headers}
        response = self.connection.request(method, path, query=query, headers=headers, body=data)
        if not 200 <= response.status < 300:
            raise ApiError(response.status, response.reason or "", response.data.decode(errors="replace"))
        return response.data

    # --- writes -------------------------------------------------------------------------------------------
    def apply_sync(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        return self._call(
            path, "PATCH", body=obj, content_type="application/apply-patch+yaml",
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        )

    def delete_sync(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """False when it was already gone (a reconcile that ran before the cache saw an earlier delete)."""
        try:
            self._call(object_path(api_version, kind, namespace, name), "DELETE",
                       body={"propagationPolicy": "Background"})
        except ApiError as exc:
            if exc.status != 404:
                raise
            return False
        return True

    def patch_status_sync(self, namespace: str, name: str, status: Obj) -> str | None:
        """Write the status; the project's resourceVersion after the write (None: the project is gone)."""
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status"
        try:
            out = self._call(path, "PATCH", body={"status": status}, content_type="application/merge-patch+json")
        except ApiError as exc:
            if exc.status != 404:  # the project was deleted meanwhile: nothing to report on
                raise
            return None
        return ((out or {}).get("metadata") or {}).get("resourceVersion") if isinstance(out, dict) else None

    def create_event_sync(self, namespace: str, body: Obj) -> None:
        """A core/v1 Event (events.py builds it)."""
        self._call(f"/api/v1/namespaces/{namespace}/events", "POST", body=body)

    # --- reads --------------------------------------------------------------------------------------------
    def get_sync(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        """One object of a managed kind by name, None when there is none (read before creating a child)."""
        try:
            return self._call(object_path(api_version, kind, namespace, name), "GET")
        except ApiError as exc:
            if exc.status != 404:
                raise
            return None

    def read_secret_sync(self, namespace: str, name: str) -> Obj | None:
        """One referenced Secret (None when it does not exist)."""
        metrics.SECRET_READS.inc()
        try:
            return self._call(f"/api/v1/namespaces/{namespace}/secrets/{name}", "GET")
        except ApiError as exc:
            if exc.status != 404:
                raise
            return None

    def job_failure_sync(self, namespace: str, job: str) -> str:
        """The failed pod's termination message, else its last log lines: what the user needs to fix it."""
        pods = self._call(f"/api/v1/namespaces/{namespace}/pods", "GET",
                          query=[("labelSelector", f"batch.kubernetes.io/job-name={job}")])
        items = sorted(pods.get("items", []), key=lambda p: p["metadata"].get("creationTimestamp", ""))
        for pod in reversed(items):
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
                if term and term.get("message"):
                    return term["message"].strip()
        if items:
            name = items[-1]["metadata"]["name"]
            try:
                text = self._raw("GET", f"/api/v1/namespaces/{namespace}/pods/{name}/log",
                                 query=[("tailLines", "10"), ("limitBytes", "4096")],
                                 headers={"Accept": "text/plain"}).decode(errors="replace").strip()
                if text:
                    return text
            except ApiError:
                pass
        return ""

    def crd_uid_sync(self, name: str) -> str | None:
        """The uid of a CustomResourceDefinition, None when there is none (crdwatch.py). A LIST by name, metadata
        only: the ClusterRole grants list/watch on CRDs, not get, and the schema is not needed."""
        found = self._call("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "GET",
                           query=[("fieldSelector", f"metadata.name={name}")],
                           accept="application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
        items = (found or {}).get("items") or []
        return items[0]["metadata"]["uid"] if items else None
    def serves_sync(self, group_version: str, plural: str, recheck: float = SERVED_RECHECK_SECONDS) -> bool:
        """Whether the API server serves this resource (its CRD is installed: the Gateway API's HTTPRoute,
        cert-manager's Certificate), from API discovery, which every authenticated user may read. Remembered once
        true; a false answer is asked again after `recheck` seconds at most (CRDs get installed later)."""
        memo = (group_version, plural)
        known = self._served.get(memo)
        if known is not None and (known[0] or time.monotonic() - known[1] < recheck):
            return known[0]
        try:
            found = self._call(f"/apis/{group_version}", "GET")
        except ApiError as exc:
            if exc.status != 404:
                raise
            found = None
        served = any(r.get("name") == plural for r in (found or {}).get("resources") or [])
        self._served[memo] = (served, time.monotonic())
        return served

    # --- Leases (leader.py) -------------------------------------------------------------------------------
    @staticmethod
    def lease_path(namespace: str, name: str | None = None) -> str:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        return f"{path}/{name}" if name else path

    def get_lease(self, namespace: str, name: str) -> Obj:
        """The Lease; ApiError 404 when there is none yet."""
        return self._call(self.lease_path(namespace, name), "GET")

    def create_lease(self, namespace: str, body: Obj) -> Obj:
        """ApiError 409 when another replica created it first."""
        return self._call(self.lease_path(namespace), "POST", body=body)

    def replace_lease(self, namespace: str, name: str, body: Obj) -> Obj:
        """Optimistic: body carries metadata.resourceVersion, so a concurrent write makes this a 409."""
        return self._call(self.lease_path(namespace, name), "PUT", body=body)

    # --- async wrappers: the reconciler runs on kopf's event loop -------------------------------------------
    async def apply(self, obj: Obj) -> Obj:
        return await self._run(self.apply_sync, obj)

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        return await self._run(self.get_sync, api_version, kind, namespace, name)

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        return await self._run(self.delete_sync, api_version, kind, namespace, name)

    async def patch_status(self, namespace: str, name: str, status: Obj) -> str | None:
        return await self._run(self.patch_status_sync, namespace, name, status)

    async def check_secrets(self, namespace: str, refs: list[tuple[str, str]],
                            visible: list[tuple[str, str | None]] | None = None) -> SecretCheck:
        """`refs` must exist (missing ones are reported); `visible` are the other Secrets the pods can see
        (spec.env secretKeyRef, key None for a whole envFrom Secret): read by name only to redact their values,
        never required here (the kubelet reports those). Each Secret is read once, all at once (an edit's Ingress
        waits for them)."""
        names = secret_names(refs, visible)
        read = await asyncio.gather(*(self._run(self.read_secret_sync, namespace, n) for n in names))
        return secret_check(refs, visible, dict(zip(names, read)))

    async def create_event(self, namespace: str, body: Obj) -> None:
        await self._run(self.create_event_sync, namespace, body)

    async def crd_uid(self, name: str) -> str | None:
        return await self._run(self.crd_uid_sync, name)

    async def serves(self, group_version: str, plural: str, recheck: float = SERVED_RECHECK_SECONDS) -> bool:
        return await self._run(self.serves_sync, group_version, plural, recheck)

    async def job_failure(self, namespace: str, job: str) -> str:
        return await self._run(self.job_failure_sync, namespace, job)


def _decode(value: str) -> str:
    return base64.b64decode(value).decode(errors="replace")


def api_message(exc: ApiError) -> str:
    """The Status message of an API error (what kubectl would print), else its body."""
    try:
        return str(json.loads(exc.body or "")["message"])
    except (ValueError, KeyError, TypeError):
        return str(exc.body or exc.reason)
