"""Secret rotation: digests that make a new Secret value roll the pods, and when the Secrets are read again.

A pod reads its Secret values once, when its container starts: a rotated DATABASE_URL leaves every running pod on
the old one, and nothing would populate (shared) or migrate (multi-project) the new database. The operator puts a
digest of the values into the pod templates instead of the values themselves: a new value is a new template, so
the Deployment(s) roll, and a new Job name, so the Job runs again.

- `secrets-digest` (web pod templates): every Secret value the pods read: the database and storage references,
  each `spec.env` secretKeyRef and every key of each `spec.envFrom` secretRef. The kubelet resolves all of them at
  container start alike, so a rotation of any of them leaves pods on the old value unless they roll.
- `database-digest` (web pod templates and the populate/migrate Jobs' pod templates, so the Job's content-hash
  name changes): the database reference only. A new database needs its rows and schema; a new API key or storage
  credential does not, and re-running a Job for it would hold Ready back for nothing.

Why a stretched digest and not a plain hash: whoever may read a Deployment (not necessarily its Secrets) reads the
annotation. A sha256 of a long generated URL is safe, but one of a short password lets a reader test guesses
offline at GPU speed. Each value is stretched with PBKDF2-HMAC-SHA256 (10,000 iterations, salted with the
project's uid and the Secret's name and key: equal values in two projects give unrelated digests), computed once
per distinct value per process (about 3 ms), so each guess costs 10,000 times more and no table can be reused.
The uid is no secret (it is in every child's ownerReference), so this slows guessing of a weak password; it
cannot make one strong. Values are never written anywhere; they stay in the operator's memory for redaction.

How soon a rotation is noticed: the operator may not list or watch Secrets (least privilege; a watch would hold
every Secret of the cluster in memory), so it GETs the referenced ones: when the generation changes, while the
project is held back by a problem (not Ready, and not merely migrating, populating or rolling out), and otherwise
once every `--secret-recheck-seconds` per project (a timed reconcile); an ordinary reconcile of an unchanged Ready
or progressing project reads none (zero API requests).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from .conditions import IN_PROGRESS, READY
from .models import GROUP
from .naming import COMPONENT_LABEL
from .obj import Key, Obj

if TYPE_CHECKING:  # render/ imports this module and stays free of the API client
    from .kube import SecretCheck

SECRETS_DIGEST = f"{GROUP}/secrets-digest"
DATABASE_DIGEST = f"{GROUP}/database-digest"
ITERATIONS = 10_000
DEFAULT_RECHECK_SECONDS = 60.0
# While a problem holds a project back its Secrets are read again at most this often (a missing one: on every
# reconcile): fixing a Secret may be the cure. Reading on every reconcile cost two GETs per child event: ~3900
# Secret GETs for 200 new projects (bench); every 5 s while not Ready still ~1000-1700, for projects only on their
# way to Ready (migrating, populating, rolling out), whose Secrets were read at their generation's start.
NOT_READY_RECHECK_SECONDS = 5.0
Entry = tuple[str, str, str | None]  # (Secret name, key, value; None when the Secret or key is absent)


@dataclass(frozen=True)
class SecretDigests:
    """What the pod templates carry instead of Secret values (hex, 32 characters each)."""

    database: str
    everything: str

    def pod_annotations(self) -> dict[str, str]:
        return {SECRETS_DIGEST: self.everything, DATABASE_DIGEST: self.database}

    def job_annotations(self) -> dict[str, str]:
        return {DATABASE_DIGEST: self.database}


@lru_cache(maxsize=8192)
def _stretched(uid: str, name: str, key: str, value: str | None) -> str:
    if value is None:
        return "absent"
    salt = "\0".join(("multisite-operator", uid, name, key)).encode()
    return hashlib.pbkdf2_hmac("sha256", value.encode(), salt, ITERATIONS).hex()


def _combine(uid: str, entries: list[Entry]) -> str:
    parts = sorted({(n, k, _stretched(uid, n, k, v)) for n, k, v in entries})
    return hashlib.sha256(json.dumps([uid, parts]).encode()).hexdigest()[:32]


def digests(uid: str, database: tuple[str, str], entries: list[Entry]) -> SecretDigests:
    """The digests of `entries` (every value the pods read) for project `uid`; `database` is (name, key) of the
    database reference."""
    db = [e for e in entries if e[:2] == database]
    return SecretDigests(database=_combine(uid, db), everything=_combine(uid, entries))


def database_changed(observed: dict[Key, Obj], digest: str) -> bool:
    """The web or site Deployments, or the migration Jobs kept, ran against another database than the Secret names
    now.

    Objects made before digests existed carry none and count as current: an upgrade migrates nothing again. The
    Jobs are looked at too because the Deployments are applied before the Job: if that apply fails half-way, the
    old migration Job (not yet pruned) still says the database moved.
    """
    deployments, jobs = set(), set()
    for (kind, _), child in observed.items():
        component = (child["metadata"].get("labels") or {}).get(COMPONENT_LABEL)
        seen = _template_annotation(child, DATABASE_DIGEST)
        if seen is None:
            continue
        if kind == "Deployment" and component in ("site", "web"):
            deployments.add(seen)
        elif kind == "Job" and component == "migrate":
            jobs.add(seen)
    return bool(deployments - {digest}) or (bool(jobs) and digest not in jobs)


def _template_annotation(obj: Obj, name: str) -> str | None:
    template = (obj.get("spec") or {}).get("template") or {}
    return ((template.get("metadata") or {}).get("annotations") or {}).get(name)


@dataclass
class _Read:
    uid: str | None
    generation: int | None
    at: float
    check: SecretCheck
    digests: SecretDigests | None


class SecretChecks:
    """When the referenced Secrets are read, per project: on a new generation, on every reconcile while one is
    missing, every NOT_READY_RECHECK_SECONDS while a problem holds the project back, and otherwise at most once per
    `interval` seconds; every other reconcile reuses the last read (no request)."""

    def __init__(self, interval: float = DEFAULT_RECHECK_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[tuple[str, str], _Read] = {}  # by (namespace, name)

    async def get(self, project: Obj, old_status: Obj, database: tuple[str, str],
                  read: Callable[[], Awaitable[SecretCheck]]) -> tuple[SecretCheck, SecretDigests | None]:
        """The last read of the project's Secrets, read again when due, and their digests (None without a uid or
        while a required Secret is missing). `database` is (name, key) of spec.database's reference."""
        meta = project["metadata"]
        uid, generation = meta.get("uid"), meta.get("generation")
        last = self._last.get((meta["namespace"], meta["name"]))
        age = self.clock() - last.at if last is not None else 0.0
        if last is None or (last.uid, last.generation) != (uid, generation) or last.check.missing \
                or age >= self.interval or (age >= NOT_READY_RECHECK_SECONDS and not _on_track(old_status, generation)):
            at, check = self.clock(), await read()
            # PBKDF2 releases the GIL: in a worker thread it never holds up the event loop's other reconciles.
            found = None if not uid or check.missing else await asyncio.to_thread(digests, uid, database, check.entries)
            last = _Read(uid, generation, at, check, found)
            self._last[(meta["namespace"], meta["name"])] = last
        return last.check, last.digests

    def due_in(self, project: Obj) -> float | None:
        """Seconds until this project's Secrets are due to be read again (the controller's timed reconcile)."""
        meta = project["metadata"]
        last = self._last.get((meta["namespace"], meta["name"]))
        if last is None or self.interval <= 0:
            return None
        return max(1.0, self.interval - (self.clock() - last.at))

    def forget(self, namespace: str, name: str) -> None:
        self._last.pop((namespace, name), None)

    def forget_all(self) -> None:
        self._last.clear()


def _on_track(status: Obj, generation: int | None) -> bool:
    """Ready=True for this generation, or on its way there (work under way, no failure): the Secrets read at the
    generation's start still hold. Anything else (a failed Job, a crash loop, a blocked spec) may be fixed by a
    Secret, so it is read again soon."""
    if status.get("observedGeneration") != generation:
        return False
    return any(c.get("type") == READY and (c.get("status") == "True" or c.get("reason") in IN_PROGRESS)
               for c in status.get("conditions") or [])
