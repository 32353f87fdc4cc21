"""apply_all: every child at once (started in dependency order), and the same error for the same spec."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from multisite_operator.apply import apply_all


def obj(kind: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "ns"}, "spec": {}}


class Api:
    def __init__(self, fail: dict[str, float], slow: dict[str, float] | None = None) -> None:
        self.fail = fail  # kind -> seconds until it is refused
        self.slow = slow or {}  # kind -> seconds until it is applied
        self.started: list[str] = []
        self.ended: list[str] = []
        self.in_flight = 0
        self.most = 0

    async def apply(self, o: dict[str, Any]) -> dict[str, Any]:
        self.started.append(o["kind"])
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(self.fail.get(o["kind"], self.slow.get(o["kind"], 0.01)))
            if o["kind"] in self.fail:
                raise ValueError(f"{o['kind']} refused")
            return {**o, "status": {"applied": True}}
        finally:
            self.in_flight -= 1
            self.ended.append(o["kind"])


def routed_to(service: str) -> dict[str, Any]:
    ingress = obj("Ingress", "i")
    ingress["spec"] = {"rules": [{"http": {"paths": [{"backend": {"service": {"name": service}}}]}}]}
    return ingress


def test_children_are_applied_at_once_started_in_dependency_order_results_in_input_order():
    api = Api({})
    objs = [routed_to("s"), obj("Job", "j"), obj("Deployment", "d"), obj("Service", "s")]  # "s" written here too
    out = asyncio.run(apply_all(api, objs))
    assert api.started == ["Job", "Deployment", "Service", "Ingress"] and api.most == 4
    assert [o["kind"] for o in out] == ["Ingress", "Job", "Deployment", "Service"]


def test_when_several_are_refused_the_first_in_dependency_order_is_reported():
    api = Api({"Job": 0.05, "Deployment": 0.0})  # the Deployment is refused first in time
    with pytest.raises(ValueError, match="Job refused"):
        asyncio.run(apply_all(api, [obj("Deployment", "d"), obj("Job", "j")]))


def test_the_migration_job_does_not_queue_behind_a_hundred_services():
    """A new 100-site multi-project project: the Job that gates every web pod starts with the first requests."""
    api = Api({})
    objs = [obj("Service", f"s{i}") for i in range(100)] + [obj("Job", "migrate")]
    asyncio.run(apply_all(api, objs))
    assert api.started[0] == "Job" and len(api.started) == 101


def test_a_host_added_is_routed_before_the_other_writes_of_the_reconcile_start():
    """An edit adding a host changes the Ingress (its Service exists), the web Deployment and the populate Job: the
    Ingress is written alone, so the new host is routed without sharing the API server with the other two."""
    api = Api({}, slow={"Ingress": 0.05})
    out = asyncio.run(apply_all(api, [obj("Job", "j"), obj("Deployment", "d"), routed_to("web")]))
    assert api.started == ["Ingress", "Job", "Deployment"] and api.ended[0] == "Ingress"
    assert [o["kind"] for o in out] == ["Job", "Deployment", "Ingress"]


def test_a_refused_route_does_not_stop_the_other_writes_and_is_the_error_reported():
    api = Api({"Ingress": 0.0, "Job": 0.0})
    with pytest.raises(ValueError, match="Ingress refused"):
        asyncio.run(apply_all(api, [obj("Job", "j"), obj("Deployment", "d"), routed_to("web")]))
    assert sorted(api.started) == ["Deployment", "Ingress", "Job"]
