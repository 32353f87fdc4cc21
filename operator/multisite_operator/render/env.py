"""Environment variables for Divio's Django runtime, in the exact forms its own code parses.

Checked against the published packages (see tests/unit/test_env_runtime.py, which parses them with them):
- aldryn-addons reads settings with django-getenv's `env()`, which applies `ast.literal_eval` to the raw value
  and falls back to the string. So dicts, lists and booleans are written as Python literals (`repr`), never JSON
  (`true`/`null` are not Python and would stay strings).
- aldryn-django does `settings['ALLOWED_HOSTS'].append(...)`: ALLOWED_HOSTS must parse to a list, not a
  comma-separated string. DOMAIN_ALIASES and DOMAIN_REDIRECTS, in contrast, are split on ',' as strings.
- django-multisite-plus builds test domains with `DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT.format(slug)`, a
  positional placeholder: our `{slug}` is written as `{}`.
- django-multisite-plus master refuses to start while settings.py lacks DJANGO_MULTISITE_PLUS_AUTO_REWRITE_DOMAINS =
  False and REWRITE_DOMAINS is True (its AppConfig.ready()); no environment variable sets it (its aldryn_config.py
  reads none), so the project's settings.py must (README, "What the Django runtime receives").
- A wildcard alias '*.example.de' takes three forms: the Ingress host as is; '.example.de' in ALLOWED_HOSTS
  (Django's "this domain and its subdomains"; '*.example.de' would match nothing); and for aldryn-sites, which
  `re.compile()`s every alias and redirect (a leading '*' raises re.error), the anchored regex of one label,
  '^[^.]+\\.example\\.de$', the same single label an Ingress wildcard matches. django-multisite's Alias rows take
  '*.example.de' as is (its resolver tries '*.<parent>' for each parent of the request's host).
- ALDRYN_SITES_REDIRECT_PERMANENT=True: aldryn-sites' redirects are 302 by default; redirect hosts answer 301, as
  django-multisite's redirect Aliases do in the shared mode.
"""

from __future__ import annotations

import re
from typing import Any

from ..models import MultiSiteProjectSpec, Site

EnvVar = dict[str, Any]


def _plain(name: str, value: str) -> EnvVar:
    return {"name": name, "value": value}


def secret_env(spec: MultiSiteProjectSpec) -> list[EnvVar]:
    """DATABASE_URL and DEFAULT_STORAGE_DSN by reference: identical for every pod of the project, by construction."""
    out = [
        {
            "name": "DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": spec.database.secret_ref.name, "key": spec.database.secret_ref.key}},
        }
    ]
    if spec.storage is not None:
        ref = spec.storage.secret_ref
        out.append({"name": "DEFAULT_STORAGE_DSN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    return out


def served_hosts(spec: MultiSiteProjectSpec, sites: list[Site] | None = None) -> list[str]:
    """Every host of the active environment, in spec order, without repeats."""
    # dict.fromkeys keeps the first of each in order, in linear time (a list membership test was quadratic).
    return list(dict.fromkeys(h for site in (spec.sites if sites is None else sites)
                              for h in spec.site_domains(site).names()))


def allowed_hosts(hosts: list[str]) -> list[str]:
    """Django's ALLOWED_HOSTS entries for served hosts: '*.example.de' becomes '.example.de' (see above)."""
    return list(dict.fromkeys(h[1:] if h.startswith("*.") else h for h in hosts))


def aldryn_sites_name(host: str) -> str:
    """An alias or redirect as aldryn-sites matches it: plain names as they are, a wildcard as a one-label regex."""
    return "^[^.]+" + re.escape(host[1:]) + "$" if host.startswith("*.") else host


def multisite_sites_literal(spec: MultiSiteProjectSpec) -> str:
    """DJANGO_MULTISITE_PLUS_SITES: a Python dict literal keyed by slug, real_domain always the live domain."""
    value = {s.slug: {"id": s.id, "real_domain": s.live.domain, "name": s.name} for s in spec.sites}
    return repr(value)


def shared_env(spec: MultiSiteProjectSpec) -> list[EnvVar]:
    """The env of the shared deployment and its populate Job (the Job must see exactly what the web pods see)."""
    live = spec.environment == "live"
    env = [
        _plain("STAGE", spec.environment),
        _plain("SITE_ID", str(spec.default_site().id)),
        _plain("ALLOWED_HOSTS", repr(allowed_hosts(served_hosts(spec)))),
        _plain("DJANGO_MULTISITE_PLUS_MODE", "single-process"),
        _plain("DJANGO_MULTISITE_PLUS_SITES", multisite_sites_literal(spec)),
        _plain("DJANGO_MULTISITE_PLUS_AUTO_POPULATE_SITES", "False"),
        _plain("DJANGO_MULTISITE_PLUS_USE_REAL_DOMAIN", repr(live)),
        _plain("DJANGO_MULTISITE_PLUS_REWRITE_DOMAINS", repr(not live)),
    ]
    if not live:
        fmt = spec.rewrite_domain_format()
        if fmt is not None:
            env.append(_plain("DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT", fmt))
    return env + secret_env(spec) + list(spec.env)


def aldryn_sites_domains_literal(spec: MultiSiteProjectSpec, site: Site) -> str:
    """ALDRYN_SITES_DOMAINS for one site's instance: a Python dict literal keyed by the site's OWN id.

    Without it aldryn-django builds the dict from DOMAIN/DOMAIN_ALIASES/DOMAIN_REDIRECTS keyed by the constant 1,
    whatever SITE_ID is. In multi-project mode that is wrong twice over: aldryn-sites' set_site_names() then writes
    this site's domain onto Site 1 in the shared database (every instance overwriting site 1 in turn), and its
    SiteMiddleware, which looks the config up by SITE_ID, finds nothing and never redirects.
    """
    domains = spec.site_domains(site)
    value = {site.id: {"name": site.name, "domain": domains.domain,
                       "aliases": [aldryn_sites_name(h) for h in domains.aliases],
                       "redirects": [aldryn_sites_name(h) for h in domains.redirects]}}
    return repr(value)


def site_env(spec: MultiSiteProjectSpec, site: Site) -> list[EnvVar]:
    """The env of one site's own Django instance (multi-project mode, and local development of one site).

    DOMAIN, DOMAIN_ALIASES and DOMAIN_REDIRECTS are what aldryn-django documents (comma-separated, split on ',');
    ALDRYN_SITES_DOMAINS carries the same names keyed by this site's id, which aldryn-django prefers over them.
    """
    domains = spec.site_domains(site)
    env = [
        _plain("STAGE", spec.environment),
        _plain("SITE_ID", str(site.id)),
        _plain("SITE_NAME", site.name),
        _plain("DOMAIN", domains.domain),
        _plain("DOMAIN_ALIASES", ",".join(aldryn_sites_name(h) for h in domains.aliases)),
        _plain("DOMAIN_REDIRECTS", ",".join(aldryn_sites_name(h) for h in domains.redirects)),
        _plain("ALDRYN_SITES_DOMAINS", aldryn_sites_domains_literal(spec, site)),
        _plain("ALDRYN_SITES_REDIRECT_PERMANENT", "True"),
        _plain("ALLOWED_HOSTS", repr(allowed_hosts(domains.names()))),
    ]
    return env + secret_env(spec) + list(spec.env)


def stored_form(env: list[EnvVar]) -> list[EnvVar]:
    """The env as the API server stores it: an empty `value` is dropped (omitempty).

    Rendered objects must match what is stored, or every comparison with the observed object differs and every
    reconcile re-applies. A variable without a value is the empty string in the container, as before.
    """
    return [{k: v for k, v in e.items() if not (k == "value" and v == "")} for e in env]
