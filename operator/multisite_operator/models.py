"""The MultiSiteProject spec as typed models: the one source of truth for the CRD schema and the renderers.

Every field carries a description because the CRD's OpenAPI schema (and so `kubectl explain`) is generated
from these models. Rules the API server can enforce are attached as CEL (`x-kubernetes-validations`) next to
the field they guard; the same rules are checked here too, so `multisite-operator render` rejects what
`kubectl apply` would reject, without a cluster.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .populate import ALIASES_ENV, DEFAULT_POPULATE_COMMAND

GROUP = "multisite.dev"
VERSION = "v1alpha1"
KIND = "MultiSiteProject"
PLURAL = "multisiteprojects"
SINGULAR = "multisiteproject"
SHORT_NAMES = ["msp"]

# Lowercase RFC 1123 host name; a leading "*." wildcard is allowed where Ingress allows one (aliases, redirects).
HOST_RE = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
WILDCARD_HOST_RE = r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SLUG_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# The most sites that still run: at about 1400 sites of the tests' shape (bench, tests/e2e/test_cluster_limits.py)
# DJANGO_MULTISITE_PLUS_SITES passes Linux's 128 KiB limit for one environment string and the container cannot
# start (limits.py). 1000 leaves room for longer names; limits.py still checks the real size of every spec.
MAX_SITES = 1000
MAX_NAMES_PER_SITE = 50

# What each cross-field rule tells the user, shared by the CRD's CEL rules (crd.py) and spec_problems below, so
# `kubectl apply` and `multisite-operator render` reject a spec with the same words.
MESSAGES = {
    "slugs": "site slugs must be unique: give every entry of spec.sites its own slug",
    "ids": "site ids must be unique: give every entry of spec.sites its own Django site id",
    "live": "live domains must be unique within the project: a domain, alias or redirect is listed twice",
    "test": "test domains must be unique within the project: a domain, alias or redirect is listed twice",
    "test_domain_fix": "set sites[].test.domain or spec.testDomainFormat (e.g. '{slug}.example-stage.eu.aldryn.io')",
    "default_site": "defaultSiteId must be the id of a site in spec.sites",
    "format_slug": "testDomainFormat must contain '{slug}', e.g. '{slug}.example-stage.eu.aldryn.io'",
    "format_host": "testDomainFormat must be a lowercase host name once '{slug}' is filled in",
    "routing": "spec.gateway and spec.ingress are mutually exclusive: remove spec.ingress (or set "
    "spec.ingress.enabled: false) to route through the Gateway API",
}

# The only wildcard every layer serves (Ingress, Django's ALLOWED_HOSTS, django-multisite, aldryn-sites) is a whole
# first label: '*.example.de' is one label under example.de in the Ingress and the regex aldryn-sites gets.
WILDCARD_HELP = {
    "bare": "a bare '*' would take every host of every project: write '*.example.com' for the subdomains of one domain",
    "inner": "a wildcard must be the whole first label, as in '*.example.com': Ingress and Django cannot serve '*' "
    "anywhere else",
}
HOST_HELP = "must be a host name: labels of a-z, 0-9 and '-' joined by dots, e.g. 'www.example.com'"
SLUG_HELP = "must be lowercase letters, digits and '-' (not first or last), e.g. 'de' or 'north-america'"


def host_problem(host: str, *, wildcard: bool) -> str | None:
    """What is wrong with a domain, in words, or None: the API server's regex message alone is unreadable.

    The checks run in this order in the CRD's CEL messageExpression too (see PRIMARY_HOST_RULE), so
    `kubectl apply` and `multisite-operator render` name the same problem.
    """
    if host != host.lower():
        return f"must be lowercase: write '{host.lower()}'"
    if "/" in host or ":" in host:
        return "must be a host name only, without scheme, port or path"
    if "_" in host:
        return "must not contain '_' (host names allow '-')"
    if host.endswith("."):
        return "must not end with a dot"
    if host.startswith("*.") and not wildcard:
        return "a wildcard ('*.') is allowed only in aliases and redirects, not as the primary domain"
    if wildcard and host == "*":
        return WILDCARD_HELP["bare"]
    if wildcard and "*" in host and (not host.startswith("*.") or "*" in host[2:]):
        return WILDCARD_HELP["inner"]
    if not re.fullmatch(WILDCARD_HOST_RE if wildcard else HOST_RE, host):
        return HOST_HELP
    return None


def _check_host(wildcard: bool) -> Any:
    def check(value: str) -> str:
        problem = host_problem(value, wildcard=wildcard)
        if problem:
            raise ValueError(f"{value!r} {problem}")
        return value

    return AfterValidator(check)


def _check_slug(value: str) -> str:
    if not re.fullmatch(SLUG_RE, value):
        raise ValueError(f"slug {SLUG_HELP}; got {value!r}")
    return value


def _cel_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# The primary domain (one per site and environment) is cheap enough for a CEL regex with a message that says what
# is wrong. Aliases and redirects (up to 2000 x 50 each) keep a plain `pattern`: the same rule on them is priced
# per possible item and exceeds the API server's CEL cost budget (measured: 17x over; even `contains('_')` is 1.04x).
PRIMARY_HOST_RULE = {
    "rule": f"self.matches({_cel_string(HOST_RE)})",
    "messageExpression": (
        "self != self.lowerAscii() ? \"must be lowercase: write '\" + self.lowerAscii() + \"'\""
        " : (self.contains('/') || self.contains(':')) ? 'must be a host name only, without scheme, port or path'"
        " : self.contains('_') ? \"must not contain '_' (host names allow '-')\""
        " : self.endsWith('.') ? 'must not end with a dot'"
        " : self.startsWith('*.') ? \"a wildcard ('*.') is allowed only in aliases and redirects, not as the primary"
        " domain\""
        f" : {_cel_string(HOST_HELP)}"
    ),
}
SLUG_RULE = {"rule": f"self.matches({_cel_string(SLUG_RE)})", "message": f"slug {SLUG_HELP}"}

# Kubernetes pass-through shapes: validated by the API server when the child object is applied.
FreeObject = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
IntOrString = Annotated[int | str, WithJsonSchema({"x-kubernetes-int-or-string": True})]
Host = Annotated[
    str,
    Field(max_length=253),
    _check_host(wildcard=False),
    WithJsonSchema({"type": "string", "maxLength": 253, "x-kubernetes-validations": [PRIMARY_HOST_RULE]}),
]
WildcardHost = Annotated[
    str,
    Field(max_length=253),
    _check_host(wildcard=True),
    WithJsonSchema({"type": "string", "maxLength": 253, "pattern": WILDCARD_HOST_RE}),
]
Slug = Annotated[
    str,
    Field(min_length=1, max_length=40),
    AfterValidator(_check_slug),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 40, "x-kubernetes-validations": [SLUG_RULE]}),
]
StringMap = dict[str, str]


class Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class SecretKeyRef(Model):
    name: str = Field(min_length=1, max_length=253, description="Name of a Secret in the project's namespace.")
    key: str = Field(min_length=1, max_length=253, description="Key inside the Secret that holds the value.")


class SecretSource(Model):
    secret_ref: SecretKeyRef = Field(
        description="Secret key whose value is passed to every pod through secretKeyRef; the operator never copies "
        "the value into another object."
    )


class Domains(Model):
    domain: Host = Field(description="Primary domain of the site in this environment (lowercase host name).")
    aliases: list[WildcardHost] = Field(
        default_factory=list,
        max_length=MAX_NAMES_PER_SITE,
        description="Further domains that serve the same site (routed and allowed, not redirected); "
        "'*.example.com' serves every subdomain one label deep.",
    )
    redirects: list[WildcardHost] = Field(
        default_factory=list,
        max_length=MAX_NAMES_PER_SITE,
        description="Domains that answer 301 to the primary domain, path and query kept (routed to the site); "
        "'*.example.com' for every subdomain one label deep.",
    )

    def names(self) -> list[str]:
        return [self.domain, *self.aliases, *self.redirects]


class TestDomains(Model):
    domain: Host | None = Field(
        default=None,
        description="Primary test domain. May be left out when spec.testDomainFormat is set.",
    )
    aliases: list[WildcardHost] = Field(default_factory=list, max_length=MAX_NAMES_PER_SITE, description="Test aliases.")
    redirects: list[WildcardHost] = Field(
        default_factory=list, max_length=MAX_NAMES_PER_SITE, description="Test domains redirected to the primary one."
    )


class Site(Model):
    slug: Slug = Field(
        description="Short stable key of the site (lowercase letters, digits, '-'); Django Multisite Plus's slug.",
    )
    id: int = Field(ge=1, description="Django site id (django.contrib.sites Site.pk); never reuse one for another site.")
    name: str = Field(min_length=1, max_length=50, description="Human-readable site name (Site.name).")
    live: Domains = Field(description="Domains served in the live environment.")
    test: TestDomains | None = Field(default=None, description="Domains served in the test environment.")
    replicas: int | None = Field(
        default=None, ge=0, description="multi-project mode: replicas of this site's Deployment (default spec.replicas)."
    )
    resources: FreeObject | None = Field(
        default=None, description="multi-project mode: container resources of this site (default spec.resources)."
    )


class TLS(Model):
    enabled: bool = Field(
        default=False,
        description="Add every served host to the Ingress's TLS section: one entry and Secret per site "
        "('<project>-tls-<slug>'), so cert-manager issues one certificate per site.",
    )
    secret_name: str | None = Field(
        default=None,
        max_length=253,
        description="One Secret for every host of the project (a pre-issued or wildcard certificate) instead of "
        "one per site.",
    )


class IngressSpec(Model):
    enabled: bool = Field(default=True, description="Create an Ingress routing every served domain.")
    class_name: str | None = Field(default=None, description="ingressClassName of the Ingress.")
    annotations: StringMap = Field(default_factory=dict, description="Annotations of the Ingress (e.g. cert-manager).")
    tls: TLS = Field(default_factory=TLS, description="TLS settings.")


class ParentRef(Model):
    name: str = Field(min_length=1, max_length=253, description="Name of the Gateway the HTTPRoutes attach to.")
    namespace: str | None = Field(
        default=None, min_length=1, max_length=63,
        description="Namespace of the Gateway (default: the project's). Its listeners must allow routes from the "
        "project's namespace (allowedRoutes).",
    )
    section_name: str | None = Field(
        default=None, min_length=1, max_length=253,
        description="Name of one listener of the Gateway (default: every listener whose hostname allows the hosts).",
    )


class GatewaySpec(Model):
    parent_refs: list[ParentRef] = Field(
        min_length=1, max_length=32,
        description="The Gateways (and listeners) every HTTPRoute of the project attaches to.",
    )
    https: bool = Field(
        default=False,
        description="The Gateway terminates TLS for these hosts: redirects answer with https:// and status URLs "
        "use https. TLS itself (listeners, certificates) is the Gateway's configuration, not the operator's.",
    )
    annotations: StringMap = Field(default_factory=dict, description="Annotations of every HTTPRoute.")
    labels: StringMap = Field(
        default_factory=dict, description="Extra labels of every HTTPRoute (the operator's own labels win)."
    )


DEFAULT_MIGRATE_COMMAND = ["python", "manage.py", "migrate", "--noinput"]


class JobSpec(Model):
    backoff_limit: int = Field(default=2, ge=0, le=20, description="Retries of the Job's pod before it counts as failed.")
    active_deadline_seconds: int = Field(
        default=900, ge=10, description="Seconds after which the Job is stopped and counts as failed."
    )
    pod_labels: StringMap = Field(default_factory=dict, description="Extra labels of the Job's pod.")
    pod_annotations: StringMap = Field(default_factory=dict, description="Extra annotations of the Job's pod.")


class PopulateSpec(JobSpec):
    enabled: bool = Field(default=True, description="Run the populate Job (writes the Sites tables) in shared mode.")
    command: list[str] = Field(
        default_factory=lambda: list(DEFAULT_POPULATE_COMMAND),
        min_length=1,
        description="Command of the populate Job. The default runs, in `manage.py shell`, what Django Multisite "
        "Plus's multisite_plus_populate_sites and multisite_plus_rewrite_domains commands run, then makes "
        f"django-multisite's Alias rows match the aliases and redirects of the active environment (JSON in {ALIASES_ENV}).",
    )


class MigrateSpec(JobSpec):
    command: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MIGRATE_COMMAND),
        min_length=1,
        description="Command of the migration Job run once per image before any web pod runs it (both modes; "
        "aldryn-django's own release step runs `python manage.py migrate --noinput`).",
    )


class MultiSiteProjectSpec(Model):
    mode: Literal["shared", "multi-project"] = Field(
        default="shared",
        description="shared: one Deployment serves every domain through Django Multisite Plus; multi-project: one "
        "Deployment per site (own SITE_ID), all on the same database, storage and image.",
    )
    environment: Literal["live", "test"] = Field(
        default="test", description="Which domain set this deployment serves: the sites' live or test domains."
    )
    image: str = Field(min_length=1, max_length=1024, description="Container image of the Django project.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None, description="imagePullPolicy of every container."
    )
    replicas: int = Field(default=1, ge=0, description="Replicas of the web Deployment (each site's in multi-project).")
    port: int = Field(default=80, ge=1, le=65535, description="Port the Django web process listens on.")
    command: list[str] | None = Field(default=None, description="Entrypoint override of the web container.")
    args: list[str] | None = Field(default=None, description="Arguments of the web container.")
    resources: FreeObject | None = Field(default=None, description="Container resources (requests/limits).")
    env: list[FreeObject] = Field(
        default_factory=list, description="Extra environment variables (Kubernetes EnvVar objects) for every container."
    )
    env_from: list[FreeObject] = Field(default_factory=list, description="Extra envFrom sources for every container.")
    image_pull_secrets: list[FreeObject] = Field(default_factory=list, description="imagePullSecrets of every pod.")
    service_account_name: str | None = Field(default=None, description="ServiceAccount of every pod.")
    node_selector: StringMap = Field(default_factory=dict, description="nodeSelector of every pod.")
    tolerations: list[FreeObject] = Field(default_factory=list, description="Tolerations of every pod.")
    affinity: FreeObject | None = Field(default=None, description="Affinity of every pod.")
    pod_labels: StringMap = Field(default_factory=dict, description="Extra labels of every pod.")
    pod_annotations: StringMap = Field(default_factory=dict, description="Extra annotations of every pod.")
    pod_security_context: FreeObject | None = Field(
        default=None,
        description="Pod securityContext; replaces the default, which meets the 'restricted' Pod Security Standard "
        "(runAsNonRoot, seccompProfile RuntimeDefault).",
    )
    security_context: FreeObject | None = Field(
        default=None,
        description="Container securityContext; replaces the default (no privilege escalation, all capabilities "
        "dropped).",
    )
    database: SecretSource = Field(description="DATABASE_URL, from a Secret shared by every site.")
    storage: SecretSource | None = Field(default=None, description="DEFAULT_STORAGE_DSN, from a Secret shared by every site.")
    default_site_id: int | None = Field(
        default=None, ge=1, description="SITE_ID of the shared deployment's fallback site (default: the first site)."
    )
    test_domain_format: str | None = Field(
        default=None,
        max_length=253,
        description="Test domain of sites that give none, with '{slug}' replaced by the site's slug, "
        "e.g. '{slug}.example-stage.eu.aldryn.io'.",
    )
    sites: list[Site] = Field(min_length=1, max_length=MAX_SITES, description="The project's sites.")
    ingress: IngressSpec = Field(default_factory=IngressSpec, description="Ingress settings.")
    gateway: GatewaySpec | None = Field(
        default=None,
        description="Route through the Gateway API (HTTPRoutes attached to these Gateways) instead of an Ingress; "
        "mutually exclusive with spec.ingress.",
    )
    populate: PopulateSpec = Field(default_factory=PopulateSpec, description="shared mode: the populate Job.")
    migrate: MigrateSpec = Field(default_factory=MigrateSpec, description="The migration Job (the version gate).")

    @field_validator("test_domain_format")
    @classmethod
    def _format_has_slug(cls, value: str | None) -> str | None:
        if value is not None:
            if "{slug}" not in value:
                raise ValueError(MESSAGES["format_slug"])
            if not re.fullmatch(HOST_RE, value.replace("{slug}", "slug")):
                raise ValueError(MESSAGES["format_host"])
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MultiSiteProjectSpec:
        problems = spec_problems(self)
        if problems:  # all at once: fixing one mistake only to hear of the next one is slow
            raise ValueError("; ".join(problems))
        return self

    # Convenience views used by every renderer.
    def routing(self) -> Literal["ingress", "gateway"] | None:
        """Which routing layer serves the project: the Gateway API when spec.gateway is set, else the Ingress."""
        if self.gateway is not None:
            return "gateway"
        return "ingress" if self.ingress.enabled else None

    def https(self) -> bool:
        """Whether the hosts are served over TLS (status URLs, the redirects' scheme)."""
        return self.gateway.https if self.gateway is not None else self.ingress.tls.enabled

    def site_domains(self, site: Site) -> Domains:
        """The domains this environment serves for a site."""
        if self.environment == "live":
            return site.live
        found = self.test_site_domains.get(site.slug)
        return found if found is not None else self._test_site_domains(site)

    @cached_property
    def test_site_domains(self) -> dict[str, Domains]:
        """Every site's test domains, built once per parsed spec: a reconcile asks for each site's several times
        (render, status, routing status), and a validated model per call cost ~0.2 ms x sites each time."""
        return {s.slug: self._test_site_domains(s) for s in self.sites}

    def _test_site_domains(self, site: Site) -> Domains:
        test = site.test or TestDomains()
        # Parts of a validated spec: no second validation (model_construct).
        return Domains.model_construct(domain=self.test_domain(site), aliases=list(test.aliases),
                                       redirects=list(test.redirects))

    def test_domain(self, site: Site) -> str:
        if site.test is not None and site.test.domain:
            return site.test.domain
        return (self.test_domain_format or "").replace("{slug}", site.slug)

    def rewrite_domain_format(self) -> str | None:
        """The positional format Django Multisite Plus needs to produce every site's test domain, or None.

        The runtime computes test domains only as FORMAT.format(slug) (a positional placeholder), so one pattern
        around the slug must give every site's test domain: testDomainFormat, or the pattern the explicit test
        domains share.
        """
        first = self.sites[0]
        first_domain = self.test_domain(first)
        for match in re.finditer(re.escape(first.slug), first_domain):
            fmt = first_domain[: match.start()] + "{slug}" + first_domain[match.end() :]
            if all(fmt.replace("{slug}", s.slug) == self.test_domain(s) for s in self.sites):
                return fmt.replace("{slug}", "{}")
        return None

    def default_site(self) -> Site:
        if self.default_site_id is not None:
            return next(s for s in self.sites if s.id == self.default_site_id)
        return self.sites[0]


def _duplicates(values: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    dups: list[Any] = []
    for v in values:
        if v in seen and v not in dups:
            dups.append(v)
        seen.add(v)
    return dups


def spec_problems(spec: MultiSiteProjectSpec) -> list[str]:
    """Cross-field rules, worded like the CRD's CEL messages so both paths tell the user the same thing."""
    problems: list[str] = []
    if dups := _duplicates([s.slug for s in spec.sites]):
        problems.append(f"{MESSAGES['slugs']} ({', '.join(dups)} used more than once)")
    if dups := _duplicates([s.id for s in spec.sites]):
        problems.append(f"{MESSAGES['ids']} ({', '.join(map(str, dups))} used more than once)")
    for env in ("live", "test"):
        names: list[str] = []
        for site in spec.sites:
            d = site.live if env == "live" else site.test
            if d is None:
                continue
            names += [n for n in [d.domain, *d.aliases, *d.redirects] if n]
        if dups := _duplicates(names):
            problems.append(f"{MESSAGES[env]} ({', '.join(dups)} used more than once)")
    problems += derived_domain_clashes(spec)
    if spec.test_domain_format is None:
        missing = [s.slug for s in spec.sites if s.test is None or s.test.domain is None]
        if missing:
            problems.append(f"sites {', '.join(missing)} have no test domain: {MESSAGES['test_domain_fix']}")
    if not problems and spec.mode == "shared" and spec.environment == "test" and spec.rewrite_domain_format() is None:
        problems.append(
            "in shared mode Django Multisite Plus derives every test domain from one pattern around the slug "
            "(DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT): make the sites' test domains follow one pattern, "
            "e.g. set spec.testDomainFormat"
        )
    if spec.gateway is not None and "ingress" in spec.model_fields_set and spec.ingress.enabled:
        problems.append(MESSAGES["routing"])
    if spec.default_site_id is not None and spec.default_site_id not in {s.id for s in spec.sites}:
        problems.append(f"{MESSAGES['default_site']} ({spec.default_site_id} is not)")
    return problems


def derived_domain_clashes(spec: MultiSiteProjectSpec) -> list[str]:
    """A test host written out for one site that is another site's test domain derived from testDomainFormat.

    Both would be routed and one route silently lost (the Ingress takes one backend per host), so it is rejected.
    """
    if not spec.test_domain_format:
        return []
    derived = {spec.test_domain_format.replace("{slug}", s.slug): s.slug for s in spec.sites
               if s.test is None or not s.test.domain}
    out = []
    for site in spec.sites:
        test = site.test or TestDomains()
        for host in [test.domain, *test.aliases, *test.redirects]:
            other = derived.get(host or "")
            if other is not None and other != site.slug:
                out.append(f"site {site.slug} lists test domain {host}, which is site {other}'s test domain "
                           f"derived from testDomainFormat; give site {other} its own test.domain or pick another host")
    return out


# --- status ----------------------------------------------------------------------------------------------------------
# What the operator writes under .status, as models so the CRD's status schema is generated like the spec's (every
# field described for `kubectl explain`, nothing kept only by x-kubernetes-preserve-unknown-fields). The reconcile
# builds these as dicts (the hot path at 1000 sites); tests/unit check every status it produces against them.
class ConditionStatus(Model):
    type: str = Field(description="Ready, Populated, Progressing, Degraded, Routed, Migrated or VersionSkew.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="One CamelCase word saying why (see the README's table).")
    message: str = Field(description="What happened, for a person; never holds a secret value.")
    last_transition_time: str = Field(description="When status last changed (not reason or message).")
    observed_generation: int | None = Field(None, description="metadata.generation this condition describes.")


class SiteRef(Model):
    slug: str = Field(description="The site's slug.")
    id: int = Field(description="The site's Django SITE_ID.")


class HostStatus(Model):
    name: str = Field(description="The host (a domain, alias or redirect of the active environment).")
    role: Literal["primary", "alias", "redirect"] = Field(
        description="primary: the site's domain; alias: served as well; redirect: answers 301 to the primary.")
    routed: Literal["True", "False", "Unknown"] = Field(
        description="Whether the routing layer accepted the host: HTTPRoute parents' Accepted and ResolvedRefs and "
        "a listener that allows it (gateway), or a load-balancer address on the Ingress (ingress); Unknown until "
        "its controller reports.")
    reason: str = Field(description="One CamelCase word: Accepted, AddressAssigned, NoAddress, Pending, "
                        "NotCreated, NoMatchingListenerHostname, or the route condition's own reason.")
    message: str | None = Field(None, description="Why the routing layer refused the host (only when routed is "
                                "False; Unknown is explained once, in the Routed condition).")


class CertificateStatus(Model):
    name: str = Field(description="The cert-manager Certificate (named after the site's TLS Secret).")
    ready: Literal["True", "False", "Unknown"] = Field(description="The Certificate's Ready condition.")
    reason: str = Field(description="Its reason (NotFound while cert-manager has made none).")
    message: str | None = Field(None, description="Its message when not Ready.")


class SiteStatus(Model):
    slug: str = Field(description="The site's slug.")
    id: int = Field(description="The site's Django SITE_ID.")
    name: str = Field(description="The site's name.")
    domains: list[str] = Field(description="Every host served for the site in the active environment.")
    url: str = Field(description="The site's URL on its primary domain.")
    hosts: list[HostStatus] = Field(
        default_factory=list, description="Each host of `domains` with its role and whether the routing layer "
        "accepted it (see the Routed condition).")
    certificate: CertificateStatus | None = Field(
        None, description="With ingress.tls and cert-manager installed: the site's Certificate and whether it is "
        "Ready (read-only; absent without cert-manager).")
    image: str | None = Field(None, description="multi-project: the image the site's pods serve.")
    rolling_to: str | None = Field(None, description="multi-project: the image the site is rolling to.")
    replicas: int | None = Field(None, description="multi-project: replicas of the site's Deployment.")
    ready_replicas: int | None = Field(None, description="multi-project: ready replicas of the site's Deployment.")
    available: bool | None = Field(None, description="multi-project: the site's Deployment is rolled out and Available.")


class MultiSiteProjectStatus(Model):
    observed_generation: int | None = Field(None, description="metadata.generation that this status describes.")
    conditions: list[ConditionStatus] = Field(
        default_factory=list,
        description="Ready, Migrated, Populated (shared), Progressing, Degraded, VersionSkew (multi-project).")
    replicas: int | None = Field(None, description="Ready replicas of the web Deployment(s) (scale subresource).")
    selector: str | None = Field(None, description="Label selector of the project's web pods (scale subresource).")
    site_count: int | None = Field(None, description="Number of sites in the spec.")
    routed_hosts: str | None = Field(
        None, description="Hosts the routing layer accepted, of all hosts served, e.g. '12/12' (the DOMAINS column).")
    sites: list[SiteStatus] = Field(
        default_factory=list,
        description="Per-site outcome: served domains and URL (and image, replicas in multi-project mode).")
    known_sites: list[SiteRef] = Field(
        default_factory=list,
        description="Sites known to have a row in the database (populated, or once deployed in multi-project mode): "
        "what orphanedSites is computed from.")
    orphaned_sites: list[SiteRef] = Field(
        default_factory=list,
        description="Sites removed from the spec whose rows stay in the database: the operator never deletes "
        "a Django Site, because that cascades into its content.")
    image: str | None = Field(None, description="The last image whose migration succeeded: what the project's "
                              "web pods run or are rolling to.")
