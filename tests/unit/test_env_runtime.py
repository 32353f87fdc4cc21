"""Our env vars parsed by Divio's own runtime code (django-getenv, aldryn-addons), not by our expectations."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aldryn_addons.utils import boolean_ish
from getenv import env as getenv

from multisite_operator.models import MultiSiteProjectSpec
from multisite_operator.render.env import shared_env, site_env


@contextmanager
def environ(values: list[dict[str, Any]]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update({v["name"]: v["value"] for v in values if "value" in v})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_sites_dict_is_a_python_literal_the_runtime_reads_as_a_dict(spec_dict):
    spec_dict["sites"][0]["name"] = "Deutschland's \"beste\" Seite: True"  # quotes and a word like a literal
    spec = MultiSiteProjectSpec.model_validate(spec_dict)
    with environ(shared_env(spec)):
        sites = getenv("DJANGO_MULTISITE_PLUS_SITES", {})
    assert sites["de"] == {"id": 1, "real_domain": "example.de", "name": "Deutschland's \"beste\" Seite: True"}
    assert list(sites) == ["de", "gh", "us"]


def test_booleans_and_site_id_parse_to_python_values(spec):
    with environ(shared_env(spec)):
        assert boolean_ish(getenv("DJANGO_MULTISITE_PLUS_AUTO_POPULATE_SITES", True)) is False
        assert boolean_ish(getenv("DJANGO_MULTISITE_PLUS_REWRITE_DOMAINS", True)) is True
        assert boolean_ish(getenv("DJANGO_MULTISITE_PLUS_USE_REAL_DOMAIN", False)) is False
        assert getenv("SITE_ID", 1) == 1
        assert int(getenv("SITE_ID", 1)) == 1  # multisite's SiteID(default=int(env("SITE_ID", 1)))


def test_rewrite_format_is_positional_as_multisite_plus_formats_it(spec):
    """django_multisite_plus.models.domain_for_slug: `domain_format.format(slug)`."""
    with environ(shared_env(spec)):
        fmt = getenv("DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT", "{}.divio.me")
    assert fmt == "{}.example-stage.eu.aldryn.io"
    assert fmt.format("gh") == "gh.example-stage.eu.aldryn.io"


def test_format_is_derived_from_explicit_test_domains(spec_dict):
    del spec_dict["testDomainFormat"]
    for site in spec_dict["sites"]:
        site["test"] = {"domain": f"{site['slug']}.stage.example.com"}
    spec = MultiSiteProjectSpec.model_validate(spec_dict)
    assert spec.rewrite_domain_format() == "{}.stage.example.com"


def test_test_domains_without_one_pattern_are_rejected_in_shared_test_mode(spec_dict):
    del spec_dict["testDomainFormat"]
    for site, domain in zip(spec_dict["sites"], ["de.stage.example.com", "ghana-test.example.com", "us.stage.example.com"]):
        site["test"] = {"domain": domain}
    with pytest.raises(ValueError, match="one pattern around the slug"):
        MultiSiteProjectSpec.model_validate(spec_dict)
    # The same domains are fine where the runtime does not derive them: multi-project mode.
    MultiSiteProjectSpec.model_validate({**spec_dict, "mode": "multi-project"})


def test_allowed_hosts_is_a_list_aldryn_can_append_to(spec):
    with environ(shared_env(spec)):
        hosts = getenv("ALLOWED_HOSTS", ["localhost", "*"])
    hosts.append("extra")  # aldryn-django's domain_settings() does exactly this
    assert hosts[:3] == ["de.example-stage.eu.aldryn.io", "gh.example-stage.eu.aldryn.io", "us.example-stage.eu.aldryn.io"]


def test_site_env_matches_aldryn_domain_settings(spec_dict):
    spec = MultiSiteProjectSpec.model_validate({**spec_dict, "environment": "live"})
    de = spec.sites[0]
    with environ(site_env(spec, de)):
        # aldryn-django: [d.strip() for d in env('DOMAIN_ALIASES', '').split(',') if d.strip()]
        aliases = [d.strip() for d in getenv("DOMAIN_ALIASES", "").split(",") if d.strip()]
        redirects = [d.strip() for d in getenv("DOMAIN_REDIRECTS", "").split(",") if d.strip()]
        assert getenv("DOMAIN") == "example.de"
        assert aliases == ["www.example.de"] and redirects == []
        assert getenv("SITE_ID", 1) == 1
        assert getenv("ALLOWED_HOSTS", []) == ["example.de", "www.example.de"]
