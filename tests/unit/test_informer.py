"""The pod watch outside kopf: lists in pages, watches from the list's version, resumes from the last version a
watch saw, lists again after 410 Gone, and reports a list as everything there is (deletions missed meanwhile).

The API server is scripted here (one function's protocol); the e2e tests of image pull failures and crash loops
(tests/e2e/test_validation.py) run it against the real control plane.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from multisite_operator.informer import ListWatch
from multisite_operator.runner import in_namespaces


class Response:
    def __init__(self, status: int, body: Any = None, lines: list[Any] | None = None) -> None:
        self.status, self.reason = status, "scripted"
        self._body = json.dumps(body).encode()
        self._lines = [json.dumps(x).encode() + b"\n" for x in lines or []]

    def read(self) -> bytes:
        return self._body

    def __iter__(self) -> Any:
        return iter(self._lines)

    def release_conn(self) -> None:
        pass


class Scripted:
    """Answers each path's requests in order (a list: any path); records each request's path and query; holds the
    thread when out of script."""

    def __init__(self, answers: list[Response] | dict[str, list[Response]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def request(self, method: str, path: str, *, query: list, **_: Any) -> Response:
        with self.lock:
            self.asked.append((path, dict(query)))
            script = self.answers if isinstance(self.answers, list) else self.answers[path]
            answer = script.pop(0) if script else None
        if answer is None:
            threading.Event().wait(60)
        assert answer is not None
        return answer

    def renew(self) -> None:
        pass


def pod(uid: str, version: str, ns: str = "ns") -> dict[str, Any]:
    return {"metadata": {"uid": uid, "namespace": ns, "resourceVersion": version, "name": f"p-{uid}"}}


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def listed(self, namespace: str | None, objects: list[dict[str, Any]]) -> None:
        self.seen.append(("listed", namespace, [o["metadata"]["uid"] for o in objects]))

    def event(self, kind: str, obj: dict[str, Any]) -> None:
        self.seen.append((kind, obj["metadata"]["uid"]))


def run(connection: Scripted, consumer: Recorder, expected: int, namespaces: list[str] | None = None,
        keep: Any = None) -> ListWatch:
    async def scenario() -> ListWatch:
        watch = ListWatch(connection, "/api/v1", "pods", namespaces, "a=b,c", consumer,  # type: ignore[arg-type]
                          asyncio.get_running_loop(), keep=keep)
        watch.start()
        for _ in range(500):
            if len(consumer.seen) >= expected:
                break
            await asyncio.sleep(0.01)
        watch.stop()
        assert watch.synced.is_set()
        return watch
    return asyncio.run(scenario())


def page(items: list[dict[str, Any]], version: str, token: str = "") -> dict[str, Any]:
    return {"kind": "PodList", "apiVersion": "v1", "items": items,
            "metadata": {"resourceVersion": version, **({"continue": token} if token else {})}}


def test_lists_in_pages_then_watches_from_the_lists_version_and_resumes_from_the_last_seen():
    api = Scripted([
        Response(200, page([pod("a", "5")], "9", token="next")),
        Response(200, page([pod("b", "6")], "10")),
        Response(200, lines=[{"type": "MODIFIED", "object": pod("a", "11")},
                             {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}}]),
        Response(200, lines=[{"type": "DELETED", "object": pod("b", "16")}]),
    ])
    seen = Recorder()
    run(api, seen, 3)
    assert seen.seen == [("listed", None, ["a", "b"]), ("MODIFIED", "a"), ("DELETED", "b")]
    assert [p for p, _ in api.asked[:4]] == ["/api/v1/pods"] * 4
    queries = [q for _, q in api.asked]
    assert queries[0]["labelSelector"] == "a=b,c" and queries[0]["limit"] == 500 and "continue" not in queries[0]
    assert queries[1]["continue"] == "next"
    assert queries[2]["watch"] == "1" and queries[2]["resourceVersion"] == "10"  # the list's version
    assert queries[3]["resourceVersion"] == "15"  # the bookmark's: the last version the watch saw


def test_gone_lists_again_and_the_new_list_tells_what_was_deleted_meanwhile():
    api = Scripted([
        Response(200, page([pod("a", "5"), pod("b", "6")], "10")),
        Response(200, lines=[{"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}]),
        Response(200, page([pod("b", "6")], "40")),
        Response(410),  # a watch refused outright as too old: listed again as well
        Response(200, page([], "50")),
    ])
    seen = Recorder()
    run(api, seen, 3)
    assert seen.seen == [("listed", None, ["a", "b"]), ("listed", None, ["b"]), ("listed", None, [])]


def test_named_namespaces_are_watched_each_on_its_own_and_synced_once_all_listed():
    api = Scripted({"/api/v1/namespaces/one/pods": [Response(200, page([pod("a", "5", "one")], "9"))],
                    "/api/v1/namespaces/two/pods": [Response(200, page([], "9"))]})
    seen = Recorder()
    run(api, seen, 2, namespaces=["one", "two"])
    assert sorted(p for p, q in api.asked if "watch" not in q) == [
        "/api/v1/namespaces/one/pods", "/api/v1/namespaces/two/pods"]
    assert sorted(seen.seen, key=str) == [("listed", "one", ["a"]), ("listed", "two", [])]


def test_namespace_patterns_keep_only_the_matching_namespaces_of_a_cluster_wide_watch():
    api = Scripted([Response(200, page([pod("a", "5", "shop-1"), pod("b", "5", "kube-system")], "9")),
                    Response(200, lines=[{"type": "ADDED", "object": pod("c", "10", "other")},
                                         {"type": "ADDED", "object": pod("d", "11", "shop-2")}])])
    seen = Recorder()
    run(api, seen, 2, keep=in_namespaces(["shop-*"]))
    assert seen.seen == [("listed", None, ["a"]), ("ADDED", "d")]
    assert in_namespaces([]) is None


def test_watches_that_end_at_once_are_not_asked_again_in_a_loop():
    """A proxy or a server on its way down may end every watch at once: one watch a second, not hundreds."""
    api = Scripted([Response(200, page([], "9"))] + [Response(200, lines=[]) for _ in range(100)])

    async def scenario() -> int:
        watch = ListWatch(api, "/api/v1", "pods", None, "a=b", Recorder(),  # type: ignore[arg-type]
                          asyncio.get_running_loop())
        watch.start()
        await asyncio.wait_for(watch.synced.wait(), 5)
        await asyncio.sleep(0.5)
        watch.stop()
        return sum("watch" in q for _, q in api.asked)

    assert asyncio.run(scenario()) <= 2
