"""Helpers shared by the test suites (import as ``from helpers import wait_for``; conftest puts tests/ on the path)."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30,
    interval: float = 0.1,
    message: str = "condition not met",
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    Why: the cluster converges asynchronously; tests wait on the observable condition with a bound instead of
    sleeping and hoping. On timeout raises AssertionError with ``message`` and the last value (or exception) seen,
    so a failure says what state the cluster was stuck in.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # noqa: BLE001 - transient API errors are part of converging
            value, last = None, exc  # type: ignore[assignment]
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (after {timeout:g} s; last: {last!r})")
        time.sleep(interval)
