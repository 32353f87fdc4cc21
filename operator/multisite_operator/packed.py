"""Specs (and project statuses) kept as compact JSON text in the long-lived informer caches, expanded only while a
reconcile reads them.

The kopf indexes hold every project and child for the operator's lifetime. As Python dicts their specs took most of
that memory (~23-25 MB for 200 projects x 20 sites, bench/ANALYSIS.md): a dict of strings costs several times its
JSON text. A spec is read only by the reconcile of its project (16 at a time), so keeping it as text and parsing it
then (json.loads of a child's spec: tens of microseconds) trades a little CPU for most of that memory.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from .obj import Obj


class Packed(str):
    """A JSON document as compact text (a str subclass, so it is never mistaken for a plain string value)."""


def pack(value: Any) -> Packed:
    return Packed(json.dumps(value, separators=(",", ":")))


def unpack(value: Any) -> Any:
    return json.loads(value) if isinstance(value, Packed) else value


def expand(obj: Obj) -> Obj:
    """The object as the API server sent it (its spec and status dicts again); a new dict, the cached one stays
    packed."""
    packed = {k: unpack(v) for k in ("spec", "status") if isinstance(v := obj.get(k), Packed)}
    return {**obj, **packed} if packed else obj


class ExpandCache:
    """Expanded specs (and statuses) by the object's uid, kept while their text is the same, for the `size` most
    recently read.

    A project's reconciles come in bursts while its children roll out, each reading every child again: for a
    100-site multi-project project json.loads of ~200 children per reconcile was the operator's largest own CPU
    cost (bench/ANALYSIS.md). Keyed by the text rather than the resourceVersion, a child whose status alone changed
    (a Deployment rolling out: several events each) is not parsed again; comparing two equal strings costs a small
    fraction of parsing one. The dicts handed out are shared between reconciles, which only read them; the
    top-level dict is new each time. Bounded, so the memory packing saves is not spent again: 256 entries, or all the
    children one reconcile reads when there are more (`reserve`): a 1000-site multi-project project has 2002, and
    with 256 every one of its reconciles parsed them all again (half the operator's CPU in its rollout, round eight).
    Its reconcile holds them expanded at once anyway, so keeping them adds little to the peak."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._values: OrderedDict[tuple[str, str], tuple[str, Any]] = OrderedDict()

    def reserve(self, count: int) -> None:
        """A reconcile is about to read `count` objects: room for all of them, so they do not evict each other."""
        self.size = max(self.size, count)

    def expand(self, obj: Obj, fields: tuple[str, ...] = ("spec",)) -> Obj:
        """The object with `fields` expanded (by default the spec: children's statuses are not packed)."""
        uid = (obj.get("metadata") or {}).get("uid")
        if uid is None:
            return expand(obj)
        values = {f: self.value(uid, f, v) for f in fields if isinstance(v := obj.get(f), Packed)}
        return {**obj, **values} if values else obj

    def put(self, uid: str, field: str, text: Packed, value: Any) -> None:
        """`value` is what `text` parses to, already at hand (the one who packed it): kept as if parsed."""
        self._values[(uid, field)] = (text, value)
        self._values.move_to_end((uid, field))
        while len(self._values) > self.size:
            self._values.popitem(last=False)

    def discard(self, uid: str) -> None:
        """Drop what is kept for `uid`: its object is gone (or no longer remembered), so its parsed form is dead
        weight until evicted."""
        for k in [k for k in self._values if k[0] == uid]:
            del self._values[k]

    def clear(self) -> None:
        self._values.clear()

    def value(self, uid: str, field: str, text: Packed) -> Any:
        """`text` parsed, or the value parsed from the same text last time (shared: read it, do not change it)."""
        k = (uid, field)
        found = self._values.get(k)
        if found is not None and (found[0] is text or found[0] == text):
            self._values.move_to_end(k)
            return found[1]
        value = json.loads(text)
        self.put(uid, field, text, value)
        return value
