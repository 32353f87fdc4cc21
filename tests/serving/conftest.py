"""Real-serving fixtures: Traefik and the test-side kubelet once per run, a project on the real runtime per test.

Only inside the private network namespace `make test` creates (tests/runtime/netns.py). Run directly with
`pytest tests/serving` elsewhere, these tests are skipped with that reason; under `make test`
(MULTISITE_REAL_SERVING=1) a missing namespace is an error, so CI cannot silently skip them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from e2e.conftest import crd, operator, pytest_runtest_makereport  # noqa: F401 - fixtures and the log hook
from ingress.traefik import GATEWAY_GROUP, Traefik, install_gateway_crds
from runtime.kubelet import RealKubelet
from runtime.netns import pod_range_is_local
from helpers import wait_for

from .support import ServingHarness


@pytest.fixture(scope="session")
def private_netns() -> None:
    if pod_range_is_local():
        return
    message = ("real serving needs the private network namespace `make test` creates (10.0.0.0/16 must be a local "
               "route here); run `make test` or `make test-serving`")
    if os.environ.get("MULTISITE_REAL_SERVING") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def serving_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="real-serving-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def traefik(private_netns: None, cluster, api_client: client.ApiClient, serving_dir: Path) -> Iterator[Traefik]:
    stages = Path(cluster.state_dir) / "kwok-stages.yaml"
    if not stages.exists() or "multisite-test/" not in stages.read_text():
        pytest.fail("this control plane's kwok would run the test image's pods itself (started before the stage "
                    "narrowing); restart it (make cluster-down)")
    t = Traefik(api_client, cluster.kubeconfig, serving_dir / "traefik").start()
    yield t
    t.stop()


@pytest.fixture(scope="session")
def gateway_traefik(private_netns: None, cluster, api_client: client.ApiClient, serving_dir: Path) -> Iterator[Traefik]:
    """A second Traefik, with its Gateway API provider (GatewayClass `traefik`), after installing the Gateway API
    v1.6.3 standard CRDs (tests/ingress/gateway-crds.sh fetched them)."""
    install_gateway_crds(api_client)
    t = Traefik(api_client, cluster.kubeconfig, serving_dir / "traefik-gateway", gateway=True).start()
    yield t
    t.stop()


@pytest.fixture(scope="session")
def kubelet(private_netns: None, cluster, api_client: client.ApiClient, serving_dir: Path) -> Iterator[RealKubelet]:
    k = RealKubelet(cluster.api_client(), serving_dir / "pods").start()
    yield k
    k.stop()
    assert not k.errors, f"test-side kubelet errors: {k.errors}"


@pytest.fixture
def harness(traefik: Traefik, kubelet: RealKubelet, api_client: client.ApiClient, namespace: str, operator,
            serving_dir: Path) -> Iterator[ServingHarness]:
    """The test's namespace with the operator running, Traefik and the real runtime behind it.

    Every test uses the example's hosts, and the namespace is deleted in the background: its Ingress is removed
    and waited for here, so the next test's Traefik does not still route a host to this test's vanished pods.
    """
    yield ServingHarness(api_client, namespace, traefik, kubelet, serving_dir / namespace)
    net = client.NetworkingV1Api(api_client)
    # The project first (the operator would put its Ingress back), then its children go by garbage collection.
    client.CustomObjectsApi(api_client).delete_collection_namespaced_custom_object(
        "multisite.dev", "v1alpha1", namespace, "multisiteprojects")
    net.delete_collection_namespaced_ingress(namespace)
    wait_for(lambda: not net.list_namespaced_ingress(namespace).items, timeout=60,
             message=f"Ingresses of {namespace} deleted")


@pytest.fixture
def gateway_harness(gateway_traefik: Traefik, kubelet: RealKubelet, api_client: client.ApiClient, namespace: str,
                    operator, serving_dir: Path) -> Iterator[ServingHarness]:
    """Like `harness`, routed by the Gateway API: requests go to the gateway Traefik; the test makes its Gateway.

    Its HTTPRoutes are removed and waited for here, so the next test's Traefik does not still route a host to this
    test's vanished pods."""
    yield ServingHarness(api_client, namespace, gateway_traefik, kubelet, serving_dir / namespace)
    custom = client.CustomObjectsApi(api_client)
    custom.delete_collection_namespaced_custom_object("multisite.dev", "v1alpha1", namespace, "multisiteprojects")
    custom.delete_collection_namespaced_custom_object(GATEWAY_GROUP, "v1", namespace, "httproutes")
    custom.delete_collection_namespaced_custom_object(GATEWAY_GROUP, "v1", namespace, "gateways")
    wait_for(lambda: not custom.list_namespaced_custom_object(GATEWAY_GROUP, "v1", namespace, "httproutes")["items"],
             timeout=60, message=f"HTTPRoutes of {namespace} deleted")


@pytest.fixture
def runtime_harness(kubelet: RealKubelet, api_client: client.ApiClient, namespace: str, operator,
                    serving_dir: Path) -> ServingHarness:
    """The same without Traefik, for tests that read only pod and project status."""
    return ServingHarness(api_client, namespace, None, kubelet, serving_dir / namespace)
