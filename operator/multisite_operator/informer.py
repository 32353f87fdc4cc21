"""A list-then-watch of one kind of object, outside kopf, for the events that are many and read little.

kopf takes every watch event through its whole machinery (cause detection, handler selection, per-handler kwargs,
loggers, progress bookkeeping): 1-3 ms of the operator's CPU per event on this machine, and its label filters run
on the client, so every object of the watched namespaces (of the cluster, run cluster-wide) is decoded and taken
through it, the operator's or not. Pods are the most numerous events there are (a pod is created, scheduled,
started, Ready, and again at every roll: ~5000 events while 1000 sites roll out), and of a pod the operator reads
only whether it cannot pull its image or crashes. This asks the API server for the labelled objects only and hands
each event to one plain function on the event loop.

The watch runs in a thread of its own (blocking urllib3, like kube.py; each event is decoded there), lists first
(in pages), then watches from the list's resourceVersion with bookmarks, resumes from the last version it saw
when the server ends a watch, and lists again when that version is too old (410 Gone) or a request failed; a list
names every object there is, so the consumer learns of deletions it missed meanwhile (`listed`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import urllib3

from .kube import ApiError, Connection
from .obj import Obj, ProjectKey as Key
from .observe import only_status_moved

log = logging.getLogger(__name__)
WATCH_SECONDS = 300  # the server ends each watch after this long; the next one resumes from the last version seen
PAGE = 500
MAX_BACKOFF_SECONDS = 8.0  # between lists after failures: an API server back from a restart is seen within it


class Consumer(Protocol):
    def listed(self, namespace: str | None, objects: list[Obj]) -> None:
        """Every object there is now in `namespace` (None: in the cluster), after a list: any other was deleted."""

    def event(self, kind: str, obj: Obj) -> None:
        """One watch event: ADDED, MODIFIED or DELETED."""


class Gone(Exception):
    """The version to watch from is older than the API server keeps (HTTP 410): list again."""


class ListWatch:
    """Lists and watches the objects at `prefix`/`plural` that match `selector`, in each of `namespaces` (None:
    cluster-wide, where `keep` may still leave some out), and hands the `view` of each to `consumer` on `loop`.
    `synced` is set once every namespace was listed."""

    def __init__(self, connection: Connection, prefix: str, plural: str, namespaces: list[str] | None,
                 selector: str, consumer: Consumer, loop: asyncio.AbstractEventLoop, *,
                 keep: Callable[[Obj], bool] | None = None, view: Callable[[Obj], Obj] | None = None) -> None:
        self.connection = connection
        self.scopes: dict[str, str | None] = ({f"{prefix}/namespaces/{ns}/{plural}": ns for ns in namespaces}
                                              if namespaces else {f"{prefix}/{plural}": None})
        self.selector = selector
        self.consumer = consumer
        self.loop = loop
        self.keep = keep or (lambda _: True)
        # What the consumer reads of an object, computed in the watch thread: a list of thousands of pods is never
        # held whole, only these views.
        self.view = view or (lambda obj: obj)
        self.synced = asyncio.Event()
        self._listed: set[str] = set()
        self._stop = threading.Event()

    def start(self) -> None:
        for path in self.scopes:
            threading.Thread(target=self._run, args=(path,), name=f"watch {path}", daemon=True).start()

    def stop(self) -> None:
        """The threads end at their next event or bookmark (daemons: they never hold the process)."""
        self._stop.set()

    # --- in the watch threads -------------------------------------------------------------------------------
    def _run(self, path: str) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                version = self._list(path)
                delay = 0.5
                while not self._stop.is_set():
                    began = time.monotonic()
                    version = self._watch(path, version)
                    if time.monotonic() - began < 1.0:  # ended at once (a proxy, a server shutting down):
                        self._stop.wait(1.0)  # never a loop of watch requests
            except Gone:
                continue  # list again at once: the API server compacted past our version
            except Exception as exc:  # noqa: BLE001 - a watch must outlive any error; it lists again after a pause
                if self._stop.is_set():
                    return
                log.warning("watching %s failed (%s: %s); listing again in %.1fs", path, type(exc).__name__,
                            str(exc)[:300], delay)
                if isinstance(exc, ApiError) and exc.status == 401:
                    self.connection.renew()  # the service account token was rotated
                self._stop.wait(delay + random.uniform(0, delay))
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)

    def _request(self, path: str, query: list[tuple[str, Any]], read_timeout: float) -> urllib3.BaseHTTPResponse:
        response = self.connection.request("GET", path, query=[("labelSelector", self.selector), *query],
                                           headers={"Accept": "application/json"}, body=None,
                                           timeout=urllib3.Timeout(connect=5, read=read_timeout), stream=True)
        if response.status == 410:
            response.release_conn()
            raise Gone()
        if not 200 <= response.status < 300:
            body = response.read().decode(errors="replace")
            response.release_conn()
            raise ApiError(response.status, response.reason or "", body)
        return response

    def _list(self, path: str) -> str:
        objects: list[Obj] = []
        token = ""
        while True:
            query: list[tuple[str, Any]] = [("limit", PAGE)] + ([("continue", token)] if token else [])
            response = self._request(path, query, 60)
            try:
                page = json.loads(response.read())
            finally:
                response.release_conn()
            kind, api_version = page.get("kind", "").removesuffix("List"), page.get("apiVersion")
            for item in page.get("items") or []:  # a list's items name neither, a watch event's objects do
                if self.keep(item):
                    objects.append(self.view({"apiVersion": api_version, "kind": kind, **item}))
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                self._deliver(self._listed_now, path, objects)
                return str(page["metadata"]["resourceVersion"])

    def _watch(self, path: str, version: str) -> str:
        """One watch, until the server ends it; the last version seen (of an event or a bookmark)."""
        query = [("watch", "1"), ("resourceVersion", version), ("allowWatchBookmarks", "true"),
                 ("timeoutSeconds", WATCH_SECONDS)]
        response = self._request(path, query, WATCH_SECONDS + 30)
        try:
            for line in response:
                if self._stop.is_set():
                    break
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise ApiError(int(obj.get("code") or 500), obj.get("reason") or "", obj.get("message") or "")
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind in ("ADDED", "MODIFIED", "DELETED") and self.keep(obj):
                    self._deliver(self.consumer.event, kind, self.view(obj))
        finally:
            response.release_conn()
        return version

    def _deliver(self, func: Callable[..., None], *args: Any) -> None:
        self.loop.call_soon_threadsafe(func, *args)

    # --- on the event loop ----------------------------------------------------------------------------------
    def _listed_now(self, path: str, objects: list[Obj]) -> None:
        self.consumer.listed(self.scopes[path], objects)
        self._listed.add(path)
        if self._listed >= self.scopes.keys():
            self.synced.set()


@dataclass
class ByProject:
    """The consumer of a watch here: what is kept of each object (its view's "body"), by project; `get` reads like a
    kopf index (controller.CHILD_INDEXES). A view names its uid, its project (None: not one to keep, e.g. a pod that
    does not fail) and "read", the part a reconcile acts on (None: every event counts); the project is reconciled
    when an object comes, goes, or changes that part."""

    trigger: Callable[[Key], None]
    deleted: Callable[[Key, Obj], None]  # controller.child_deleted
    # When set: called instead of `trigger` for an event in which only the object's status moved
    # (observe.only_status_moved), which a large project's reconciles may take in batches (controller.py).
    progressed: Callable[[Key], None] | None = None
    by_project: dict[Key, dict[str, Obj]] = field(default_factory=dict)
    _where: dict[str, tuple[Key, Any]] = field(default_factory=dict)  # uid -> (project, what a reconcile reads)

    def get(self, key: Key, default: Any = ()) -> Any:
        found = self.by_project.get(key)
        return list(found.values()) if found else default

    def event(self, kind: str, view: Obj) -> None:
        """An event that leaves what a reconcile reads the same triggers none (Deployment status writes on their
        way, observe.what_reconciles_read; a failing pod's next kubelet message); a Service's every event counts."""
        uid, key = view["uid"], view["project"]
        before = self._where.get(uid)
        if kind == "DELETED" or key is None:  # gone, or no longer kept (an owner reference removed, a pod recovered)
            self._drop(uid, view["body"] if kind == "DELETED" else None)
            return
        self.by_project.setdefault(key, {})[uid] = view["body"]
        self._where[uid] = (key, view["read"])
        if before is not None and before[0] != key:
            self._remove(uid, before[0])
            self.trigger(before[0])
        elif before is not None and view["read"] is not None and before[1] == view["read"]:
            return
        elif before is not None and self.progressed is not None and only_status_moved(before[1], view["read"]):
            self.progressed(key)
            return
        self.trigger(key)

    def listed(self, namespace: str | None, views: list[Obj]) -> None:
        """Everything there is in `namespace` (None: everywhere): what is not among it was deleted meanwhile."""
        for view in views:
            self.event("ADDED", view)
        there = {v["uid"] for v in views}
        for uid, (key, _) in list(self._where.items()):
            if uid not in there and namespace in (None, key[0]):
                self._drop(uid, self.by_project.get(key, {}).get(uid))

    def _drop(self, uid: str, body: Obj | None) -> None:
        before = self._where.pop(uid, None)
        if before is None:
            return
        key = before[0]
        kept = self._remove(uid, key)
        self.deleted(key, body or kept or {})
        self.trigger(key)

    def _remove(self, uid: str, key: Key) -> Obj | None:
        found = self.by_project.get(key, {})
        kept = found.pop(uid, None)
        if not found:
            self.by_project.pop(key, None)
        return kept
