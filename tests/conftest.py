"""Shared fixtures: one real control plane per test run, and a fresh restricted namespace per test.

Why: every behaviour of the operator is proved against a real kube-apiserver (see tests/controlplane). Starting it
once per session keeps the suite fast; a namespace per test keeps tests independent.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # `from helpers import wait_for`, `from controlplane.cluster import ...`
    sys.path.insert(0, str(TESTS))

from controlplane.cluster import DEFAULT_KUBECONFIG, DEFAULT_STATE_DIR, ControlPlane  # noqa: E402
from helpers import wait_for  # noqa: E402

if TYPE_CHECKING:
    import kubernetes.client

E2E_DIR = TESTS / "e2e"
_startup: dict[str, object] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark everything under tests/e2e, and anything using the cluster, as e2e (so `-m 'not e2e'` skips them)."""
    for item in items:
        if E2E_DIR in item.path.parents or "cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def cluster() -> Iterator[ControlPlane]:
    """The control plane for this run: the one from `make cluster-up` if it answers /readyz, else a private one.

    Set CONTROLPLANE_FRESH=1 to always start a private one (in a temp dir; it dies with the test process).
    """
    shared = ControlPlane(DEFAULT_STATE_DIR, DEFAULT_KUBECONFIG, detach=True)
    if os.environ.get("CONTROLPLANE_FRESH") != "1" and shared.is_ready():
        _startup["text"] = f"reused the running control plane ({shared.kubeconfig})"
        yield shared
        return
    cp = ControlPlane()
    seconds = cp.start()
    _startup["text"] = f"started in {seconds:.1f} s (binaries cached), state {cp.state_dir}"
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def api_client(cluster: ControlPlane) -> kubernetes.client.ApiClient:
    """One admin ApiClient for the session (cluster-admin)."""
    return cluster.api_client()


def _namespace_name(test_name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:45].strip("-")
    return f"t-{slug}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def namespace(request: pytest.FixtureRequest, api_client: kubernetes.client.ApiClient) -> Iterator[str]:
    """A fresh namespace enforcing the restricted Pod Security Standard; deleted after the test.

    Waits for its default ServiceAccount: the ServiceAccount admission plugin rejects pods until the serviceaccount
    controller has created it.
    """
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    name = _namespace_name(request.node.name)
    core.create_namespace({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {"pod-security.kubernetes.io/enforce": "restricted", "multisite-operator/test": "true"},
        },
    })
    wait_for(
        lambda: core.list_namespaced_service_account(name, field_selector="metadata.name=default").items,
        timeout=30, message=f"default ServiceAccount in namespace {name}",
    )
    try:
        yield name
    finally:
        # Not waiting for the namespace controller to finish: nothing later depends on it, and it costs seconds.
        core.delete_namespace(name, propagation_policy="Background")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _startup:
        terminalreporter.write_line(f"control plane: {_startup['text']}")
