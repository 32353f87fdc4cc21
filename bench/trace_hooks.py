"""A timeline of one operator process, for explaining a figure (`bench/run.py --trace`): when each reconcile was
triggered, started and ended, and every API request it made, with CLOCK_MONOTONIC stamps the benchmark process
can line up with its own (Linux's monotonic clock is system-wide).

It installs a Tracer through the operator's public hook (multisite_operator.tracing) and is used only for
diagnosis: the figures in the table come from runs without it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

from multisite_operator.tracing import Tracer

_lock = threading.Lock()
_out: Any = None


def _write(**rec: Any) -> None:
    with _lock:
        _out.write(json.dumps(rec) + "\n")
        _out.flush()


class _Timeline(Tracer):
    """Writes each request, trigger and reconcile the operator reports through its public tracing hook."""

    controller: Any = None

    def started(self, controller: Any) -> None:
        _Timeline.controller = controller

    def request(self, method: str, path: str, t0: float, t1: float) -> None:
        if _out is not None:
            _write(ev="request", method=method, path=path, t0=t0, t1=t1, thread=threading.current_thread().name)

    def trigger(self, key: Any) -> None:
        if _out is not None:
            _write(ev="trigger", name=key[1], t=time.monotonic())

    def reconciled(self, key: Any, t0: float, t1: float, cpu: float, outcome: Any) -> None:
        if _out is not None:
            _write(ev="reconcile", name=key[1], t0=t0, t1=t1, cpu=cpu, writes=getattr(outcome, "writes", None),
                   status_written=getattr(outcome, "status_written", None))


def install(path: str) -> None:
    global _out
    _out = open(path, "a")  # noqa: SIM115 - lives as long as the process


def _deep_size(obj: Any, seen: set[int]) -> int:
    """Bytes of ``obj`` and everything it holds that was not counted yet (shared parts counted once)."""
    import sys

    stack, total = [obj], 0
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)
        elif hasattr(o, "__dict__") and not isinstance(o, type):
            stack.append(vars(o))
    return total


def _holders() -> str:
    """How much the operator's long-lived structures hold: each kopf index, the reconciler's memos."""
    controller = _Timeline.controller
    if controller is None:
        return "operator not started yet\n"
    seen: set[int] = set()
    lines = []
    for name, index in sorted(controller.indexes.items()):
        try:
            content = {k: list(v) for k, v in index.items()}
        except Exception:  # noqa: BLE001 - diagnosis only
            content = index
        lines.append(f"index {name}: {len(content)} keys, {_deep_size(content, seen) / 1e6:.1f} MB")
    rec = controller.reconciler
    if rec is not None:
        for attr, value in sorted(vars(rec).items()):
            if isinstance(value, dict):
                lines.append(f"reconciler.{attr}: {len(value)} entries, {_deep_size(value, seen) / 1e6:.1f} MB")
    return "\n".join(lines) + "\n"


def _retainers(tracemalloc: Any) -> str:
    """Who keeps the objects decoded from watch events alive: for each such container, the nearest referrer that
    was not decoded from a watch event, by the line that allocated it (or its type)."""
    import gc
    from collections import Counter

    def origin(obj: object) -> str:
        tb = tracemalloc.get_object_traceback(obj)
        if tb is None:
            return type(obj).__name__
        frames = [fr for fr in tb if "json" not in fr.filename]
        fr = (frames or list(tb))[-1]
        return f"{type(obj).__name__} {fr.filename.rsplit('/', 2)[-1]}:{fr.lineno}"

    everything = gc.get_objects()
    decoded = {id(o): o for o in everything if isinstance(o, (dict, list))
               and "watching.py" in "".join(str(fr.filename) for fr in (tracemalloc.get_object_traceback(o) or []))}
    roots: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for holder in everything:  # one pass: each object's referents, instead of get_referrers per object
        if id(holder) in decoded or holder is decoded:
            continue
        held = [o for o in gc.get_referents(holder) if id(o) in decoded]
        if held:
            key = origin(holder)
            roots[key] += len(held)
            sizes[key] += sum(sys.getsizeof(o) for o in held)
    lines = [f"watch-decoded containers alive: {len(decoded)}; outermost holders (count, shallow bytes of held):"]
    lines += [f"{roots[k]:8d} {sizes[k] / 1e6:7.2f} MB  {k}" for k, _ in roots.most_common(25)]
    return "\n".join(lines)


def _tracemalloc(path: str) -> None:
    """Python-level allocations by line, written on SIGUSR1 (tracemalloc itself costs memory and time)."""
    import signal
    import tracemalloc

    tracemalloc.start(int(os.environ.get("MULTISITE_TRACEMALLOC_FRAMES") or 1))

    def dump(*_: Any) -> None:
        snap = tracemalloc.take_snapshot()
        with open(path, "w") as f:
            f.write(_holders() + "\n")
            total = sum(s.size for s in snap.statistics("filename"))
            f.write(f"total traced {total / 1e6:.1f} MB\n")
            for stat in snap.statistics("filename")[:25]:
                f.write(f"{stat.size / 1e6:8.2f} MB  {stat.count:8d}  {stat.traceback}\n")
            f.write("\n")
            for stat in snap.statistics("lineno")[:40]:
                f.write(f"{stat.size / 1e6:8.2f} MB  {stat.count:8d}  {stat.traceback}\n")
            for stat in snap.statistics("traceback")[:12]:
                f.write(f"\n{stat.size / 1e6:8.2f} MB  {stat.count:8d}\n  " + "\n  ".join(stat.traceback.format()))
            f.write("\n\n" + _retainers(tracemalloc) + "\n")

    signal.signal(signal.SIGUSR1, dump)


def main() -> None:
    """`python -c 'import trace_hooks; trace_hooks.main()' run ...`: the CLI, traced and/or under tracemalloc."""
    import sys

    from multisite_operator import tracing

    tracing.install(_Timeline())
    if os.environ.get("MULTISITE_TRACE"):
        install(os.environ["MULTISITE_TRACE"])
    if os.environ.get("MULTISITE_TRACEMALLOC"):
        _tracemalloc(os.environ["MULTISITE_TRACEMALLOC"])
    from multisite_operator.cli import main as cli

    sys.argv[0] = "multisite-operator"
    cli()
