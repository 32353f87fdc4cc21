"""A project's spec parsed once per generation, shared by the domain claims and the reconcile.

Every event of a project or of any of its children used to validate the same spec again (the domain index, the
claim check and the reconcile each did); at 1000 sites that is the reconcile's largest cost after rendering. A
spec never changes without its generation moving, so the parsed result (or the error) is kept per (uid, generation).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .models import MultiSiteProjectSpec
from .packed import unpack

Parsed = MultiSiteProjectSpec | ValidationError


def readable(error: ValidationError) -> str:
    """Pydantic errors as 'spec.sites[1].live.domain: message' lines, the way kubectl users read paths."""
    parts = []
    for err in error.errors():
        path = "spec"
        for loc in err["loc"]:
            path += f"[{loc}]" if isinstance(loc, int) else f".{loc}"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(msg if path == "spec" else f"{path}: {msg}")
    return "; ".join(parts)


def validate(spec: Any) -> Parsed:
    try:
        return MultiSiteProjectSpec.model_validate(spec or {})
    except ValidationError as exc:
        return exc


class SpecCache:
    """Parsed specs by (uid, generation); one entry per live project (a new generation replaces the old)."""

    def __init__(self) -> None:
        self._by_uid: dict[str, tuple[Any, Parsed]] = {}
        self._domains: dict[str, tuple[Parsed, list[str]]] = {}  # served_domains of the parsed spec, by uid

    def parse(self, project: dict[str, Any]) -> Parsed:
        meta = project.get("metadata") or {}
        uid, generation = meta.get("uid"), meta.get("generation")
        if uid is None or generation is None:  # not from the API server (e.g. a file): nothing to key on
            return validate(unpack(project.get("spec")))
        hit = self._by_uid.get(uid)
        if hit is None or hit[0] != generation:
            hit = (generation, validate(unpack(project.get("spec"))))
            self._by_uid[uid] = hit
        return hit[1]

    def domains(self, project: dict[str, Any]) -> list[str]:
        """served_domains of the project's spec, computed once per parse (the claims index asks on every event of
        the project, status events included; test domains are built per site, ~18 ms at 1000 sites)."""
        parsed = self.parse(project)
        uid = (project.get("metadata") or {}).get("uid")
        hit = self._domains.get(uid) if uid else None
        if hit is None or hit[0] is not parsed:
            hit = (parsed, served_domains(parsed))
            if uid:
                self._domains[uid] = hit
        return hit[1]

    def forget(self, uid: str | None) -> None:
        self._by_uid.pop(uid or "", None)
        self._domains.pop(uid or "", None)


def served_domains(parsed: Parsed) -> list[str]:
    """Every host the project serves in its active environment; none while its spec is invalid."""
    if isinstance(parsed, ValidationError):
        return []
    return [h for site in parsed.sites for h in parsed.site_domains(site).names()]
