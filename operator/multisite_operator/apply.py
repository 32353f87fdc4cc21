"""Applying the desired children: what needs a write, in which order, how many at once.

Server-side apply with force owns only the fields the operator sets; `needs_apply` compares just those, so the
server's defaults and other managers' fields never cause a write, and a hand edit of ours always does.

Force would also silently take over an object someone else made under a child's name (adding our controller
ownerReference, so deleting the project would then garbage-collect it). `not_owned` finds such objects before any
write: a child we already have (the informer indexes hold only objects with our controller reference) costs no
read; only a name we are about to create is read first.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from .obj import Obj
from .quantity import parse_quantity

APPLY_CONCURRENCY = 16
# The order requests start in: Jobs (the migration gates every web pod, and a Job is the slowest child to finish:
# its pod must run to completion; behind 100 Services it started 0.6 s late), Deployments (their rollout is the
# cluster's longest work: behind 1000 Services the last one started ~10 s later), Services, then the Ingress or
# HTTPRoutes that route to them. Pods take no environment from Services (enableServiceLinks is off).
ORDER = {"Job": 0, "Deployment": 1, "Service": 2, "Ingress": 3, "HTTPRoute": 3}
ROUTED_FIRST = ORDER["Job"] - 1  # rank of routing whose Services all exist: written alone, before the rest (rank)


R_NOT_OWNED = "NotOwned"  # Ready's reason while a child's name is taken by an object this project does not control


class Applier(Protocol):
    async def apply(self, obj: Obj) -> Obj: ...


class Reader(Protocol):
    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None: ...


def controlled_by(obj: Obj, uid: str) -> bool:
    """True when obj's controller ownerReference is the project with this uid (a same-named project deleted and
    made again has another uid: its leftovers are not ours)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("controller") and r.get("uid") == uid for r in refs)


async def not_owned(api: Reader, objs: list[Obj], observed: dict[tuple[str, str], Obj], uid: str | None) -> list[str]:
    """"Kind name" of each object about to be applied whose name an object not controlled by this project holds."""
    if not uid:
        return []

    async def holder(obj: Obj) -> Obj | None:
        meta = obj["metadata"]
        have = observed.get((obj["kind"], meta["name"]))
        return have if have is not None else await api.get(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])

    found = await asyncio.gather(*(holder(o) for o in objs))
    return [f"{o['kind']} {o['metadata']['name']}" for o, have in zip(objs, found)
            if have is not None and not controlled_by(have, uid)]


def _same_scalar(want: Any, have: Any) -> bool:
    if want == have:
        return True
    if isinstance(want, (str, int, float)) and isinstance(have, (str, int, float)):
        try:  # "0.5" vs "500m", "1024Mi" vs "1Gi": equal quantities are equal
            return parse_quantity(want) == parse_quantity(have)
        except (ValueError, TypeError):
            return str(want) == str(have)
    return False


def covers(have: Any, want: Any) -> bool:
    """True when every field we set has the value we want: the server may add defaults, not change ours.

    Lists must match item by item and in length, so an entry added by hand to a list we own counts as a change.
    """
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and covers(have[k], v) for k, v in want.items() if v is not None)
    if isinstance(want, list):
        return isinstance(have, list) and len(have) == len(want) and all(covers(h, w) for h, w in zip(have, want))
    return _same_scalar(want, have)


def needs_apply(desired: Obj, observed: Obj | None) -> bool:
    if observed is None:
        return True
    return not (covers(observed.get("metadata", {}), desired["metadata"]) and covers(observed.get("spec"), desired["spec"]))


def to_apply(desired: list[Obj], observed: dict[tuple[str, str], Obj],
             memo: dict[tuple[str, str], tuple[Any, str, bool]] | None = None) -> list[Obj]:
    """What differs. Jobs are content-named and immutable: an existing one is never re-applied.

    `memo` (the "compared" entry of rendered.RenderCache.memo) keeps each answer for the very desired object and the observed
    resourceVersion it was given for: the same pair always gives the same answer."""
    out = []
    for d in desired:
        k = (d["kind"], d["metadata"]["name"])
        have = observed.get(k)
        if have is None:
            out.append(d)
            continue
        if d["kind"] == "Job":
            continue
        version = (have.get("metadata") or {}).get("resourceVersion")
        seen = memo.get(k) if memo is not None and version else None
        if seen is not None and seen[0] is d and seen[1] == version:
            differs = seen[2]
        else:
            differs = needs_apply(d, have)
            if memo is not None and version:
                memo[k] = (d, version, differs)
        if differs:
            out.append(d)
    return out


async def apply_all(api: Applier, objs: list[Obj]) -> list[Obj]:
    """Apply every object, at most APPLY_CONCURRENCY requests at once; returns the server's objects (in `objs`'
    order). Requests start in dependency order, but none waits for another kind to finish: no child needs another
    to exist first (an Ingress or Service without ready endpoints answers 503 either way until the pods are Ready),
    and waiting kind by kind made a 100-site multi-project project slower than `kubectl apply` (bench/ANALYSIS.md).
    The one wait: routing to Services that exist already goes first and alone (below).
    """
    sem = asyncio.Semaphore(APPLY_CONCURRENCY)

    async def one(obj: Obj) -> Obj:
        async with sem:  # waiters are served first come, first served: the start order below holds
            return await api.apply(obj)

    ranks = [rank(o, objs) for o in objs]
    order = sorted(range(len(objs)), key=lambda i: ranks[i])
    # Routing to Services that exist already (a host added) is written alone, the rest once it is done: on 2 cores
    # the Job and Deployment writes of the same reconcile, sent alongside, doubled the Ingress write's time and so
    # the time until a new host is routed (bench/ANALYSIS.md, round eleven); they start ~10-20 ms later instead.
    alone = [i for i in order if ranks[i] == ROUTED_FIRST]
    done = await asyncio.gather(*(one(objs[i]) for i in alone), return_exceptions=True)
    done += await asyncio.gather(*(one(objs[i]) for i in order[len(alone):]), return_exceptions=True)
    # Every request has ended; when several failed, the first in dependency order is the one reported, so the
    # same spec always gives the same message (a 422 for the Deployment, not sometimes the Job's).
    for outcome in done:
        if isinstance(outcome, BaseException):
            raise outcome
    results: list[Obj] = [{}] * len(objs)
    for i, obj in zip(order, done):
        results[i] = obj  # type: ignore[assignment]
    return results


def backend_services(obj: Obj) -> set[str]:
    """The Services an Ingress or HTTPRoute sends requests to."""
    spec = obj.get("spec") or {}
    if obj["kind"] == "Ingress":
        return {p["backend"]["service"]["name"] for r in spec.get("rules") or []
                for p in (r.get("http") or {}).get("paths") or [] if "service" in p.get("backend", {})}
    return {b["name"] for r in spec.get("rules") or [] for b in r.get("backendRefs") or []}


def rank(obj: Obj, objs: list[Obj]) -> int:
    """ORDER, except that routing whose Services all exist already starts first: a host added to a project is routed
    at once instead of queueing behind the Job and Deployment writes of the same reconcile. Routing to a Service
    written in this reconcile starts after it."""
    if obj["kind"] in ("Ingress", "HTTPRoute"):
        written = {o["metadata"]["name"] for o in objs if o["kind"] == "Service"}
        if not backend_services(obj) & written:
            return ROUTED_FIRST
    return ORDER[obj["kind"]]


def not_owned_message(taken: list[str]) -> str:
    return (f"{', '.join(taken)} already exist(s) and {'is' if len(taken) == 1 else 'are'} not controlled by this "
            "project: nothing was changed; delete or rename it (or rename the project), then it converges by itself")[:1024]
