"""Pure functions from a validated spec to the desired child objects; the operator and `render` share them."""

from __future__ import annotations

from ..models import MultiSiteProjectSpec
from ..naming import site_name, web_name
from .ingress import ingress
from .jobs import migrate_job, populate_job
from .pod import Obj, Owner
from .workload import shared_web, site_web

__all__ = ["Obj", "Owner", "render_children", "populate_job", "migrate_job"]


def render_children(spec: MultiSiteProjectSpec, owner: Owner, site_image: str | None = None) -> list[Obj]:
    """Every child the project should have.

    multi-project: `site_image` is the image the sites run (the last one whose migration succeeded); None means
    no migration has succeeded yet, so no site Deployment exists yet. The migration Job for spec.image is always
    desired: it is what lets the sites move on to spec.image.
    """
    children: list[Obj] = []
    if spec.mode == "shared":
        children += shared_web(spec, owner)
        routes = [(host, web_name(owner.name)) for site in spec.sites for host in spec.site_domains(site).names()]
        if spec.populate.enabled:
            children.append(populate_job(spec, owner))
    else:
        for site in spec.sites:
            web = site_web(spec, owner, site, site_image or spec.image)
            children += web if site_image else web[1:]
        routes = [
            (host, site_name(owner.name, site.slug)) for site in spec.sites for host in spec.site_domains(site).names()
        ]
        children.append(migrate_job(spec, owner))
    if spec.ingress.enabled:
        children.append(ingress(spec, owner, routes))
    return children
