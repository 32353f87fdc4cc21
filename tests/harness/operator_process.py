"""The operator as users run it (`multisite-operator run`), in a subprocess so tests can SIGKILL it for real."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

from helpers import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OperatorProcess:
    """The operator as users run it (`multisite-operator run`), in a subprocess so tests can kill it for real."""

    def __init__(self, kubeconfig: str, namespaces: list[str], log_path: Path, extra: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.namespaces = namespaces
        self.log_path = log_path
        self.extra = extra or []
        self.env = env or {}
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "multisite_operator.cli", "run", "--metrics-port", str(self.metrics_port),
               "--liveness", f"http://127.0.0.1:{self.health_port}/healthz"]
        for ns in self.namespaces:
            cmd += ["--namespace", ns]
        return cmd + self.extra

    def start(self) -> OperatorProcess:
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, **self.env}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        import urllib.request

        def healthy() -> bool:
            assert self.proc is not None and self.proc.poll() is None, f"operator exited: {self.log()[-2000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(healthy, timeout=30, interval=0.1, message="operator liveness endpoint")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no cleanup, like an OOM kill or a lost node."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()


@contextmanager
def running_operator(kubeconfig: str, namespaces: list[str], log: Path, extra: list[str] | None = None,
                     env: dict[str, str] | None = None) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(kubeconfig, namespaces, log, extra, env).start()
    try:
        yield proc
    finally:
        proc.stop()


def assert_no_traceback(log: str) -> None:
    """An operator that handles every failure on purpose never prints a Python traceback."""
    assert "Traceback (most recent call last)" not in log, log[log.index("Traceback"):][:3000]


# Each log line starts with a timestamp whose milliseconds may read 403 (seen in CI: "09:50:42,403 WARNING").
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", re.MULTILINE)
# A whole-word 403: the API server's random port may contain the digits too (seen: 127.0.0.1:53403).
_DENIED = (r"\b403\b", "Forbidden", "forbidden", "Not enough permissions")


def assert_no_permission_denied(log: str) -> None:
    """The deployed RBAC must be enough: a refused request would be a silently missing feature in production."""
    text = _TIMESTAMP.sub("", log)
    for denied in _DENIED:
        found = re.search(denied, text)
        assert not found, text[max(0, found.start() - 500):][:1500]


def metric(operator: OperatorProcess, name: str) -> float:
    """Sum of every sample of a Prometheus metric (all label values)."""
    total = 0.0
    for line in operator.metrics().splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head = line.split()[0]
            if head == name or head.startswith(name + "{"):
                total += float(line.split()[-1])
    return total


def wait_quiet(operator: OperatorProcess, quiet: float = 2.0, timeout: float = 60) -> float:
    """Wait until the operator has neither reconciled nor written for `quiet` seconds; returns its writes so far.

    Why: after a change the children's status keeps moving for a while (a scaled-down Deployment's replicas,
    terminating pods), and each move is an event and a reconcile that may rightly update status. A test that counts
    the writes of one idle reconcile must start counting only once that settled, or it fails on a loaded machine.
    """
    import time

    def activity() -> tuple[float, float]:
        return metric(operator, "multisite_reconciles_total"), metric(operator, "multisite_api_writes_total")

    last, since = activity(), time.monotonic()
    deadline = since + timeout
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, f"operator still busy after {timeout:g} s: {activity()}"
        time.sleep(0.2)
        now = activity()
        if now != last:
            last, since = now, time.monotonic()
    return last[1]


def lease_holder(api: client.ApiClient, ns: str) -> str | None:
    """Which replica holds the leader-election Lease (its identity), None before any does."""
    try:
        return client.CoordinationV1Api(api).read_namespaced_lease("multisite-operator", ns).spec.holder_identity
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
