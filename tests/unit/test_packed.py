"""The informer caches keep specs as compact JSON text; the reconcile still sees the objects the API server sent."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from multisite_operator.controller import Controller
from multisite_operator.handlers import slim
from multisite_operator.packed import Packed, expand
from multisite_operator.reconcile import Outcome

KEY = ("shop", "example")
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "example-web", "namespace": "shop", "uid": "d1", "generation": 2,
                           "managedFields": [{"manager": "multisite-operator"}],
                           "deletionTimestamp": "2026-01-01T00:00:00Z"},
              "spec": {"replicas": 2, "template": {"spec": {"containers": [
                  {"name": "web", "image": "web:1", "env": [{"name": f"V{i}", "value": "x" * 40} for i in range(50)]}]}}},
              "status": {"readyReplicas": 2}}


def test_slim_keeps_the_spec_as_text_and_expand_gives_it_back():
    kept = slim(DEPLOYMENT)
    assert isinstance(kept["spec"], Packed) and "managedFields" not in kept["metadata"]
    assert kept["metadata"]["deletionTimestamp"]  # the prune skips children already being deleted
    assert expand(kept)["spec"] == DEPLOYMENT["spec"] and expand(kept)["status"] == DEPLOYMENT["status"]
    assert isinstance(kept["spec"], Packed)  # expanding does not unpack the cached object


def test_packed_spec_is_much_smaller_than_the_dict():
    def size(o: Any) -> int:
        if isinstance(o, dict):
            return sys.getsizeof(o) + sum(size(k) + size(v) for k, v in o.items())
        if isinstance(o, list):
            return sys.getsizeof(o) + sum(size(v) for v in o)
        return sys.getsizeof(o)

    assert size(slim(DEPLOYMENT)["spec"]) * 2 < size(DEPLOYMENT["spec"])


def test_the_reconcile_gets_expanded_objects():
    seen: list[Any] = []

    class Rec:
        async def reconcile(self, project: Any, children: Any, *_: Any) -> Outcome:
            seen.append((project, children))
            return Outcome()

    status = {"observedGeneration": 1, "sites": [{"slug": "de", "domains": ["shop.example.de"]}]}
    project = {"apiVersion": "multisite.dev/v1alpha1", "kind": "MultiSiteProject",
               "metadata": {"name": "example", "namespace": "shop", "uid": "u", "generation": 1}, "spec": {"sites": []},
               "status": status}
    kept = slim(project, pack_status=True)  # as projects_idx keeps it: a project's status is text too
    assert isinstance(kept["status"], Packed)
    c = Controller(reconciler=Rec(), indexes={"projects_idx": {KEY: [kept]},  # type: ignore[arg-type]
                                              "deployments_idx": {KEY: [slim(DEPLOYMENT)]}})

    async def scenario() -> None:
        await c.trigger(KEY)
        await c.idle()

    asyncio.run(scenario())
    (got_project, children), = seen
    assert got_project["spec"] == {"sites": []} and got_project["status"] == status
    assert children[0]["spec"] == DEPLOYMENT["spec"] and children[0]["status"] == DEPLOYMENT["status"]


def test_expanded_specs_are_reused_while_their_text_is_the_same():
    from multisite_operator.packed import ExpandCache, pack

    cache = ExpandCache(size=2)
    child = {"kind": "Service", "metadata": {"uid": "u1", "resourceVersion": "5"}, "spec": pack({"ports": [80]})}
    first, again = cache.expand(child), cache.expand(child)
    assert first == again == {**child, "spec": {"ports": [80]}} and first["spec"] is again["spec"]
    assert first is not again  # callers may change the top level; the cached spec stays as it was
    # A status-only change (a Deployment rolling out) brings a new resourceVersion and equal text: not parsed again.
    rolled = {**child, "metadata": {"uid": "u1", "resourceVersion": "6"}, "spec": pack({"ports": [80]}),
              "status": {"ready": 1}}
    assert cache.expand(rolled)["spec"] is first["spec"] and cache.expand(rolled)["status"] == {"ready": 1}
    changed = {**child, "metadata": {"uid": "u1", "resourceVersion": "7"}, "spec": pack({"ports": [81]})}
    latest = cache.expand(changed)["spec"]
    assert latest == {"ports": [81]}
    # Bounded: the oldest entry goes (parsed again when asked for); an object without a uid is simply expanded.
    cache.expand({**child, "metadata": {"uid": "u2"}})
    cache.expand({**child, "metadata": {"uid": "u3"}})
    assert cache.expand(changed)["spec"] == latest and cache.expand(changed)["spec"] is not latest
    assert cache.expand({"kind": "Service", "metadata": {}, "spec": pack({"a": 1})})["spec"] == {"a": 1}


def test_a_discarded_object_is_parsed_again_and_others_are_kept():
    """A deleted project's parsed status (up to ~1 MB at 1000 sites) is not kept until evicted."""
    from multisite_operator.packed import ExpandCache, pack

    cache = ExpandCache(size=4)
    gone, kept = ({"kind": "Service", "metadata": {"uid": uid}, "spec": pack({"port": 80})} for uid in ("u1", "u2"))
    before = {c["metadata"]["uid"]: cache.expand(c)["spec"] for c in (gone, kept)}
    cache.discard("u1")
    assert cache.expand(gone)["spec"] == before["u1"] and cache.expand(gone)["spec"] is not before["u1"]
    assert cache.expand(kept)["spec"] is before["u2"]
    cache.clear()
    assert cache.expand(kept)["spec"] is not before["u2"]


def test_a_reconcile_reading_more_children_than_the_cache_holds_makes_room_for_them():
    """A 1000-site multi-project project has 2002 children: with a fixed 256 entries they evicted each other and
    every reconcile of it parsed them all again."""
    from multisite_operator.packed import ExpandCache, pack

    cache = ExpandCache(size=2)
    children = [{"kind": "Service", "metadata": {"uid": f"u{i}"}, "spec": pack({"port": i})} for i in range(5)]
    cache.reserve(len(children))
    first = [cache.expand(c)["spec"] for c in children]
    assert all(cache.expand(c)["spec"] is spec for c, spec in zip(children, first))
