"""A public hook for diagnosis (`bench/run.py --trace`): every API request, trigger and reconcile, with times.

Nothing is traced unless a Tracer is installed (one attribute check per call otherwise), so the operator as
deployed pays nothing. The benchmark installs one from outside through `install`, instead of replacing private
methods of the operator's classes, which broke silently whenever they were renamed.
"""

from __future__ import annotations

from typing import Any


class Tracer:
    """Override what you need; every method is called on the operator's own thread and must be quick."""

    def started(self, controller: Any) -> None:
        """The controller about to run (its indexes and reconciler can be inspected later)."""

    def configure(self, settings: Any) -> None:
        """kopf's settings at startup, after the operator's own."""

    def request(self, method: str, path: str, t0: float, t1: float) -> None:
        """One API request (time.monotonic() stamps), retries counted one by one."""

    def trigger(self, key: tuple[str, str]) -> None:
        """An event asked for a reconcile of the project `key` (namespace, name)."""

    def reconciled(self, key: tuple[str, str], t0: float, t1: float, cpu: float, outcome: Any) -> None:
        """A reconcile ran (outcome None when it raised)."""


_tracer: Tracer | None = None


def install(tracer: Tracer | None) -> None:
    global _tracer
    _tracer = tracer


def current() -> Tracer | None:
    return _tracer
