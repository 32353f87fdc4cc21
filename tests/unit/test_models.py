"""The spec model rejects what the CRD rejects, with the same words, and says what to fix.

INVALID is the table of mistakes users make; tests/e2e/test_validation.py applies the very same table to the real
API server (kubectl and the API) and to `multisite-operator render`, so both paths are held to these messages.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from multisite_operator.models import MESSAGES, WILDCARD_HELP, MultiSiteProjectSpec, host_problem
from multisite_operator.specs import readable

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "example-shared.yaml"


def example_spec() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    return copy.deepcopy(next(d for d in docs if d["kind"] == "MultiSiteProject")["spec"])


@dataclass(frozen=True)
class Invalid:
    """A spec mistake, and the words every path (API server, render, the operator's InvalidSpec) must say."""

    id: str
    mutate: Callable[[dict[str, Any]], Any]
    says: tuple[str, ...]
    api_says: tuple[str, ...] = ()  # only in the API server's message (e.g. the duplicate it found)
    render_says: tuple[str, ...] = ()  # only in the model's message

    def spec(self) -> dict[str, Any]:
        spec = example_spec()
        self.mutate(spec)
        return spec


def _site(i: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda spec: spec["sites"][i]


def _set(path: Callable[[dict[str, Any]], dict[str, Any]], **values: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda spec: path(spec).update(values)


def _live(i: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda spec: spec["sites"][i]["live"]


def _same_test_domain(spec: dict[str, Any]) -> None:
    for site in spec["sites"][:2]:
        site["test"] = {"domain": "shared.example-stage.eu.aldryn.io"}


INVALID = [
    Invalid("duplicate-slug", _set(_site(1), slug="de"), (MESSAGES["slugs"],),
            api_says=("key de already exists",), render_says=("de used more than once",)),
    Invalid("duplicate-id", _set(_site(1), id=1), (MESSAGES["ids"],),
            api_says=("key 1 already exists",), render_says=("1 used more than once",)),
    Invalid("duplicate-live-domain", _set(_live(1), domain="example.de"), (MESSAGES["live"],),
            api_says=("key example.de already exists",), render_says=("example.de used more than once",)),
    Invalid("live-alias-repeats-another-sites-alias", _set(_live(1), aliases=["www.example.de"]), (MESSAGES["live"],),
            api_says=("key www.example.de already exists",), render_says=("www.example.de used more than once",)),
    Invalid("duplicate-test-domain", _same_test_domain, (MESSAGES["test"],),
            api_says=("key shared.example-stage.eu.aldryn.io already exists",)),
    Invalid("uppercase-domain", _set(_live(0), domain="Example.de"), ("must be lowercase: write 'example.de'",)),
    Invalid("underscore-in-domain", _set(_live(0), domain="my_shop.de"), ("must not contain '_'",)),
    Invalid("trailing-dot", _set(_live(0), domain="example.de."), ("must not end with a dot",)),
    Invalid("wildcard-primary-domain", _set(_live(0), domain="*.example.de"),
            ("a wildcard ('*.') is allowed only in aliases and redirects, not as the primary domain",)),
    Invalid("url-instead-of-host", _set(_live(0), domain="https://example.de/"),
            ("must be a host name only, without scheme, port or path",)),
    Invalid("uppercase-test-domain", _set(_site(0), test={"domain": "DE.example-stage.eu.aldryn.io"}),
            ("must be lowercase: write 'de.example-stage.eu.aldryn.io'",)),
    Invalid("uppercase-alias", _set(_live(0), aliases=["WWW.example.de"]), ("spec.sites[0].live.aliases[0]",),
            api_says=("WWW.example.de",), render_says=("must be lowercase: write 'www.example.de'",)),
    # Wildcards no layer can serve (Ingress, Django's ALLOWED_HOSTS, django-multisite, aldryn-sites); the API
    # server's `pattern` rejects them at apply time, render and InvalidSpec say why.
    Invalid("bare-wildcard-alias", _set(_live(0), aliases=["*"]), ("spec.sites[0].live.aliases[0]",),
            api_says=("'*'",), render_says=(WILDCARD_HELP["bare"],)),
    Invalid("wildcard-in-the-middle", _set(_live(2), redirects=["shop.*.example.us"]),
            ("spec.sites[2].live.redirects[0]",), api_says=("shop.*.example.us",), render_says=(WILDCARD_HELP["inner"],)),
    Invalid("partial-wildcard-label", _set(_site(0), test={"aliases": ["shop*.example-stage.eu.aldryn.io"]}),
            ("spec.sites[0].test.aliases[0]",), api_says=("shop*.example-stage.eu.aldryn.io",),
            render_says=(WILDCARD_HELP["inner"],)),
    Invalid("bad-slug", _set(_site(0), slug="De_1"), ("slug must be lowercase letters, digits and '-'",)),
    Invalid("unknown-mode", lambda s: s.update(mode="single"), ("spec.mode", "'shared'", "'multi-project'"),
            api_says=('"single"',)),
    Invalid("unknown-environment", lambda s: s.update(environment="production"), ("spec.environment", "'live'",
                                                                                     "'test'")),
    Invalid("no-test-domain-and-no-format", lambda s: s.pop("testDomainFormat"), (MESSAGES["test_domain_fix"],),
            api_says=("every site needs a test domain",), render_says=("sites de, gh, us have no test domain",)),
    Invalid("format-without-slug", lambda s: s.update(testDomainFormat="stage.example.com"),
            (MESSAGES["format_slug"],)),
    Invalid("format-not-a-host", lambda s: s.update(testDomainFormat="{slug}.Stage.example.com"),
            (MESSAGES["format_host"],)),
    Invalid("default-site-not-a-site", lambda s: s.update(defaultSiteId=9), (MESSAGES["default_site"],)),
    Invalid("no-image", lambda s: s.pop("image"), ("spec.image",)),
    Invalid("no-sites", lambda s: s.update(sites=[]), ("spec.sites",)),
]


def model_error(spec: dict[str, Any]) -> str:
    """The message `render` and the operator's InvalidSpec condition show for a spec ('' when it is valid)."""
    try:
        MultiSiteProjectSpec.model_validate(spec)
    except ValidationError as exc:
        return readable(exc)
    return ""


def test_the_example_is_valid():
    assert model_error(example_spec()) == ""


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_model_rejects_with_a_message_that_says_what_to_fix(case: Invalid):
    message = model_error(case.spec()).replace('"', "'")
    assert message, f"{case.id} was accepted"
    for words in case.says + case.render_says:
        assert words.replace('"', "'") in message, f"{case.id}: {words!r} not in {message!r}"


@pytest.mark.parametrize(("host", "wildcard", "problem"), [
    ("example.de", False, None),
    ("*.example.de", True, None),
    ("xn--mnchen-3ya.de", False, None),
    ("Example.de", False, "must be lowercase: write 'example.de'"),
    ("*.example.de", False, "a wildcard ('*.') is allowed only in aliases and redirects, not as the primary domain"),
    ("example..de", False, "must be a host name: labels of a-z, 0-9 and '-' joined by dots, e.g. 'www.example.com'"),
    ("-example.de", False, "must be a host name: labels of a-z, 0-9 and '-' joined by dots, e.g. 'www.example.com'"),
    ("example.de:8000", False, "must be a host name only, without scheme, port or path"),
    ("a.*.example.de", True, WILDCARD_HELP["inner"]),
    ("*", True, WILDCARD_HELP["bare"]),
    ("*example.de", True, WILDCARD_HELP["inner"]),
    ("*.*.example.de", True, WILDCARD_HELP["inner"]),
    ("shop*.example.de", True, WILDCARD_HELP["inner"]),
    ("*.de", True, None),
])
def test_host_problem_names_the_mistake(host: str, wildcard: bool, problem: str | None):
    assert host_problem(host, wildcard=wildcard) == problem


def test_every_problem_of_one_spec_is_reported_at_once():
    """Fixing one mistake only to be told about the next one is slow: duplicates are all listed."""
    spec = example_spec()
    spec["sites"][1].update(slug="de", id=1)
    message = model_error(spec)
    assert f"{MESSAGES['slugs']} (de used more than once)" in message
    assert f"{MESSAGES['ids']} (1 used more than once)" in message


def test_an_explicit_test_host_equal_to_another_sites_derived_test_domain_is_rejected():
    """Both hosts would be routed and the Ingress keeps one backend per host: one site silently loses its route."""
    spec = example_spec()  # testDomainFormat '{slug}.example-stage.eu.aldryn.io', no explicit test domains
    spec["sites"][0]["test"] = {"domain": "gh.example-stage.eu.aldryn.io"}
    message = model_error(spec)
    assert ("site de lists test domain gh.example-stage.eu.aldryn.io, which is site gh's test domain derived from "
            "testDomainFormat") in message, message
    spec["sites"][0]["test"] = {"aliases": ["us.example-stage.eu.aldryn.io"]}
    assert "which is site us's test domain derived from testDomainFormat" in model_error(spec)
    # A site's own derived domain written out, or another site's host once that site has its own: accepted.
    spec["sites"][0]["test"] = {"domain": "de.example-stage.eu.aldryn.io"}
    assert model_error(spec) == ""
    spec["sites"][0]["test"] = {"domain": "gh.example-stage.eu.aldryn.io"}
    spec["sites"][1]["test"] = {"domain": "ghana.example-stage.eu.aldryn.io"}
    assert "derived from testDomainFormat" not in model_error(spec)
