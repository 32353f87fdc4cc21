"""A watch-fed mirror of a few kinds in one namespace, so the benchmark learns of a change when the API server
tells it, not at the next poll.

Why: polling a 1000-site MultiSiteProject (hundreds of KiB) many times a second would load the same two cores
the operator and the control plane run on, and would round every figure up to the poll interval. Each event is
stamped on receipt; ``wait`` returns the stamp of the event that first satisfied the predicate.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

Obj = dict[str, Any]
# short name -> collection path template
PATHS = {
    "msp": "/apis/multisite.dev/v1alpha1/namespaces/{ns}/multisiteprojects",
    "deployments": "/apis/apps/v1/namespaces/{ns}/deployments",
    "services": "/api/v1/namespaces/{ns}/services",
    "ingresses": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
    "jobs": "/apis/batch/v1/namespaces/{ns}/jobs",
}


def raw(api: client.ApiClient, method: str, path: str, query: list[tuple[str, str]] | None = None,
        body: Any = None, content_type: str | None = None, stream: bool = False,
        timeout: Any = (5, 60)) -> Any:
    """One request through the client's auth/TLS; JSON-decoded unless ``stream`` (then the urllib3 response)."""
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    m, url, hdrs, data, post = api.param_serialize(method, path, query_params=query or [], header_params=headers,
                                                   body=body, auth_settings=["BearerToken"])
    resp = api.call_api(m, url, header_params=hdrs, body=data, post_params=post, _request_timeout=timeout)
    if stream:
        if resp.status != 200:
            raise ApiException(status=resp.status, reason=resp.reason, body=resp.read())
        return resp.response
    content = resp.read()
    if not 200 <= resp.status < 300:
        raise ApiException(status=resp.status, reason=resp.reason, body=content.decode(errors="replace"))
    return json.loads(content) if content else None


class Tracker:
    """The current objects of ``kinds`` in ``namespace``, kept by list+watch threads; waiters wake per event."""

    def __init__(self, api: client.ApiClient, namespace: str, kinds: tuple[str, ...] = tuple(PATHS)) -> None:
        self.api = api
        self.namespace = namespace
        self.objects: dict[str, dict[str, Obj]] = {k: {} for k in kinds}
        self.last_event = time.monotonic()
        self._cond = threading.Condition()
        self._stop = False
        self._synced: set[str] = set()
        self._threads = [threading.Thread(target=self._run, args=(k,), daemon=True, name=f"watch-{k}")
                         for k in kinds]
        for t in self._threads:
            t.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self._synced >= set(kinds), timeout=60):
                raise RuntimeError(f"watches in {namespace} did not start")

    def close(self) -> None:
        self._stop = True

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, kind: str) -> None:
        path = PATHS[kind].format(ns=self.namespace)
        while not self._stop:
            try:
                listing = raw(self.api, "GET", path)
                with self._cond:
                    self.objects[kind] = {o["metadata"]["name"]: o for o in listing["items"]}
                    self._synced.add(kind)
                    self._cond.notify_all()
                rv = listing["metadata"]["resourceVersion"]
                while not self._stop:
                    rv = self._watch(kind, path, rv)
            except Exception:  # noqa: BLE001 - 410 Gone or a dropped stream: list again
                if not self._stop:
                    time.sleep(0.2)

    def _watch(self, kind: str, path: str, rv: str) -> str:
        resp = raw(self.api, "GET", path, stream=True, timeout=(5, 400), query=[
            ("watch", "true"), ("resourceVersion", rv), ("allowWatchBookmarks", "true"), ("timeoutSeconds", "300")])
        try:
            for line in iter_resp_lines(resp):
                if self._stop:
                    break
                event = json.loads(line)
                obj = event["object"]
                if event["type"] == "ERROR":
                    raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                rv = obj["metadata"]["resourceVersion"]
                if event["type"] == "BOOKMARK":
                    continue
                now = time.monotonic()
                with self._cond:
                    if event["type"] == "DELETED":
                        self.objects[kind].pop(obj["metadata"]["name"], None)
                    else:
                        self.objects[kind][obj["metadata"]["name"]] = obj
                    self.last_event = now
                    self._cond.notify_all()
        finally:
            resp.release_conn()
        return rv

    def wait(self, predicate: Callable[[dict[str, dict[str, Obj]]], Any], timeout: float, what: str) -> float:
        """Block until ``predicate(objects)`` is truthy; returns the monotonic time of the event that made it so."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if predicate(self.objects):
                    return self.last_event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.namespace}: timed out after {timeout:g} s waiting for {what}")
                self._cond.wait(min(left, 1.0))


# --- predicates: the end points a user would check ------------------------------------------------------------------
def condition(obj: Obj, type_: str) -> str | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c.get("status")
    return None


def project_ready(obj: Obj | None) -> bool:
    """Ready=True for the current generation (what `kubectl wait --for=condition=Ready` would accept, and more)."""
    if not obj:
        return False
    st = obj.get("status") or {}
    return condition(obj, "Ready") == "True" and st.get("observedGeneration") == obj["metadata"].get("generation")


def deployment_available(dep: Obj | None) -> bool:
    """Rolled out: latest generation observed, every wanted replica updated and available."""
    if not dep:
        return False
    want = dep["spec"].get("replicas", 1)
    st = dep.get("status") or {}
    return (st.get("observedGeneration", 0) >= dep["metadata"].get("generation", 0)
            and st.get("updatedReplicas", 0) >= want and st.get("availableReplicas", 0) >= want
            and st.get("replicas", 0) == want
            and (want == 0 or condition(dep, "Available") == "True"))


def job_complete(job: Obj | None) -> bool:
    """Succeeded. Since Kubernetes 1.31 the Job controller sets SuccessCriteriaMet as soon as the pods succeeded
    and Complete only once they have terminated, so either counts (the operator uses the same rule)."""
    return bool(job) and "True" in (condition(job, "Complete"), condition(job, "SuccessCriteriaMet"))


PLURALS = {"Deployment": "deployments", "Service": "services", "Ingress": "ingresses", "Job": "jobs"}


def child(objects: dict[str, dict[str, Obj]], kind: str, name: str) -> Obj | None:
    """The child of this kind and name; a Job by its name without the content hash (the newest complete one first):
    `render` cannot know the digest of the database Secret the operator puts into a Job's name (rotation.py)."""
    if kind != "Job":
        return objects[PLURALS[kind]].get(name)
    stem = name.rsplit("-", 1)[0] + "-"
    jobs = [j for n, j in objects["jobs"].items() if n.startswith(stem)]
    return next((j for j in jobs if job_complete(j)), jobs[0] if jobs else None)


def children_done(expected: list[tuple[str, str]]) -> Callable[[dict[str, dict[str, Obj]]], bool]:
    """All expected (kind, name) children present, Deployments Available and Jobs Complete."""

    def done(objects: dict[str, dict[str, Obj]]) -> bool:
        for kind, name in expected:
            obj = child(objects, kind, name)
            if obj is None:
                return False
            if kind == "Deployment" and not deployment_available(obj):
                return False
            if kind == "Job" and not job_complete(obj):
                return False
        return True

    return done
