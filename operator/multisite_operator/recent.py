"""What this operator applied a moment ago, standing in for the informer cache until the cache shows it.

Every child event starts a reconcile, and the next one often runs before the watch has delivered what the last one
applied (separate streams, and a 1000-site Ingress takes the API server a while to send). Without this it found
the child missing or old and applied it again: a second write of the Ingress (~0.4 s at 1000 sites, on the
critical path, bench/ANALYSIS.md), a GET to check the name is not taken, and a Job applied twice. An entry is used
only while the cache's copy is missing or has an older metadata.generation, and for at most TTL seconds. A child
deleted by hand meanwhile is created again: its DELETED event drops the entry (gone), and a reconcile that used an
entry asks for another one when the entry expires (expires_in), in case that event was missed.
"""

from __future__ import annotations

import time

from .obj import Key, Obj, key

TTL = 10.0


def _slim(obj: Obj) -> Obj:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return {**obj, "metadata": meta}


class RecentlyApplied:
    def __init__(self, ttl: float = TTL) -> None:
        self.ttl = ttl
        self._by_project: dict[tuple[str, str], dict[Key, tuple[float, Obj]]] = {}

    def remember(self, project: tuple[str, str], applied: list[Obj]) -> None:
        now = time.monotonic()
        mine = self._by_project.setdefault(project, {})
        for obj in applied:
            mine[key(obj)] = (now, _slim(obj))

    def merge(self, project: tuple[str, str], observed: dict[Key, Obj]) -> dict[Key, Obj]:
        """`observed` with what was applied since, where the cache has not caught up yet; drops what it has."""
        mine = self._by_project.get(project)
        if not mine:
            return observed
        now, out = time.monotonic(), dict(observed)
        for k, (at, obj) in list(mine.items()):
            have = observed.get(k)
            newer = have is None or (have["metadata"].get("generation") or 0) < (obj["metadata"].get("generation") or 0)
            if newer and now - at < self.ttl:
                out[k] = obj
            else:
                del mine[k]
        if not mine:
            del self._by_project[project]
        return out

    def expires_in(self, project: tuple[str, str]) -> float | None:
        """Seconds until the first entry the last merge used expires (None: it used none)."""
        mine = self._by_project.get(project)
        if not mine:
            return None
        return max(0.1, self.ttl - (time.monotonic() - min(at for at, _ in mine.values())))

    def gone(self, project: tuple[str, str], k: Key, uid: str | None) -> None:
        """The watch saw this child deleted: an entry for that very object (same uid) stands for nothing now."""
        entry = self._by_project.get(project, {}).get(k)
        if entry is not None and entry[1]["metadata"].get("uid") == uid:
            self.forget(project, k)

    def forget(self, project: tuple[str, str], k: Key | None = None) -> None:
        """Forget one child (it was deleted) or, with no key, the whole project."""
        if k is None:
            self._by_project.pop(project, None)
        else:
            self._by_project.get(project, {}).pop(k, None)

    def clear(self) -> None:
        """Forget every project (leadership changed: another replica may have applied since)."""
        self._by_project.clear()
