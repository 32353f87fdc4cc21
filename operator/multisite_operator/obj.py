"""The one name for a Kubernetes object as the operator handles it (a JSON dict), and its identity in a project."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str]  # (kind, name): unique among one project's children, which all live in its namespace
ProjectKey = tuple[str, str]  # (namespace, name) of a project: what the queue, the indexes and the status writer key by


def key(obj: Obj) -> Key:
    return obj["kind"], obj["metadata"]["name"]
