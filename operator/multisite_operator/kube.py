"""The only module that talks to the Kubernetes API: server-side apply, delete, status patch, secret checks, Leases.

Calls go through the official client's ApiClient in worker threads, so the kopf event loop never blocks. Every
write retries 409 Conflict, 429 and 5xx with a short backoff: a flaky or restarting API server costs latency, not a
lost change.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from . import tracing
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
}
RETRYABLE = {409, 429, 500, 502, 503, 504}
SERVED_RECHECK_SECONDS = 60


def load_api_client() -> client.ApiClient:
    """In-cluster credentials in a pod, else the kubeconfig ($KUBECONFIG): what `multisite-operator run` acts as."""
    from kubernetes import config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)
    return client.ApiClient(configuration)


def object_path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    prefix, plural = KINDS[(api_version, kind)]
    path = f"{prefix}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


@dataclass
class SecretCheck:
    """Whether a referenced Secret key exists; values are kept only to redact them from messages."""

    missing: list[str]
    values: list[str]


class KubeApi:
    def __init__(self, api_client: client.ApiClient, *, attempts: int = 6) -> None:
        self.api = api_client
        self.attempts = attempts
        self.requests = 0  # requests sent, for benchmarks and the per-reconcile metric
        self._served: dict[tuple[str, str], tuple[bool, float]] = {}  # discovery answers (serves_sync)

    def _call(self, path: str, method: str, *, body: Any = None, query: list | None = None,
              content_type: str | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        delay = 0.1
        for attempt in range(self.attempts):
            self.requests += 1
            tracer, t0 = tracing.current(), time.monotonic()
            try:
                return json.loads(self._raw(method, path, query=query, headers=headers, body=body) or b"null")
            except ApiException as exc:
                if exc.status not in RETRYABLE or attempt == self.attempts - 1:
                    raise
                log.info("retrying %s %s after HTTP %s", method, path, exc.status)
            except (OSError, urllib3.exceptions.HTTPError) as exc:  # refused/reset while the API server restarts
                # urllib3 wraps a refused connection in MaxRetryError, which is no OSError.
                if attempt == self.attempts - 1:
                    raise
                log.info("retrying %s %s after %s", method, path, type(exc).__name__)
            finally:
                if tracer is not None:
                    tracer.request(method, path, t0, time.monotonic())
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 3.0)
        raise AssertionError("unreachable")

    def _raw(self, method: str, path: str, *, query: list | None, headers: dict[str, str], body: Any = None) -> bytes:
        """One request through the client's own auth, TLS and proxy settings; HTTP errors raise ApiException."""
        m, url, hdrs, data, post = self.api.param_serialize(
            method, path, query_params=query or [], header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        response = self.api.call_api(m, url, header_params=hdrs, body=data, post_params=post, _request_timeout=(5, 30))
        content = response.read()
        if not 200 <= response.status < 300:
            raise ApiException(status=response.status, reason=response.reason, body=content.decode(errors="replace"))
        return content

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
        except ApiException as exc:
            if exc.status != 404:
                raise
            return False
        return True

    def patch_status_sync(self, namespace: str, name: str, status: Obj) -> None:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status"
        try:
            self._call(path, "PATCH", body={"status": status}, content_type="application/merge-patch+json")
        except ApiException as exc:
            if exc.status != 404:  # the project was deleted meanwhile: nothing to report on
                raise

    # --- reads --------------------------------------------------------------------------------------------
    def get_sync(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        """One object of a managed kind by name, None when there is none (read before creating a child)."""
        try:
            return self._call(object_path(api_version, kind, namespace, name), "GET")
        except ApiException as exc:
            if exc.status != 404:
                raise
            return None

    def check_secrets_sync(self, namespace: str, refs: list[tuple[str, str]],
                           visible: list[tuple[str, str | None]] | None = None) -> SecretCheck:
        """`refs` must exist (missing ones are reported); `visible` are the other Secrets the pods can see
        (spec.env secretKeyRef, key None for a whole envFrom Secret): read by name only to redact their values,
        never required here (the kubelet reports those). Each Secret is read once per call."""
        missing: list[str] = []
        values: list[str] = []
        cache: dict[str, Obj | None] = {}

        def read(name: str) -> Obj | None:
            if name not in cache:
                try:
                    cache[name] = self._call(f"/api/v1/namespaces/{namespace}/secrets/{name}", "GET")
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                    cache[name] = None
            return cache[name]

        for name, key in refs:
            secret = read(name)
            data = (secret or {}).get("data") or {}
            if secret is None:
                missing.append(f"Secret {name} not found")
            elif key not in data:
                missing.append(f"Secret {name} has no key {key}")
            else:
                values.append(_decode(data[key]))
        for name, key in visible or []:
            data = (read(name) or {}).get("data") or {}
            values += [_decode(v) for k, v in data.items() if key is None or k == key]
        return SecretCheck(missing=missing, values=values)

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
            except ApiException:
                pass
        return ""

    def serves_sync(self, group_version: str, plural: str) -> bool:
        """Whether the API server serves this resource (its CRD is installed: the Gateway API's HTTPRoute,
        cert-manager's Certificate), from API discovery, which every authenticated user may read. Remembered once
        true; a false answer is asked again after a minute at most (CRDs get installed later)."""
        memo = (group_version, plural)
        known = self._served.get(memo)
        if known is not None and (known[0] or time.monotonic() - known[1] < SERVED_RECHECK_SECONDS):
            return known[0]
        try:
            found = self._call(f"/apis/{group_version}", "GET")
        except ApiException as exc:
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
        """The Lease; ApiException 404 when there is none yet."""
        return self._call(self.lease_path(namespace, name), "GET")

    def create_lease(self, namespace: str, body: Obj) -> Obj:
        """ApiException 409 when another replica created it first."""
        return self._call(self.lease_path(namespace), "POST", body=body)

    def replace_lease(self, namespace: str, name: str, body: Obj) -> Obj:
        """Optimistic: body carries metadata.resourceVersion, so a concurrent write makes this a 409."""
        return self._call(self.lease_path(namespace, name), "PUT", body=body)

    # --- async wrappers: the reconciler runs on kopf's event loop -------------------------------------------
    async def apply(self, obj: Obj) -> Obj:
        return await asyncio.to_thread(self.apply_sync, obj)

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        return await asyncio.to_thread(self.get_sync, api_version, kind, namespace, name)

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        return await asyncio.to_thread(self.delete_sync, api_version, kind, namespace, name)

    async def patch_status(self, namespace: str, name: str, status: Obj) -> None:
        await asyncio.to_thread(self.patch_status_sync, namespace, name, status)

    async def check_secrets(self, namespace: str, refs: list[tuple[str, str]],
                            visible: list[tuple[str, str | None]] | None = None) -> SecretCheck:
        return await asyncio.to_thread(self.check_secrets_sync, namespace, refs, visible)

    async def serves(self, group_version: str, plural: str) -> bool:
        return await asyncio.to_thread(self.serves_sync, group_version, plural)

    async def job_failure(self, namespace: str, job: str) -> str:
        return await asyncio.to_thread(self.job_failure_sync, namespace, job)


def _decode(value: str) -> str:
    return base64.b64decode(value).decode(errors="replace")


def api_message(exc: ApiException) -> str:
    """The Status message of an API error (what kubectl would print), else its body."""
    try:
        return str(json.loads(exc.body or "")["message"])
    except (ValueError, KeyError, TypeError):
        return str(exc.body or exc.reason)
