"""Pure functions from a validated spec to the desired child objects; the operator and `render` share them.

Each object is rendered once, keyed by its role in the project ("web", "web-service", "site:<slug>",
"site-service:<slug>", "populate", "migrate", "ingress", or with spec.gateway "route:<slug>" and
"redirect:<slug>"), so the reconcile looks a child up by what it is for
instead of rendering it again to learn its name.
"""

from __future__ import annotations

from ..models import MultiSiteProjectSpec
from ..naming import site_name, web_name
from ..obj import Obj
from .httproute import site_routes
from .ingress import ingress
from .jobs import migrate_job, populate_job
from .pod import Owner
from .workload import shared_web, site_web

__all__ = ["Obj", "Owner", "render", "render_children", "render_jobs", "populate_job", "migrate_job"]
Desired = dict[str, Obj]  # role -> object, in apply-friendly order (workloads, Jobs, the routing last)


def render_jobs(spec: MultiSiteProjectSpec, owner: Owner, image: str | None = None) -> Desired:
    """The mode's Jobs: migrate (both modes, always: it lets the workloads move to spec.image) and, in the shared
    mode when enabled, populate, run with `image` (the migrated image; spec.image when None)."""
    jobs = {"migrate": migrate_job(spec, owner)}
    if spec.mode == "shared" and spec.populate.enabled:
        jobs["populate"] = populate_job(spec, owner, image)
    return jobs


def render(spec: MultiSiteProjectSpec, owner: Owner, site_image: str | None = None,
           jobs: Desired | None = None) -> Desired:
    """Every child the project should have, by role.

    `site_image` is the image the workloads run (the last one whose migration succeeded). multi-project: None
    means no migration has succeeded yet, so no site Deployment exists yet; shared: None renders spec.image (the
    shared mode's plan leaves the web Deployment out itself while nothing is migrated). `jobs` are render_jobs' objects when the
    caller already has them (the reconcile needs the migrate Job's name before it knows the site image).
    """
    jobs = render_jobs(spec, owner) if jobs is None else jobs
    children: Desired = {}
    if spec.mode == "shared":
        children["web"], children["web-service"] = shared_web(spec, owner, site_image or spec.image)
        routes = [(host, web_name(owner.name)) for site in spec.sites for host in spec.site_domains(site).names()]
    else:
        for site in spec.sites:
            dep, svc = site_web(spec, owner, site, site_image or spec.image)
            if site_image:
                children[f"site:{site.slug}"] = dep
            children[f"site-service:{site.slug}"] = svc
        routes = [
            (host, site_name(owner.name, site.slug)) for site in spec.sites for host in spec.site_domains(site).names()
        ]
    children.update(jobs)
    if spec.routing() == "ingress":
        children["ingress"] = ingress(spec, owner, routes)
    elif spec.routing() == "gateway":
        for site in spec.sites:
            service = web_name(owner.name) if spec.mode == "shared" else site_name(owner.name, site.slug)
            children.update(site_routes(spec, owner, site, service))
    return children


def render_children(spec: MultiSiteProjectSpec, owner: Owner, site_image: str | None = None) -> list[Obj]:
    """The desired objects as a list (what `multisite-operator render` prints)."""
    return list(render(spec, owner, site_image).values())
