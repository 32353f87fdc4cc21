"""The operator under test: tests/harness/operator_process.py's OperatorProcess (`python -m multisite_operator.cli run` in a
subprocess, as users run it), plus what the benchmark reads of it: memory, its own metrics, and when its
watches are open.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

import apicount
import machine
from harness.operator_process import OperatorProcess

HERE = Path(__file__).resolve().parent

def watched_resources(api: client.ApiClient) -> int:
    """How many resources the operator's kopf handlers watch (one watch each per namespace, or cluster-wide).

    Read from kopf's registry of the operator's own handlers, so a handler added later is counted too; resources
    whose API group the server does not serve (the Gateway API, cert-manager without their CRDs) get no watch.
    """
    import kopf

    from multisite_operator.controller import Controller
    from multisite_operator.handlers import register

    registry = kopf.OperatorRegistry()
    register(registry, Controller())
    selectors = {h.selector for sub in (registry._indexing, registry._watching, registry._changing,
                                        registry._spawning) for h in sub.get_all_handlers()}
    served = {g.name for g in client.ApisApi(api).get_api_versions().groups} | {"", None}
    return len({str(s) for s in selectors if s.group in served})


class BenchOperator(OperatorProcess):
    """OperatorProcess that can run under a profiler and reports its memory and counters."""

    def __init__(self, kubeconfig: str, namespaces: list[str], log_path: Path, profile_to: Path | None = None,
                 trace_to: Path | None = None, env: dict[str, str] | None = None,
                 extra: list[str] | None = None) -> None:
        env = dict(env or {})
        if trace_to:
            env["MULTISITE_TRACE"] = str(trace_to)
        super().__init__(kubeconfig, namespaces, log_path, extra=extra, env=env)
        self.profile_to = profile_to
        self.trace_to = trace_to
        self.watches = 0

    @property
    def command(self) -> list[str]:
        cmd = super().command  # [python, -m, multisite_operator.cli, run, ...]
        if any(k.startswith("MULTISITE_") for k in self.env):  # traced, or a what-if experiment
            boot = f"import sys; sys.path.insert(0, {str(HERE)!r}); import trace_hooks; trace_hooks.main()"
            return [sys.executable, "-c", boot, *cmd[3:]]
        if self.profile_to is None:
            return cmd
        # pyinstrument samples the event loop thread (handlers, rendering, comparisons); requests run in threads
        # and show up as the awaits that wait for them.
        return [sys.executable, "-m", "pyinstrument", "-r", "session", "-o", str(self.session), *cmd[1:]]

    @property
    def session(self) -> Path:
        assert self.profile_to is not None
        return self.profile_to.with_suffix(".pyisession")

    def stop(self) -> None:
        """Stop (SIGTERM: kopf exits cleanly, so pyinstrument saves its session), then render the profile as text."""
        super().stop()
        if self.profile_to is not None and self.session.exists():
            subprocess.run([sys.executable, "-m", "pyinstrument", "--load", str(self.session), "-r", "text",
                            "--no-color", "-o", str(self.profile_to)], check=False)

    def start_and_watch(self, api: client.ApiClient, timeout: float = 90) -> BenchOperator:
        """Start, then wait until the API server has seen all its watches: only then is it really listening."""
        before = apicount.Snapshot.take(api).operator.get("watch", 0)
        self.start()
        want = before + watched_resources(api) * max(1, len(self.namespaces))
        deadline = time.monotonic() + timeout
        while (now := apicount.Snapshot.take(api).operator.get("watch", 0)) < want:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"operator exited: {self.log()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"operator opened {now - before:g} watches, not {want - before:g}: "
                                   f"{self.log()[-2000:]}")
            time.sleep(0.2)
        return self

    def cpu_seconds(self) -> float:
        """User + system CPU time the operator process has used so far (all its threads), from /proc/<pid>/stat."""
        assert self.proc is not None
        return round(machine.cpu_seconds(self.proc.pid), 2)

    def memory_kib(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (peak resident set since start), from /proc/<pid>/status."""
        assert self.proc is not None
        out = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
        return out

    def counters(self) -> dict[str, float]:
        """The operator's own Prometheus counters: reconciles by result, writes, errors."""
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(self.metrics()):
            for s in family.samples:
                if s.name == "multisite_reconciles_total":
                    out[f"reconciles_{s.labels['result']}"] = s.value
                elif s.name == "multisite_reconcile_duration_seconds_sum":
                    out["reconcile_seconds"] = round(s.value, 3)
                elif s.name in ("multisite_api_writes_total", "multisite_reconcile_errors_total"):
                    out[s.name.removeprefix("multisite_").removesuffix("_total")] = s.value
        return out
