"""Issue 13: every domain answers right. Aliases, redirects and wildcards as the runtime's own code reads them.

Django's host check is the installed Django's `validate_host`; aldryn-sites' matching is restated in
tests/aldryn_runtime.py; the populate script (multisite_operator/populate.py) runs here against an in-memory
stand-in of django-multisite's Alias and django-multisite-plus's Site managers (the real Django 3.2 stack cannot be
installed next to this venv's Django; the same script was run by hand against the real packages, see the README).
"""

from __future__ import annotations

import json
import re
import sys
import types
from contextlib import contextmanager
from typing import Any

import pytest
from django.http.request import validate_host

from aldryn_runtime import aldryn_sites_response
from multisite_operator.models import MultiSiteProjectSpec
from multisite_operator.populate import ALIASES_ENV, DEFAULT_POPULATE_COMMAND, POPULATE_SCRIPT
from multisite_operator.render import Owner, render_children
from multisite_operator.render.env import shared_env, site_env
from multisite_operator.render.jobs import populate_job

OWNER = Owner(name="example", namespace="shop", uid="u")


def with_domains(spec_dict: dict[str, Any], **changes: Any) -> MultiSiteProjectSpec:
    """The example with wildcards: de has alias *.example.de, us redirects www.example.us and *.example.us."""
    sites = spec_dict["sites"]
    sites[0]["live"]["aliases"] = ["www.example.de", "*.example.de"]
    sites[1]["live"]["aliases"] = ["www.example.gh"]
    sites[2]["live"]["redirects"] = ["www.example.us", "*.example.us"]
    sites[2]["test"] = {"redirects": ["*.us.example-stage.eu.aldryn.io"]}
    return MultiSiteProjectSpec.model_validate({**spec_dict, **changes})


def values(env: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", "") for e in env if "valueFrom" not in e}


def allowed(env: list[dict[str, Any]]) -> list[str]:
    from getenv import env as getenv

    from aldryn_runtime import environ

    with environ(values(env)):
        return getenv("ALLOWED_HOSTS", [])


# --- wildcards: ALLOWED_HOSTS, Ingress, aldryn-sites ------------------------------------------------------------------
def test_a_wildcard_alias_lets_django_accept_its_subdomains_in_both_modes(spec_dict):
    shared = with_domains(spec_dict, environment="live")
    hosts = allowed(shared_env(shared))
    assert ".example.de" in hosts and "*.example.de" not in hosts
    assert validate_host("shop.example.de", hosts) and validate_host("shop.example.us", hosts)
    assert not validate_host("example.com", hosts)
    multi = with_domains(spec_dict, environment="live", mode="multi-project")
    de = allowed(site_env(multi, multi.sites[0]))
    assert validate_host("shop.example.de", de) and not validate_host("shop.example.us", de)  # only its own


def test_the_ingress_routes_the_wildcard_host_itself(spec_dict):
    spec = with_domains(spec_dict, environment="live")
    ing = next(o for o in render_children(spec, OWNER) if o["kind"] == "Ingress")
    assert "*.example.de" in [r["host"] for r in ing["spec"]["rules"]]


def test_multi_project_wildcards_match_in_aldryn_sites_and_redirects_are_301(spec_dict):
    spec = with_domains(spec_dict, environment="live", mode="multi-project")
    de, us = (values(site_env(spec, s)) for s in (spec.sites[0], spec.sites[2]))
    assert aldryn_sites_response(de, "shop.example.de") == (200, None)
    assert aldryn_sites_response(de, "www.example.de") == (200, None)
    assert aldryn_sites_response(de, "example.us") == (400, None)  # another site's domain: not this instance's
    assert aldryn_sites_response(us, "www.example.us", "/a?b=1") == (301, "http://example.us/a?b=1")
    assert aldryn_sites_response(us, "shop.example.us", "/a?b=1") == (301, "http://example.us/a?b=1")
    assert aldryn_sites_response(us, "example.us") == (200, None)


def test_without_the_permanent_flag_aldryn_sites_would_answer_302(spec_dict):
    """The defect this fixes: aldryn-sites' default is a temporary redirect."""
    spec = with_domains(spec_dict, environment="live", mode="multi-project")
    us = values(site_env(spec, spec.sites[2]))
    assert us["ALDRYN_SITES_REDIRECT_PERMANENT"] == "True"
    del us["ALDRYN_SITES_REDIRECT_PERMANENT"]
    assert aldryn_sites_response(us, "www.example.us")[0] == 302


def test_the_raw_wildcard_would_crash_aldryn_sites(spec_dict):
    """Why the regex: aldryn-sites re.compile()s every alias; '*.example.de' is not a regex."""
    spec = with_domains(spec_dict, environment="live", mode="multi-project")
    de = values(site_env(spec, spec.sites[0]))
    raw = de["ALDRYN_SITES_DOMAINS"].replace("'^[^.]+\\\\.example\\\\.de$'", "'*.example.de'")
    assert raw != de["ALDRYN_SITES_DOMAINS"]
    with pytest.raises(re.error):
        aldryn_sites_response({**de, "ALDRYN_SITES_DOMAINS": raw}, "shop.example.de")


# --- TLS ----------------------------------------------------------------------------------------------------------
def test_tls_is_one_entry_and_secret_per_site_or_one_for_all_when_named(spec_dict):
    spec = with_domains(spec_dict, environment="live")
    tls = next(o for o in render_children(spec, OWNER) if o["kind"] == "Ingress")["spec"]["tls"]
    assert tls == [
        {"hosts": ["example.de", "www.example.de", "*.example.de"], "secretName": "example-tls-de"},
        {"hosts": ["example.gh", "www.example.gh"], "secretName": "example-tls-gh"},
        {"hosts": ["example.us", "www.example.us", "*.example.us"], "secretName": "example-tls-us"},
    ]
    spec_dict["ingress"]["tls"]["secretName"] = "wildcard-cert"
    single = with_domains(spec_dict, environment="live", mode="multi-project")
    [entry] = next(o for o in render_children(single, OWNER, "img") if o["kind"] == "Ingress")["spec"]["tls"]
    assert entry["secretName"] == "wildcard-cert" and len(entry["hosts"]) == 8


# --- the populate Job --------------------------------------------------------------------------------------------
def test_populate_job_gets_the_active_environments_aliases_as_json_and_no_user_input_in_its_command(spec_dict):
    spec = with_domains(spec_dict, environment="live")
    job = populate_job(spec, OWNER)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == DEFAULT_POPULATE_COMMAND == ["python", "manage.py", "shell", "-c", POPULATE_SCRIPT]
    assert json.loads(values(container["env"])[ALIASES_ENV]) == {
        "www.example.de": [1, False], "*.example.de": [1, False], "www.example.gh": [2, False],
        "www.example.us": [3, True], "*.example.us": [3, True]}
    test = populate_job(with_domains(spec_dict), OWNER)
    assert json.loads(values(test["spec"]["template"]["spec"]["containers"][0]["env"])[ALIASES_ENV]) == {
        "*.us.example-stage.eu.aldryn.io": [3, True]}
    # The web pods do not get it: only the Job needs it.
    web = next(o for o in render_children(spec, OWNER) if o["kind"] == "Deployment")
    assert ALIASES_ENV not in values(web["spec"]["template"]["spec"]["containers"][0]["env"])


def test_an_alias_change_makes_a_new_populate_job(spec_dict):
    base = populate_job(with_domains(spec_dict, environment="live"), OWNER)["metadata"]["name"]
    spec_dict["sites"][1]["live"]["redirects"] = ["old.example.gh"]
    assert populate_job(with_domains(spec_dict, environment="live"), OWNER)["metadata"]["name"] != base


class FakeAlias:
    """django-multisite 1.9.0's Alias as the script uses it: unique domain (case-insensitive), is_canonical True/None."""

    rows: list[FakeAlias] = []
    saves = 0

    def __init__(self, domain: str, site_id: int, redirect_to_canonical: bool = True, is_canonical: bool | None = None):
        self.domain, self.site_id, self.is_canonical = domain, site_id, is_canonical
        self.redirect_to_canonical = redirect_to_canonical

    def save(self) -> None:
        FakeAlias.saves += 1

    def delete(self) -> None:
        FakeAlias.rows.remove(self)
        FakeAlias.saves += 1

    class objects:  # noqa: N801 - the manager's name in Django
        @staticmethod
        def select_for_update() -> list[FakeAlias]:
            return list(FakeAlias.rows)

        @staticmethod
        def create(**fields: Any) -> FakeAlias:
            if any(a.domain.lower() == fields["domain"].lower() for a in FakeAlias.rows):
                raise ValueError("Alias with this Domain name already exists.")
            alias = FakeAlias(**fields)
            FakeAlias.rows.append(alias)
            FakeAlias.saves += 1
            return alias


def run_script(monkeypatch: pytest.MonkeyPatch, aliases_json: str) -> list[str]:
    calls: list[str] = []
    plus = types.SimpleNamespace(objects=types.SimpleNamespace(
        auto_populate_sites=lambda: calls.append("auto_populate_sites"), update_sites=lambda: calls.append("update_sites")))

    @contextmanager
    def atomic() -> Any:
        yield

    modules = {
        "django_multisite_plus": types.ModuleType("django_multisite_plus"),
        "django_multisite_plus.models": types.SimpleNamespace(Site=plus),
        "multisite": types.ModuleType("multisite"),
        "multisite.models": types.SimpleNamespace(Alias=FakeAlias),
        "django.db": types.SimpleNamespace(transaction=types.SimpleNamespace(atomic=atomic)),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setenv(ALIASES_ENV, aliases_json)
    exec(POPULATE_SCRIPT, {})  # what `manage.py shell -c` does with it
    return calls


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> list[FakeAlias]:
    FakeAlias.rows = [FakeAlias("example.de", 1, is_canonical=True), FakeAlias("example.us", 3, is_canonical=True),
                      FakeAlias("old.example.gh", 2, redirect_to_canonical=False),  # no longer in the spec
                      FakeAlias("www.example.us", 3, redirect_to_canonical=False)]  # was an alias, now a redirect
    FakeAlias.saves = 0
    return FakeAlias.rows


def test_populate_script_keeps_aliases_in_step_and_never_touches_canonical_ones(monkeypatch, database, spec_dict):
    spec = with_domains(spec_dict, environment="live")
    wanted = values(populate_job(spec, OWNER)["spec"]["template"]["spec"]["containers"][0]["env"])[ALIASES_ENV]
    calls = run_script(monkeypatch, wanted)
    assert calls == ["auto_populate_sites", "update_sites"]  # what the two management commands run, first
    rows = {a.domain: (a.site_id, a.redirect_to_canonical, a.is_canonical) for a in database}
    assert rows == {
        "example.de": (1, True, True), "example.us": (3, True, True),  # canonical: untouched
        "www.example.de": (1, False, None), "*.example.de": (1, False, None), "www.example.gh": (2, False, None),
        "www.example.us": (3, True, None), "*.example.us": (3, True, None),
    }
    FakeAlias.saves = 0
    run_script(monkeypatch, wanted)  # the same spec again: nothing written
    assert FakeAlias.saves == 0


def test_populate_script_fails_naming_a_host_that_is_another_sites_domain(monkeypatch, database, capsys):
    with pytest.raises(SystemExit) as exc:
        run_script(monkeypatch, json.dumps({"example.us": [1, False], "www.example.de": [1, False]}))
    assert "example.us is the domain of Site 3" in str(exc.value.code)
    assert "www.example.de" in capsys.readouterr().out  # the rest was written
    assert any(a.domain == "example.us" and a.is_canonical for a in database)
