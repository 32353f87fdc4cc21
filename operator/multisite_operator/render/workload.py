"""Deployments and Services for the web process: one for the shared mode, one per site in multi-project mode."""

from __future__ import annotations

from ..models import MultiSiteProjectSpec, Site
from ..naming import IMAGE_ANNOTATION, component_labels, selector_labels, site_name, web_name
from .env import shared_env, site_env, stored_form
from .pod import Obj, Owner, container, metadata, pod_spec, template_metadata

SERVICE_PORT = 80


def deployment(
    spec: MultiSiteProjectSpec,
    owner: Owner,
    *,
    name: str,
    component: str,
    site: str | None,
    image: str,
    env: list[Obj],
    replicas: int,
    resources: Obj | None,
) -> Obj:
    labels = component_labels(owner.name, component, site)
    web = container(
        spec, name="web", image=image, env=stored_form(env), command=spec.command, args=spec.args, resources=resources, web=True
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, name, labels, {IMAGE_ANNOTATION: image}),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector_labels(owner.name, component, site)},
            # Old pods keep serving until new ones are Ready: a bad image or a crash never takes a site down.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
            "template": {"metadata": template_metadata(spec, labels, annotations=owner.pod_annotations()),
                         "spec": pod_spec(spec, [web])},
        },
    }


def service(owner: Owner, *, name: str, component: str, site: str | None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(owner, name, component_labels(owner.name, component, site)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(owner.name, component, site),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def shared_web(spec: MultiSiteProjectSpec, owner: Owner, image: str) -> list[Obj]:
    """The web Deployment and Service; `image` is the migrated image the project rolls to, not always spec.image."""
    name = web_name(owner.name)
    return [
        deployment(
            spec,
            owner,
            name=name,
            component="web",
            site=None,
            image=image,
            env=shared_env(spec),
            replicas=spec.replicas,
            resources=None,
        ),
        service(owner, name=name, component="web", site=None),
    ]


def site_resources(spec: MultiSiteProjectSpec, site: Site) -> Obj | None:
    """The project's resources with the site's on top, per section and per resource name.

    A site that sets only `requests.memory` keeps the project's cpu request and its limits: an override changes
    what it names and nothing else, like the rest of the site's settings that come from the project spec.
    """
    base, own = spec.resources or {}, site.resources or {}
    if not own:
        return spec.resources
    merged: Obj = {}
    for section in dict.fromkeys([*base, *own]):
        a, b = base.get(section), own.get(section)
        merged[section] = {**a, **b} if isinstance(a, dict) and isinstance(b, dict) else (b if section in own else a)
    return merged


def site_web(spec: MultiSiteProjectSpec, owner: Owner, site: Site, image: str) -> list[Obj]:
    """One site's Deployment and Service; `image` is the version the project is rolled to, not always spec.image."""
    name = site_name(owner.name, site.slug)
    return [
        deployment(
            spec,
            owner,
            name=name,
            component="site",
            site=site.slug,
            image=image,
            env=site_env(spec, site),
            replicas=spec.replicas if site.replicas is None else site.replicas,
            resources=site_resources(spec, site),
        ),
        service(owner, name=name, component="site", site=site.slug),
    ]
