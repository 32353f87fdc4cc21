"""limits.py: the limits of Kubernetes and Linux that a schema-valid spec can still exceed, at their exact edges.

The environment-string limit is proved against this machine's kernel itself (execve refusing with E2BIG), so the
number the operator enforces is the one a node enforces, not a number copied from somewhere.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from harness.kernel import execve_accepts
from multisite_operator.limits import (
    MAX_ANNOTATIONS_BYTES,
    MAX_ARG_STRLEN,
    child_problems,
    env_string_bytes,
    name_problems,
)
from multisite_operator.models import MAX_SITES, MultiSiteProjectSpec
from multisite_operator.render import Owner, render_children

# The API server's own rules (k8s.io/apimachinery/pkg/util/validation).
DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"


def sites(n: int, slug_len: int = 9, name: str = "Site number {i}", domain: str = "example.com") -> list[dict[str, Any]]:
    return [{"slug": f"s{i:0{slug_len - 1}d}", "id": i + 1, "name": name.format(i=i),
             "live": {"domain": f"site-{i:04d}.{domain}", "aliases": [f"www.site-{i:04d}.example.com"],
                      "redirects": [f"site-{i:04d}.example.net"]},
             "test": {"aliases": [f"preview-{i:04d}.stage.example.com"]}} for i in range(n)]


def spec_of(**changes: Any) -> MultiSiteProjectSpec:
    base = {"image": "registry.example.com/big:1", "testDomainFormat": "{slug}.stage.example.com",
            "database": {"secretRef": {"name": "db", "key": "DATABASE_URL"}}, "sites": sites(3)}
    return MultiSiteProjectSpec.model_validate({**base, **changes})


@pytest.mark.parametrize("name", ["a", "shop", "shop-v2", "a" * 63])
def test_names_every_child_can_carry_are_accepted(name):
    assert name_problems(name) == []


@pytest.mark.parametrize(("name", "words"), [
    ("shop.v2", "metadata.name 'shop.v2' must start with a lowercase letter"),
    ("2shop", "metadata.name '2shop' must start with a lowercase letter"),
    ("a" * 64, "metadata.name must be at most 63 characters: it is the value of the label multisite.dev/project"),
])
def test_names_a_child_cannot_carry_are_rejected_saying_why(name, words):
    assert any(words in p for p in name_problems(name)), name_problems(name)


@pytest.mark.parametrize("mode", ["shared", "multi-project"])
def test_longest_name_with_longest_slugs_gives_valid_names_and_labels_everywhere(mode):
    """The limit does not depend on slugs: naming.fit shortens long child names with a hash, within their limits."""
    owner = Owner(name="p" * 63, namespace="ns", uid="u")
    spec = spec_of(mode=mode, sites=sites(3, slug_len=40))
    children = render_children(spec, owner, site_image=spec.image)
    names = set()
    for obj in children:
        name = obj["metadata"]["name"]
        names.add((obj["kind"], name))
        rule = DNS1035_LABEL if obj["kind"] == "Service" else DNS1123_SUBDOMAIN
        limit = 63 if obj["kind"] in ("Service", "Job") else 253  # a Job's name is its pods' job-name label
        assert re.fullmatch(rule, name) and len(name) <= limit, (obj["kind"], name)
        template = (obj.get("spec") or {}).get("template") or {}
        for labels in (obj["metadata"]["labels"], (template.get("metadata") or {}).get("labels") or {}):
            assert all(re.fullmatch(LABEL_VALUE, v) and len(v) <= 63 for v in labels.values()), labels
    assert len(names) == len(children)  # shortened names stay distinct
    assert child_problems(children) == []


def test_env_limit_is_the_kernels():
    name = "DJANGO_MULTISITE_PLUS_SITES"
    fits = "x" * (MAX_ARG_STRLEN - len(name) - 2)
    assert env_string_bytes(name, fits) == MAX_ARG_STRLEN and execve_accepts(name, fits)
    assert env_string_bytes(name, fits + "x") == MAX_ARG_STRLEN + 1 and not execve_accepts(name, fits + "x")


def env_problems(spec: MultiSiteProjectSpec) -> list[str]:
    return child_problems(render_children(spec, Owner(name="big", namespace="ns"), site_image=spec.image))


def test_the_maximum_number_of_sites_fits_in_the_environment():
    """MAX_SITES sites of the tests' shape run, with room for names about 40% longer (the bench's shape too)."""
    for environment in ("live", "test"):
        spec = spec_of(sites=sites(MAX_SITES), environment=environment)
        assert env_problems(spec) == []
        env = {e["name"]: e["value"] for e in render_children(spec, Owner("big", "ns"))[0]["spec"]["template"]["spec"][
            "containers"][0]["env"] if "value" in e}
        assert env_string_bytes("DJANGO_MULTISITE_PLUS_SITES", env["DJANGO_MULTISITE_PLUS_SITES"]) < 0.75 * MAX_ARG_STRLEN


def test_an_environment_string_over_the_limit_is_named_with_its_size_and_the_fix():
    spec = spec_of(sites=sites(MAX_SITES, name="Site {i} of the international project", domain="shop.example-holding-international.com"))
    problems = env_problems(spec)
    assert len(problems) == 1, problems  # web Deployment and populate Job share the env: said once
    assert re.search(r"environment variable DJANGO_MULTISITE_PLUS_SITES would be \d+ bytes", problems[0])
    assert "over Linux's limit of 131072 bytes for one environment string (MAX_ARG_STRLEN)" in problems[0]
    assert "split the sites over several projects" in problems[0]


def test_a_long_user_variable_is_named():
    spec = spec_of(env=[{"name": "BLOB", "value": "x" * MAX_ARG_STRLEN}])
    assert any("environment variable BLOB" in p and "Shorten spec.env's BLOB" in p for p in env_problems(spec))


def test_annotations_over_256_kib_are_named_at_the_edge():
    key = "example.com/blob"
    edge = "x" * (MAX_ANNOTATIONS_BYTES - len(key))
    assert env_problems(spec_of(podAnnotations={key: edge})) == []
    problems = env_problems(spec_of(podAnnotations={key: edge + "x"}))
    assert problems and all("pod annotations of" in p and "262145 bytes" in p for p in problems), problems
    problems = env_problems(spec_of(ingress={"annotations": {key: edge + "x"}}))
    assert problems == ["the annotations of Ingress big total 262145 bytes, over the API server's limit of 262144 "
                        "(256 KiB): shorten spec.ingress.annotations"]


def test_a_project_stored_before_the_name_rule_gets_invalid_spec_once_not_a_loop(spec_dict):
    """The CRD rule cannot reach objects stored before it (ratcheting lets them be updated): the operator reports
    them, for their generation, with a Warning Event, and applies nothing."""
    import asyncio

    from multisite_operator.reconcile import Reconciler

    class Api:  # only what a blocked reconcile may call: no apply, no delete
        def __init__(self) -> None:
            self.statuses: list[dict[str, Any]] = []

        async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
            self.statuses.append(status)

        async def job_failure(self, namespace: str, job: str) -> str:
            raise AssertionError("a blocked reconcile reads no Job")

    api, events = Api(), []
    reconciler = Reconciler(api, emit=lambda project, type_, reason, message: events.append((type_, reason, message)))
    project = {"metadata": {"namespace": "ns", "name": "shop.v2", "uid": "u", "generation": 3}, "spec": spec_dict}
    async def once(rec: Reconciler) -> Any:
        outcome = await rec.reconcile(project, [])
        await rec.flush()  # the status write runs off the reconcile's path
        return outcome

    outcome = asyncio.run(once(reconciler))
    ready = next(c for c in outcome.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], outcome.status["observedGeneration"]) == ("False", "InvalidSpec", 3)
    assert "metadata.name 'shop.v2' must start with a lowercase letter" in ready["message"]
    assert ("Warning", "InvalidSpec") in [(t, r) for t, r, _ in events] and len(api.statuses) == 1
    project["status"] = outcome.status  # the next event: nothing new to write or say
    again = asyncio.run(once(Reconciler(api, emit=lambda *a: events.append(a))))
    assert again.writes == 0 and len(api.statuses) == 1
