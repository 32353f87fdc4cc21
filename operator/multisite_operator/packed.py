"""Specs kept as compact JSON text in the long-lived informer caches, expanded only while a reconcile reads them.

The kopf indexes hold every project and child for the operator's lifetime. As Python dicts their specs took most of
that memory (~23-25 MB for 200 projects x 20 sites, bench/ANALYSIS.md): a dict of strings costs several times its
JSON text. A spec is read only by the reconcile of its project (16 at a time), so keeping it as text and parsing it
then (json.loads of a child's spec: tens of microseconds) trades a little CPU for most of that memory.
"""

from __future__ import annotations

import json
from typing import Any

from .obj import Obj


class Packed(str):
    """A JSON document as compact text (a str subclass, so it is never mistaken for a plain string value)."""


def pack(value: Any) -> Packed:
    return Packed(json.dumps(value, separators=(",", ":")))


def unpack(value: Any) -> Any:
    return json.loads(value) if isinstance(value, Packed) else value


def expand(obj: Obj) -> Obj:
    """The object as the API server sent it (its spec a dict again); a new dict, the cached one stays packed."""
    spec = obj.get("spec")
    return {**obj, "spec": unpack(spec)} if isinstance(spec, Packed) else obj
