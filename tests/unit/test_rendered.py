"""Rendering once per spec generation: the same parsed spec renders once; a new generation or another site image
renders again; only the most recent projects are kept."""

from __future__ import annotations

from typing import Any

import pytest

from multisite_operator import rendered
from multisite_operator.render import Owner
from multisite_operator.specs import validate


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    real = rendered.render

    def render(spec: Any, owner: Any, site_image: Any = None, jobs: Any = None) -> Any:
        calls.append((owner.uid, site_image))
        return real(spec, owner, site_image, jobs)

    monkeypatch.setattr(rendered, "render", render)
    return calls


def test_the_same_spec_renders_once_and_callers_may_drop_roles(spec_dict: dict[str, Any], counted: list[Any]):
    cache, spec, owner = rendered.RenderCache(), validate(spec_dict), Owner("p", "ns", "u1")
    first = cache.children(spec, owner, None, cache.jobs(spec, owner))
    del first["ingress"]  # what switch.py does to its copy
    again = cache.children(spec, owner, None, cache.jobs(spec, owner))
    assert "ingress" in again and len(counted) == 1


def test_a_new_generation_or_site_image_renders_again(spec_dict: dict[str, Any], counted: list[Any]):
    cache, owner = rendered.RenderCache(), Owner("p", "ns", "u1")
    spec = validate(spec_dict)
    cache.children(spec, owner, None, cache.jobs(spec, owner))
    cache.children(spec, owner, "img:2", cache.jobs(spec, owner))
    newer = validate(spec_dict)  # what SpecCache hands out for the next generation: another object
    cache.children(newer, owner, "img:2", cache.jobs(newer, owner))
    assert counted == [("u1", None), ("u1", "img:2"), ("u1", "img:2")]


def test_only_the_most_recent_projects_are_kept(spec_dict: dict[str, Any], counted: list[Any]):
    cache, spec = rendered.RenderCache(size=2), validate(spec_dict)
    for uid in ("a", "b", "c", "a"):
        owner = Owner(uid, "ns", uid)
        cache.children(spec, owner, None, cache.jobs(spec, owner))
    assert [u for u, _ in counted] == ["a", "b", "c", "a"]  # "a" was evicted by "c"
