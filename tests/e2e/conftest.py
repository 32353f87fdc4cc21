"""e2e fixtures: the CRD installed once per run, and the operator started per test as users run it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from helpers import wait_for

from .support import ROOT, OperatorProcess

CRD_FILE = ROOT / "crds" / "multisiteprojects.yaml"


@pytest.fixture(scope="session")
def crd(api_client: client.ApiClient) -> str:
    """Install (server-side apply) the committed CRD and wait until it is Established."""
    import yaml

    body = yaml.safe_load(CRD_FILE.read_text())
    ext = client.ApiextensionsV1Api(api_client)
    ext.patch_custom_resource_definition(
        body["metadata"]["name"], body, field_manager="multisite-tests", force=True,
        _content_type="application/apply-patch+yaml",
    ) if _exists(ext, body["metadata"]["name"]) else ext.create_custom_resource_definition(body)

    def established() -> bool:
        crd = ext.read_custom_resource_definition(body["metadata"]["name"])
        return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

    wait_for(established, timeout=30, message="CRD Established")
    return body["metadata"]["name"]


def _exists(ext: client.ApiextensionsV1Api, name: str) -> bool:
    try:
        ext.read_custom_resource_definition(name)
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


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
