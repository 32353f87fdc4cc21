"""The populate Job (shared mode) and the migration Job (multi-project mode).

Each is named after a hash of what it does, so applying the same content twice finds the existing Job (it never
runs twice for one content) and a change of content makes a new Job (it runs again exactly then). A Job's pod
template is immutable, which a content-named Job never needs to change.
"""

from __future__ import annotations

import json

from ..models import JobSpec, MultiSiteProjectSpec
from ..naming import CONTENT_HASH, IMAGE_ANNOTATION, SITES_ANNOTATION, component_labels, content_hash, job_name
from ..populate import ALIASES_ENV
from .env import shared_env, site_env, stored_form
from .pod import Obj, Owner, container, metadata, pod_spec, template_metadata

# What population writes depends only on these variables (plus image, command and database).
POPULATE_INPUTS = {
    "STAGE",
    "SITE_ID",
    "DJANGO_MULTISITE_PLUS_SITES",
    "DJANGO_MULTISITE_PLUS_USE_REAL_DOMAIN",
    "DJANGO_MULTISITE_PLUS_REWRITE_DOMAINS",
    "DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT",
    "DATABASE_URL",
    ALIASES_ENV,
}


def aliases_json(spec: MultiSiteProjectSpec) -> str:
    """The populate script's input: {host: [site id, redirect]} for the active environment's aliases and redirects.

    JSON read with json.loads by the script (populate.py): user input never becomes shell or Python source.
    Only the Job gets it, so an alias change re-populates (it is part of the Job's content hash) without any
    further variable on the web pods.
    """
    hosts: dict[str, list[object]] = {}
    for site in spec.sites:
        domains = spec.site_domains(site)
        hosts.update({h: [site.id, False] for h in domains.aliases})
        hosts.update({h: [site.id, True] for h in domains.redirects})
    return json.dumps(hosts, separators=(",", ":"))


def _job(
    spec: MultiSiteProjectSpec,
    owner: Owner,
    *,
    kind: str,
    job: JobSpec,
    command: list[str],
    env: list[Obj],
    digest: str,
    annotations: dict[str, str],
) -> Obj:
    labels = component_labels(owner.name, kind)
    annotations = {CONTENT_HASH: digest, IMAGE_ANNOTATION: spec.image, **annotations}
    c = container(spec, name=kind, image=spec.image, env=stored_form(env), command=command)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(owner, job_name(owner.name, kind, digest), labels, annotations),
        "spec": {
            "backoffLimit": job.backoff_limit,
            "activeDeadlineSeconds": job.active_deadline_seconds,
            "template": {
                "metadata": template_metadata(spec, labels, job),
                "spec": pod_spec(spec, [c], restart_policy="Never"),
            },
        },
    }


def populate_job(spec: MultiSiteProjectSpec, owner: Owner) -> Obj:
    env = [*shared_env(spec), {"name": ALIASES_ENV, "value": aliases_json(spec)}]
    inputs = {e["name"]: e.get("value", e.get("valueFrom")) for e in env if e["name"] in POPULATE_INPUTS}
    digest = content_hash({"image": spec.image, "command": spec.populate.command, "env": inputs})
    return _job(
        spec,
        owner,
        kind="populate",
        job=spec.populate,
        command=spec.populate.command,
        env=env,
        digest=digest,
        annotations={SITES_ANNOTATION: ",".join(s.slug for s in spec.sites)},
    )


def migrate_job(spec: MultiSiteProjectSpec, owner: Owner) -> Obj:
    # Migrations change the schema every site shares: they depend on the code (image), not on any one site.
    db = spec.database.secret_ref
    digest = content_hash({"image": spec.image, "command": spec.migrate.command, "db": [db.name, db.key]})
    return _job(
        spec,
        owner,
        kind="migrate",
        job=spec.migrate,
        command=spec.migrate.command,
        env=site_env(spec, spec.default_site()),
        digest=digest,
        annotations={},
    )
