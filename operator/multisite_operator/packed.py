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
    """Expanded child specs by (uid, resourceVersion), the `size` most recently read.

    A project's reconciles come in bursts while its children roll out, each reading every child again: for a
    100-site multi-project project json.loads of ~200 children per reconcile was the operator's largest own CPU
    cost (bench/ANALYSIS.md). A resourceVersion names one content, so a hit is exact. The spec dicts handed out are
    shared between reconciles, which only read them; the top-level dict is new each time. Bounded, so the memory
    packing saves is not spent again (256 specs: a 100-site multi-project project's children fit, a few MB)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._specs: OrderedDict[tuple[str, str], Any] = OrderedDict()

    def expand(self, obj: Obj) -> Obj:
        spec = obj.get("spec")
        meta = obj.get("metadata") or {}
        k = (meta.get("uid"), meta.get("resourceVersion"))
        if not isinstance(spec, Packed) or None in k:
            return expand(obj)
        found = self._specs.get(k)  # type: ignore[arg-type]
        if found is None:
            found = self._specs[k] = json.loads(spec)  # type: ignore[index]
            if len(self._specs) > self.size:
                self._specs.popitem(last=False)
        else:
            self._specs.move_to_end(k)  # type: ignore[arg-type]
        return {**obj, "spec": found}
