"""What Divio's Django runtime makes of a pod's environment, computed with its own parser.

aldryn-addons reads every setting with django-getenv's `env()` (installed in the venv, used here as is). The
few lines of aldryn-django's `domain_settings()` and aldryn-sites that turn DOMAIN, DOMAIN_ALIASES,
DOMAIN_REDIRECTS, ALDRYN_SITES_DOMAINS, SITE_ID and ALLOWED_HOSTS into settings are restated in `domain_settings`
(aldryn-django itself needs a whole Django project to import), so tests can check what a site's instance would
actually serve, redirect and write into the shared database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from getenv import env as getenv


@contextmanager
def environ(values: dict[str, Any]) -> Iterator[None]:
    """os.environ as a container with these variables sees it (a variable without a value is the empty string)."""
    saved = dict(os.environ)
    os.environ.update({k: "" if v is None else v for k, v in values.items() if v is None or isinstance(v, str)})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _comma_list(name: str) -> list[str]:
    return [d.strip() for d in getenv(name, "").split(",") if d.strip()]


def domain_settings(env: dict[str, Any]) -> dict[str, Any]:
    """Settings of one instance: SITE_ID, DOMAIN, ALLOWED_HOSTS, ALDRYN_SITES_DOMAINS, STAGE, and what follows.

    `redirect_config` is the entry aldryn-sites' SiteMiddleware uses for this SITE_ID (None: it redirects nothing);
    `writes_sites` are the django.contrib.sites ids whose domain aldryn-sites' set_site_names() writes at start-up.
    """
    with environ(env):
        site_id = getenv("SITE_ID", 1)
        allowed = getenv("ALLOWED_HOSTS", ["localhost", "*"])
        domain = getenv("DOMAIN")
        aliases, redirects = _comma_list("DOMAIN_ALIASES"), _comma_list("DOMAIN_REDIRECTS")
        domains = getenv("ALDRYN_SITES_DOMAINS", {})
        if not domains and domain:  # aldryn-django's fallback: always keyed by 1
            domains = {1: {"name": getenv("SITE_NAME", ""), "domain": domain, "aliases": aliases,
                           "redirects": redirects}}
        own = domains.get(site_id)
        if own:
            allowed.append(own["domain"])  # raises if ALLOWED_HOSTS did not parse to a list
            allowed.extend(own["aliases"])
            allowed.extend(own["redirects"])
        return {
            "SITE_ID": site_id,
            "STAGE": getenv("STAGE"),
            "DOMAIN": domain,
            "DOMAIN_ALIASES": aliases,
            "DOMAIN_REDIRECTS": redirects,
            "ALLOWED_HOSTS": allowed,
            "ALDRYN_SITES_DOMAINS": domains,
            "redirect_config": own,
            "writes_sites": sorted(domains),
        }


def aldryn_sites_response(env: dict[str, Any], host: str, path: str = "/") -> tuple[int, str | None]:
    """What one site's instance answers for `http://host/path`: (400, None), (200, None) or (301/302, Location).

    Django's own host check (`django.http.request.validate_host`, from the installed Django) against the instance's
    ALLOWED_HOSTS, then aldryn-sites 0.6.0's `get_redirect_url` restated line for line (exact redirect > exact
    alias > pattern redirect > pattern alias; every alias and redirect goes through `re.compile()` and `.match()`),
    then its SiteMiddleware's `redirect(url, permanent=ALDRYN_SITES_REDIRECT_PERMANENT)`.
    """
    import re

    from aldryn_addons.utils import boolean_ish
    from django.http.request import validate_host

    settings = domain_settings(env)
    if not validate_host(host, settings["ALLOWED_HOSTS"]):
        return 400, None
    config = settings["redirect_config"]
    if config is None:
        return 200, None
    domains = set(config.get("aliases", [])) | {config["domain"]}
    redirects = set(config.get("redirects", []))

    def match_any(patterns: set[str]) -> bool:
        return any(p == host or re.compile(p).match(host) for p in patterns)  # re.error for '*.x', as in aldryn-sites

    if host in domains or not (host in redirects or match_any(redirects)):
        match_any(domains)  # compiled as aldryn-sites compiles them: raises on what it cannot compile
        return 200, None
    target = f"http://{config['domain']}{path}"
    with environ(env):
        permanent = boolean_ish(getenv("ALDRYN_SITES_REDIRECT_PERMANENT", False))
    return (301 if permanent else 302), target
