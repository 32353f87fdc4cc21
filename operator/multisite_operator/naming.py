"""Every child's name and labels, made in one place so renderers, pruning and status agree on them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .models import GROUP

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "multisite-operator"
PROJECT_LABEL = f"{GROUP}/project"
COMPONENT_LABEL = "app.kubernetes.io/component"
SITE_LABEL = f"{GROUP}/site"
CONTENT_HASH = f"{GROUP}/content-hash"
IMAGE_ANNOTATION = f"{GROUP}/image"
SITES_ANNOTATION = f"{GROUP}/sites"

DNS_LABEL_MAX = 63


def content_hash(content: Any, length: int = 10) -> str:
    """A stable short hash of JSON-able content: equal content, equal name, so a Job runs once per content."""
    raw = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:length]


def fit(name: str, limit: int = DNS_LABEL_MAX) -> str:
    """Shorten a name to a DNS label, keeping it unique with a hash of the full name."""
    if len(name) <= limit:
        return name
    suffix = content_hash(name, 8)
    return f"{name[: limit - len(suffix) - 1].rstrip('-')}-{suffix}"


def web_name(project: str) -> str:
    return fit(f"{project}-web")


def site_name(project: str, slug: str) -> str:
    return fit(f"{project}-site-{slug}")


def ingress_name(project: str) -> str:
    return fit(project, 253)


def route_name(project: str, slug: str, part: str = "", index: int = 0) -> str:
    """A site's HTTPRoute: `<project>-site-<slug>`, `.redirect` for its redirect hosts, `.N` for a further chunk.

    The dots keep these apart from every slug-made name (slugs have no dot; HTTPRoute names are DNS subdomains).
    """
    name = f"{project}-site-{slug}" + (f".{part}" if part else "") + (f".{index + 1}" if index else "")
    return fit(name, 253)


def site_tls_secret_name(project: str, slug: str) -> str:
    """One site's TLS Secret (cert-manager fills it): named by slug, which is stable for the site's life."""
    return fit(f"{project}-tls-{slug}", 253)


def job_name(project: str, kind: str, digest: str) -> str:
    # Job names feed the pod label job-name, so they must fit a DNS label.
    prefix = fit(f"{project}-{kind}", DNS_LABEL_MAX - len(digest) - 1)
    return f"{prefix}-{digest}"


def project_labels(project: str) -> dict[str, str]:
    """Labels on every child: how the operator finds (and prunes) what it made, and nothing else."""
    return {MANAGED_BY: MANAGER, PROJECT_LABEL: project}


def component_labels(project: str, component: str, site: str | None = None) -> dict[str, str]:
    labels = {**project_labels(project), COMPONENT_LABEL: component, "app.kubernetes.io/name": "django"}
    if site is not None:
        labels[SITE_LABEL] = site
    return labels


def selector_labels(project: str, component: str, site: str | None = None) -> dict[str, str]:
    """The immutable Deployment selector: only labels that never change for the object's life."""
    labels = {PROJECT_LABEL: project, COMPONENT_LABEL: component}
    if site is not None:
        labels[SITE_LABEL] = site
    return labels
