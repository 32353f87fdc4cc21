"""Leader election on a coordination.k8s.io Lease, the way client-go's leaderelection does it.

Why not kopf peering: replicas of one Deployment have equal priority, and on seeing an equal peer kopf pauses every
replica ("Possibly conflicting operators"), so nobody works. A Lease gives exactly one leader and a bounded takeover.

Every replica runs kopf and keeps its watch caches warm; only the Lease holder reconciles (controller.Controller is
switched on and off by this module). The holder renews the Lease every `retry_period`: those renewals are the only
writes of an otherwise idle operator, and they go to the Lease, never to a MultiSiteProject or its children.

Safety margin as in client-go: the leader stops acting when it could not renew for `renew_deadline`, while another
replica takes over only after `lease_duration` without a renewal it observed (measured on its own clock, so clock
skew between nodes does not matter). The leader's validity is `renew_deadline` after the start of its last
successful renewal, by its own monotonic clock (which keeps running while the process is paused). `check` enforces
it before every write request (kube.KubeApi's guard), not only when the loop below wakes up: a leader paused past
its lease (SIGSTOP, a long GC pause, a frozen VM) resumes with its watch streams full of events and its reconciles
half done, and every write they try is refused before it is sent (issue 14 item 2: such a leader made 6 writes).
The loop then stops leading before it tries to renew. On a clean shutdown the leader releases the Lease so a standby takes over at
its next retry instead of waiting for the lease to expire.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


from . import metrics
from .kube import ApiError, KubeApi

log = logging.getLogger(__name__)
SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@dataclass(frozen=True)
class LeaseConfig:
    name: str = "multisite-operator"
    namespace: str = "multisite-operator"
    identity: str = ""
    lease_duration: float = 15.0  # client-go defaults
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("leader election needs retry period < renew deadline < lease duration")


class NotLeader(RuntimeError):
    """A write refused because this replica's Lease is not (or no longer) valid by its own clock."""


def default_identity() -> str:
    """The pod name (POD_NAME from the downward API) or the host name, plus a random suffix for restarts."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def default_namespace() -> str:
    """The operator's own namespace: POD_NAMESPACE, the in-cluster service account's, else multisite-operator."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        with open(SA_NAMESPACE_FILE) as fh:
            return fh.read().strip()
    except OSError:
        return "multisite-operator"


def micro_time(at: datetime | None = None) -> str:
    """metav1.MicroTime as the API server expects it."""
    return (at or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, api: KubeApi, config: LeaseConfig, on_started: Callable[[], None],
                 on_stopped: Callable[[], None]) -> None:
        # One attempt per call: a 409 on the Lease means another replica won this round, so never retry it blindly.
        self.api = api
        self.config = config
        self.on_started = on_started
        self.on_stopped = on_stopped
        self.leading = False
        self._renewed_at = float("-inf")  # monotonic start of the last successful acquire/renew round
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._lease: dict[str, Any] | None = None
        self._last_error = ""

    # --- one round ------------------------------------------------------------------------------------------------
    def _try_acquire_or_renew(self) -> bool:
        c = self.config
        now = micro_time()
        try:
            lease = self.api.get_lease(c.namespace, c.name)
        except ApiError as exc:
            if exc.status != 404:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": c.name, "namespace": c.namespace},
                "spec": {"holderIdentity": c.identity, "leaseDurationSeconds": int(c.lease_duration),
                         "acquireTime": now, "renewTime": now, "leaseTransitions": 0},
            }
            try:
                self._lease = self.api.create_lease(c.namespace, body)
            except ApiError as exc2:
                if exc2.status == 409:  # another replica created it first
                    return False
                raise
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseDurationSeconds"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        duration = float(spec.get("leaseDurationSeconds") or c.lease_duration)
        if holder and holder != c.identity and time.monotonic() < self._observed_at + duration:
            return False  # held by another replica that renewed within its lease duration
        mine = holder == c.identity
        new_spec = {
            **spec,
            "holderIdentity": c.identity,
            "leaseDurationSeconds": int(c.lease_duration),
            "renewTime": now,
            "acquireTime": spec.get("acquireTime") if mine else now,
            "leaseTransitions": int(spec.get("leaseTransitions") or 0) + (0 if mine else 1),
        }
        body = {**lease, "spec": new_spec}  # carries metadata.resourceVersion: a concurrent write makes this a 409
        try:
            self._lease = self.api.replace_lease(c.namespace, c.name, body)
        except ApiError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def _round(self) -> bool:
        started = time.monotonic()  # the Lease's renewTime is written after this: others wait from then on
        try:
            ok = await asyncio.wait_for(asyncio.to_thread(self._try_acquire_or_renew), self.config.renew_deadline)
            self._last_error = ""
            if ok:
                self._renewed_at = started
            return ok
        except Exception as exc:  # noqa: BLE001 - an unreachable API server is a failed round, retried
            text = f"{type(exc).__name__}: {str(exc)[:200]}"
            if text != self._last_error:
                log.warning("leader election: lease %s/%s not renewed: %s", self.config.namespace, self.config.name,
                            text)
            self._last_error = text
            return False

    # --- validity -------------------------------------------------------------------------------------------------
    def valid_for(self) -> float:
        """Seconds this replica may still act as leader by its own clock (<= 0: it must not write)."""
        if not self.leading:
            return 0.0
        return self._renewed_at + self.config.renew_deadline - time.monotonic()

    def check(self) -> None:
        """The write guard: raise NotLeader unless the Lease is ours and renewed within the renew deadline.

        Called from worker threads right before each write request; reads two fields, takes no lock."""
        if self.valid_for() <= 0:
            metrics.WRITES_REFUSED.inc()
            raise NotLeader(f"{self.config.identity} does not hold lease {self.config.namespace}/{self.config.name} "
                            f"(not renewed within {self.config.renew_deadline:g} s by this replica's clock)")

    # --- the loop ---------------------------------------------------------------------------------------------------
    async def run(self) -> None:
        c = self.config
        log.info("leader election: %s is a candidate for lease %s/%s", c.identity, c.namespace, c.name)
        while True:
            while not await self._round():
                await asyncio.sleep(c.retry_period * (1 + 0.2 * random.random()))
            self.leading = True
            log.info("leader election: %s acquired lease %s/%s and starts reconciling", c.identity, c.namespace,
                     c.name)
            self.on_started()
            while (left := self.valid_for()) > 0:
                await asyncio.sleep(min(c.retry_period, left))
                if self.valid_for() <= 0:
                    break  # the deadline passed while asleep (or paused): stop first, never renew late
                await self._round()
            self.leading = False
            log.warning("leader election: %s could not renew lease %s/%s within %ss; stops reconciling and stands by",
                        c.identity, c.namespace, c.name, c.renew_deadline)
            self.on_stopped()

    def release(self) -> None:
        """Give the Lease up on shutdown (client-go's ReleaseOnCancel): the standby takes over at its next retry."""
        if not self.leading or self._lease is None:
            return
        self.leading = False
        self.on_stopped()
        spec = {**(self._lease.get("spec") or {}), "holderIdentity": None, "leaseDurationSeconds": 1,
                "renewTime": micro_time()}
        try:
            self.api.replace_lease(self.config.namespace, self.config.name, {**self._lease, "spec": spec})
            log.info("leader election: %s released lease %s/%s", self.config.identity, self.config.namespace,
                     self.config.name)
        except Exception as exc:  # noqa: BLE001 - the lease then expires on its own
            log.warning("leader election: could not release the lease: %s", exc)
