"""Who owns which domain when two projects list the same one: the older claim keeps it.

Today's rule, kept as it was: the project created first (then the lower namespace/name) serves a contested domain;
the younger one is blocked with DomainConflict until the domain is free. Each project's served domains come from
its spec parsed once per (uid, generation) (specs.SpecCache), so checking claims costs no validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .specs import SpecCache, served_domains

Claim = tuple[str, str, str]  # (creationTimestamp, namespace, name): sorts oldest first
ProjectKey = tuple[str, str]


def claim(project: Mapping[str, Any]) -> Claim:
    meta = project.get("metadata") or {}
    return meta.get("creationTimestamp", ""), meta.get("namespace", ""), meta.get("name", "")


def claimed_domains(specs: SpecCache, project: Mapping[str, Any]) -> dict[str, Claim]:
    """The index entry of one project: each domain it serves -> its claim."""
    mine = claim(project)
    return {host: mine for host in served_domains(specs.parse(dict(project)))}


def conflicts(specs: SpecCache, key: ProjectKey, project: Mapping[str, Any],
              index: Mapping[str, Any] | None) -> list[str]:
    """Domains an older project already serves, one message each (empty when `index` is not filled yet)."""
    if index is None:
        return []
    mine = (project["metadata"].get("creationTimestamp", ""), *key)
    out = []
    for host in served_domains(specs.parse(dict(project))):
        older = sorted(c for c in index.get(host, []) if c < mine and tuple(c[1:]) != key)
        if older:
            out.append(f"domain {host} is already served by MultiSiteProject {older[0][1]}/{older[0][2]}")
    return out
