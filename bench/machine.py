"""The machine the figures come from, and how busy it was meanwhile.

Why the load matters: the operator, the control plane and the benchmark share two cores with whatever else runs
(other developers' test suites start their own control planes). The 1-minute load average, sampled through the
run, says whether a figure was taken on a quiet machine; ``wait_quiet`` lets a run start only once it is.
"""

from __future__ import annotations

import datetime
import os
import platform
import resource
import threading
import time
from pathlib import Path
from typing import Any


def describe(release: str) -> dict[str, Any]:
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_gib": round(mem_kib / 1024 / 1024, 1),
            "kubernetes": release, "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def wait_quiet(threshold: float, timeout: float) -> float:
    """Wait (at most ``timeout`` s) until the 1-minute load average is below ``threshold``; returns it."""
    deadline = time.monotonic() + timeout
    while (load := load1()) >= threshold and time.monotonic() < deadline:
        time.sleep(5)
    return load


class LoadSampler:
    """The 1-minute load average every few seconds, in a daemon thread; ``summary(since)`` for one part."""

    def __init__(self, every: float = 2.0) -> None:
        self.samples: list[tuple[float, float]] = []
        self._every = every
        threading.Thread(target=self._run, daemon=True, name="load").start()

    def _run(self) -> None:
        while True:
            self.samples.append((time.monotonic(), load1()))
            time.sleep(self._every)

    def summary(self, since: float) -> dict[str, float]:
        vals = [v for t, v in self.samples if t >= since] or [load1()]
        return {"min": min(vals), "mean": round(sum(vals) / len(vals), 2), "max": max(vals)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (all its threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each control-plane component, and the benchmark's finished children (kubectl), used during one
    run. Why: on 2 cores the operator's requests, its own CPU and the cluster's rollout work compete; which process
    took the machine's time is what explains a run slower than kubectl's, beyond the wall clock."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start = self._read()

    def _read(self) -> dict[str, float]:
        out = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # kubectl processes, once they exited
        out["kubectl"] = ru.ru_utime + ru.ru_stime
        return out

    def used(self) -> dict[str, float]:
        now = self._read()
        return {name: round(now[name] - self._start.get(name, 0.0), 2) for name in now}
