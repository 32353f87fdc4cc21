"""Rendered children kept per project while its spec stays the same, so a reconcile renders once per generation.

Most reconciles of a project are follow-ups of its children's events (a Deployment became Available, a Job
finished) with the same spec: rendering 1000 sites again each time cost ~50 ms of CPU on the event loop
(bench/ANALYSIS.md). Rendering is a pure function of the parsed spec, the owner and (multi-project) the image the
sites run; the controller's SpecCache hands out one parsed spec object per (uid, generation), so that object's
identity is the cache key: a new generation is a new object, and the old rendering is dropped with it.

Only the projects reconciled most recently are kept (CACHE_SIZE, as many as reconciles run at once): a project's
reconciles come in bursts (created, then its children's events until Ready), and keeping every project's
rendering would cost more memory than the informer caches themselves (~90 KB per 20-site project).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .models import MultiSiteProjectSpec
from .render import Desired, Owner, render, render_jobs


@dataclass
class _Entry:
    spec: MultiSiteProjectSpec
    owner: Owner
    jobs: Desired
    children: dict[str | None, Desired]  # by site_image
    # What reconciles worked out from these objects (to_apply's comparisons, the limits check): dropped with them.
    memo: dict[str, Any] = field(default_factory=dict)


CACHE_SIZE = 16


class RenderCache:
    """One entry per project uid, the CACHE_SIZE most recent. Callers get fresh dicts (they may drop roles) over
    shared objects that nothing modifies."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._by_uid: OrderedDict[str, _Entry] = OrderedDict()

    def _entry(self, spec: MultiSiteProjectSpec, owner: Owner) -> _Entry | None:
        if owner.uid is None:  # rendered without a cluster: nothing to key on
            return None
        entry = self._by_uid.get(owner.uid)
        if entry is None or entry.spec is not spec or entry.owner != owner:
            entry = _Entry(spec, owner, render_jobs(spec, owner), {})
            self._by_uid[owner.uid] = entry
            while len(self._by_uid) > self.size:
                self._by_uid.popitem(last=False)
        self._by_uid.move_to_end(owner.uid)
        return entry

    def jobs(self, spec: MultiSiteProjectSpec, owner: Owner) -> Desired:
        entry = self._entry(spec, owner)
        return dict(entry.jobs) if entry else render_jobs(spec, owner)

    def children(self, spec: MultiSiteProjectSpec, owner: Owner, site_image: str | None, jobs: Desired) -> Desired:
        entry = self._entry(spec, owner)
        if entry is None:
            return render(spec, owner, site_image, jobs)
        if site_image not in entry.children:
            entry.children = {site_image: render(spec, owner, site_image, entry.jobs)}  # only the latest image
        return dict(entry.children[site_image])

    def memo(self, spec: MultiSiteProjectSpec, owner: Owner) -> dict[str, Any]:
        """Where a reconcile keeps what it worked out from this rendering, for the next reconcile of the same
        generation (dropped with the rendering): comparing a 1000-site Ingress field by field costs ~50 ms, and
        most reconciles see the same objects again."""
        entry = self._entry(spec, owner)
        return entry.memo if entry else {}

    def forget(self, uid: str | None) -> None:
        self._by_uid.pop(uid or "", None)



