"""What e2e tests do to a MultiSiteProject, in the words a user would use: apply, edit, read conditions, wait."""

from __future__ import annotations

import copy
import time
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from helpers import wait_for

from .cluster import ROOT

EXAMPLE = ROOT / "examples" / "example-shared.yaml"
GROUP, VERSION, PLURAL = "multisite.dev", "v1alpha1", "multisiteprojects"
FAIL_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"


def example_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]


def example_project(**spec_changes: Any) -> dict[str, Any]:
    project = copy.deepcopy(next(d for d in example_docs() if d["kind"] == "MultiSiteProject"))
    project["spec"].update(spec_changes)
    return project


def failing_populate_project(message: str) -> dict[str, Any]:
    """The example whose populate Job pod fails at once with `message` as its termination message (kwok stage)."""
    project = example_project()
    project["spec"]["populate"] = {
        "backoffLimit": 0,
        "podLabels": {FAIL_LABEL: "true"},
        "podAnnotations": {f"{FAIL_LABEL}/message": message},
    }
    return project


def create_with_populate_output(api: client.ApiClient, namespace: str, project: dict[str, Any], output: str) -> None:
    """Creates `project` whose populate pod fails with `output` as its termination message, written onto the pod
    only once it exists (kwok waits 4 s before failing it): the output, e.g. a settings module printing a Secret
    value, is then nowhere in the spec the operator reads."""
    project["spec"]["populate"] = {"backoffLimit": 0, "podLabels": {FAIL_LABEL: "true"},
                                   "podAnnotations": {f"{FAIL_LABEL}/delay": "4s"}}
    create_project(api, namespace, project)
    core = client.CoreV1Api(api)
    pod = wait_for(lambda: core.list_namespaced_pod(
        namespace, label_selector="app.kubernetes.io/component=populate").items, timeout=30,
        message="populate pod")[0]
    core.patch_namespaced_pod(pod.metadata.name, namespace,
                              {"metadata": {"annotations": {f"{FAIL_LABEL}/message": output}}})


def apply_example_secrets(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    for doc in example_docs():
        if doc["kind"] == "Secret":
            core.create_namespaced_secret(namespace, doc)


def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def create_project(api: client.ApiClient, namespace: str, project: dict[str, Any]) -> dict[str, Any]:
    return custom(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, project)


def get_project(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return custom(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def patch_spec(api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A merge patch of the spec, like `kubectl patch --type merge` (lists are replaced whole)."""
    return custom(api).patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, {"spec": spec})


def delete_project(api: client.ApiClient, namespace: str, name: str) -> None:
    custom(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def condition(obj: Any, type_: str) -> dict[str, Any] | None:
    """The condition `type_` of any object (a dict from the API, or a kubernetes client model), or None."""
    if not isinstance(obj, dict):
        obj = {"status": {"conditions": [c.to_dict() for c in (obj.status.conditions or [])]}}
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def condition_true(obj: Any, type_: str) -> bool:
    return (condition(obj, type_) or {}).get("status") == "True"


def wait_condition(api: client.ApiClient, namespace: str, name: str, type_: str, status: str,
                   timeout: float = 60, reason: str | None = None) -> dict[str, Any]:
    """Like `kubectl wait --for=condition=TYPE=STATUS`, for the current generation; returns the project."""

    def check() -> dict[str, Any] | None:
        project = get_project(api, namespace, name)
        c = condition(project, type_)
        st = project.get("status") or {}
        if (c and c["status"] == status and (reason is None or c.get("reason") == reason)
                and st.get("observedGeneration") == project["metadata"]["generation"]):
            return project
        return None

    def describe() -> str:
        try:
            return str((get_project(api, namespace, name).get("status") or {}).get("conditions"))
        except ApiException as exc:
            return f"HTTP {exc.status}"

    try:
        return wait_for(check, timeout=timeout, interval=0.2, message=f"{name}: {type_}={status}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; conditions: {describe()}") from None


def deployment(api: client.ApiClient, namespace: str, name: str) -> client.V1Deployment:
    return client.AppsV1Api(api).read_namespaced_deployment(name, namespace)


def env_of(dep: client.V1Deployment) -> dict[str, Any]:
    """Container env as name -> value (or the valueFrom dict for references)."""
    out: dict[str, Any] = {}
    for e in dep.spec.template.spec.containers[0].env or []:
        out[e.name] = e.value if e.value_from is None else e.value_from.to_dict()
    return out


def ingress_hosts(api: client.ApiClient, namespace: str, name: str) -> list[str]:
    ing = client.NetworkingV1Api(api).read_namespaced_ingress(name, namespace)
    return [r.host for r in ing.spec.rules or []]


def jobs(api: client.ApiClient, namespace: str, component: str) -> list[client.V1Job]:
    return client.BatchV1Api(api).list_namespaced_job(
        namespace, label_selector=f"app.kubernetes.io/component={component}").items


def events_for(api: client.ApiClient, namespace: str, name: str) -> list[client.CoreV1Event]:
    return client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name},involvedObject.kind=MultiSiteProject").items


def wait_gone(fn: Any, timeout: float = 30, message: str = "object deleted") -> None:
    def gone() -> bool:
        try:
            fn()
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, timeout=timeout, message=message)


def elapsed(start: float) -> float:
    return time.monotonic() - start
