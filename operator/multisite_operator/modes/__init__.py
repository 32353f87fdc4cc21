"""One module per way of running a project (shared, multi-project) plus the handover between them.

Each mode answers two questions for the reconcile: `plan` (which children to want, given what is observed) and
`report` (the mode's own conditions and what holds Ready back). The types they share are here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..conditions import Condition, Problem
from ..models import MultiSiteProjectSpec
from ..obj import Key, Obj
from ..render import Desired, Owner


@dataclass
class Plan:
    """The desired children by role; `jobs` are the mode's Jobs rendered once, desired or not (their names are
    what status looks for)."""

    desired: Desired
    jobs: Desired
    site_image: str | None = None  # the image the workloads run; None before the first migration (and populate)
    migrated: str | None = None  # the image the database is migrated to (modes/gate.py); None: nothing yet


@dataclass
class Facts:
    """What a mode's report reads: the spec, the children after this reconcile's writes, the last status."""

    spec: MultiSiteProjectSpec
    owner: Owner
    old: Obj
    current: dict[Key, Obj]
    just_applied: set[Key]
    plan: Plan
    sites: list[Obj]  # status.sites entries, one per spec site, which the mode may extend
    known: dict[int, Obj]  # status.knownSites by id, which the mode may extend
    job_message: Callable[[Obj], Awaitable[str]]

    def fresh(self, k: Key) -> Obj | None:
        """An object we have just written has not been rolled out yet, whatever its old status says."""
        return None if k in self.just_applied else self.current.get(k)


@dataclass
class Report:
    """A mode's part of the status: its conditions before Ready, what holds Ready back, and Progressing."""

    before: list[Condition]
    problems: list[Problem]
    ready_message: str
    progressing: Condition
    replicas: int
    selector: str
    image: str | None
    on_the_way: int = 0  # children Ready waits for that are on their way (sites rolling out), not stuck


def listed(slugs: list[str], limit: int = 10) -> str:
    """Site slugs for a condition message, bounded so that 2000 sites still make a readable line."""
    shown = ", ".join(slugs[:limit])
    more = f" and {len(slugs) - limit} more" if len(slugs) > limit else ""
    return f"{len(slugs)} site{'s' if len(slugs) != 1 else ''} ({shown}{more})"
