"""A project's spec parsed once per generation, shared by the domain claims and the reconcile.

Every event of a project or of any of its children used to validate the same spec again (the domain index, the
claim check and the reconcile each did); at 1000 sites that is the reconcile's largest cost after rendering. A
spec never changes without its generation moving, so the parsed result (or the error) is kept per (uid, generation).
"""

from __future__ import annotations

from collections import OrderedDict
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
    """Parsed specs by (uid, generation) for the `size` projects reconciled most recently; their served domains
    for every live project.

    A parsed 20-site spec holds ~30-40 KB (pydantic models, test domains built per site): kept for all 200 projects
    of the scale run it was ~8 MB of the operator's peak (bench/ANALYSIS.md, round five). Reconciles come in bursts
    per project, so the most recent ones are what a reconcile asks for again; parsing again costs ~0.5 ms at 20
    sites. The domains index asks on every event of every project (status events included), so the served domains,
    a list of strings, stay per (uid, generation) and need no parse once known.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size  # above rendered.CACHE_SIZE, so a rendering's spec object outlives it
        self._by_uid: OrderedDict[str, tuple[Any, Parsed]] = OrderedDict()
        self._domains: dict[str, tuple[Any, list[str]]] = {}  # served_domains by uid, with the generation

    def parse(self, project: dict[str, Any]) -> Parsed:
        meta = project.get("metadata") or {}
        uid, generation = meta.get("uid"), meta.get("generation")
        if uid is None or generation is None:  # not from the API server (e.g. a file): nothing to key on
            return validate(unpack(project.get("spec")))
        hit = self._by_uid.get(uid)
        if hit is None or hit[0] != generation:
            hit = (generation, validate(unpack(project.get("spec"))))
            self._by_uid[uid] = hit
            while len(self._by_uid) > self.size:
                self._by_uid.popitem(last=False)
        self._by_uid.move_to_end(uid)
        return hit[1]

    def domains(self, project: dict[str, Any]) -> list[str]:
        """served_domains of the project's spec, once per generation (test domains are built per site, ~18 ms at
        1000 sites)."""
        meta = project.get("metadata") or {}
        uid, generation = meta.get("uid"), meta.get("generation")
        hit = self._domains.get(uid) if uid else None
        if hit is None or hit[0] != generation or generation is None:
            hit = (generation, served_domains(self.parse(project)))
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
