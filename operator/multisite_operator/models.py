"""The MultiSiteProject spec as typed models: the one source of truth for the CRD schema and the renderers.

Every field carries a description because the CRD's OpenAPI schema (and so `kubectl explain`) is generated
from these models. Rules the API server can enforce are attached as CEL (`x-kubernetes-validations`) next to
the field they guard; the same rules are checked here too, so `multisite-operator render` rejects what
`kubectl apply` would reject, without a cluster.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator
from pydantic.alias_generators import to_camel

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
MAX_SITES = 2000
MAX_NAMES_PER_SITE = 50

# Kubernetes pass-through shapes: validated by the API server when the child object is applied.
FreeObject = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
IntOrString = Annotated[int | str, WithJsonSchema({"x-kubernetes-int-or-string": True})]
Host = Annotated[str, Field(max_length=253, pattern=HOST_RE)]
WildcardHost = Annotated[str, Field(max_length=253, pattern=WILDCARD_HOST_RE)]
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
        description="Further domains that serve the same site (routed and allowed, not redirected).",
    )
    redirects: list[WildcardHost] = Field(
        default_factory=list,
        max_length=MAX_NAMES_PER_SITE,
        description="Domains that the Django runtime redirects to the primary domain (routed to the site).",
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
    slug: str = Field(
        min_length=1,
        max_length=40,
        pattern=SLUG_RE,
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
    enabled: bool = Field(default=False, description="Add every served host to the Ingress's TLS section.")
    secret_name: str | None = Field(
        default=None,
        max_length=253,
        description="Secret holding the certificate (default '<project>-tls'; cert-manager can fill it).",
    )


class IngressSpec(Model):
    enabled: bool = Field(default=True, description="Create an Ingress routing every served domain.")
    class_name: str | None = Field(default=None, description="ingressClassName of the Ingress.")
    annotations: StringMap = Field(default_factory=dict, description="Annotations of the Ingress (e.g. cert-manager).")
    tls: TLS = Field(default_factory=TLS, description="TLS settings.")


DEFAULT_POPULATE_COMMAND = [
    "sh",
    "-c",
    "python manage.py multisite_plus_populate_sites && python manage.py multisite_plus_rewrite_domains",
]
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
        description="Command of the populate Job. The default runs Django Multisite Plus's "
        "multisite_plus_populate_sites and multisite_plus_rewrite_domains management commands.",
    )


class MigrateSpec(JobSpec):
    command: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MIGRATE_COMMAND),
        min_length=1,
        description="multi-project mode: command of the migration Job run once per image before any site rolls.",
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
    populate: PopulateSpec = Field(default_factory=PopulateSpec, description="shared mode: the populate Job.")
    migrate: MigrateSpec = Field(default_factory=MigrateSpec, description="multi-project mode: the migration Job.")

    @field_validator("test_domain_format")
    @classmethod
    def _format_has_slug(cls, value: str | None) -> str | None:
        if value is not None:
            if "{slug}" not in value:
                raise ValueError("testDomainFormat must contain '{slug}', e.g. '{slug}.example-stage.eu.aldryn.io'")
            if not re.fullmatch(HOST_RE, value.replace("{slug}", "slug")):
                raise ValueError("testDomainFormat must be a lowercase host name once '{slug}' is filled in")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MultiSiteProjectSpec:
        for problem in spec_problems(self):
            raise ValueError(problem)
        return self

    # Convenience views used by every renderer.
    def site_domains(self, site: Site) -> Domains:
        """The domains this environment serves for a site."""
        if self.environment == "live":
            return site.live
        test = site.test or TestDomains()
        return Domains(domain=self.test_domain(site), aliases=test.aliases, redirects=test.redirects)

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
        problems.append(f"site slugs must be unique: {', '.join(dups)} used more than once")
    if dups := _duplicates([s.id for s in spec.sites]):
        problems.append(f"site ids must be unique: {', '.join(map(str, dups))} used more than once")
    for env in ("live", "test"):
        names: list[str] = []
        for site in spec.sites:
            d = site.live if env == "live" else site.test
            if d is None:
                continue
            names += [n for n in [d.domain, *d.aliases, *d.redirects] if n]
        if dups := _duplicates(names):
            problems.append(f"{env} domains must be unique within the project: {', '.join(dups)} used more than once")
    if spec.test_domain_format is None:
        missing = [s.slug for s in spec.sites if s.test is None or s.test.domain is None]
        if missing:
            problems.append(
                f"sites {', '.join(missing)} have no test domain: set sites[].test.domain or spec.testDomainFormat"
            )
    if not problems and spec.mode == "shared" and spec.environment == "test" and spec.rewrite_domain_format() is None:
        problems.append(
            "in shared mode Django Multisite Plus derives every test domain from one pattern around the slug "
            "(DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT): make the sites' test domains follow one pattern, "
            "e.g. set spec.testDomainFormat"
        )
    if spec.default_site_id is not None and spec.default_site_id not in {s.id for s in spec.sites}:
        problems.append(f"defaultSiteId {spec.default_site_id} is not the id of a site in spec.sites")
    return problems
