"""e2e fixtures: the CRD installed once per run, and the operator started per test as users run it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from harness.cluster import install_crd
from harness.operator_process import OperatorProcess, running_operator


@pytest.fixture(scope="session")
def crd(api_client: client.ApiClient) -> str:
    """Install (server-side apply) the committed CRD and wait until it is Established."""
    return install_crd(api_client)


@pytest.fixture
def operator(cluster, crd: str, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """`multisite-operator run --namespace <test namespace>` in a subprocess; its log is printed if the test fails."""
    proc = OperatorProcess(cluster.kubeconfig, [namespace], tmp_path / "operator.log").start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        proc = item.funcargs.get("operator") if hasattr(item, "funcargs") else None
        if isinstance(proc, OperatorProcess):
            report.sections.append(("operator log (tail)", proc.log()[-6000:]))


@pytest.fixture
def verbose_operator(cluster, crd: str, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator with debug logging: the strictest place to look for a leaked value."""
    with running_operator(cluster.kubeconfig, [namespace], tmp_path / "operator.log", ["--verbose"]) as op:
        yield op
