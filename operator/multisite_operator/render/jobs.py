"""The populate Job (shared mode) and the migration Job (both modes: the version gate, modes/gate.py).

Each is named after a hash of its whole rendered Job spec (pod template: image, command, env including spec.env
and envFrom references, resources, security context, ...; backoff and deadline), so applying the same content
finds the existing Job and any change to what the pod runs with makes a new Job: fixing the setting that made a
populate fail starts a new one. A Job's pod template is immutable, which a content-named Job never needs to change.
A content-named Job deleted by hand (or pruned) is created again on the next reconcile: populate and migrate are
idempotent (they write only what differs), so running one content again is safe, and it is how a user re-runs one.
"""

from __future__ import annotations

import json

from ..models import JobSpec, MultiSiteProjectSpec
from ..naming import CONTENT_HASH, IMAGE_ANNOTATION, SITES_ANNOTATION, component_labels, content_hash, job_name
from ..populate import ALIASES_ENV
from .env import shared_env, site_env, stored_form
from .pod import Obj, Owner, container, metadata, pod_spec, template_metadata

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
    annotations: dict[str, str],
    image: str | None = None,
) -> Obj:
    image = image or spec.image
    labels = component_labels(owner.name, kind)
    c = container(spec, name=kind, image=image, env=stored_form(env), command=command)
    job_spec = {
        "backoffLimit": job.backoff_limit,
        "activeDeadlineSeconds": job.active_deadline_seconds,
        "template": {
            "metadata": template_metadata(spec, labels, job, owner.job_annotations()),
            "spec": pod_spec(spec, [c], restart_policy="Never"),
        },
    }
    # The name hashes everything the pod runs with: Secret references, and the database value's digest (a rotated
    # DATABASE_URL is a new database to populate or migrate; rotation.py), never a value.
    digest = content_hash(job_spec)
    annotations = {CONTENT_HASH: digest, IMAGE_ANNOTATION: image, **annotations}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(owner, job_name(owner.name, kind, digest), labels, annotations),
        "spec": job_spec,
    }


def populate_job(spec: MultiSiteProjectSpec, owner: Owner, image: str | None = None) -> Obj:
    """Run with `image`: the image the database is migrated to (spec.image only once its migration succeeded)."""
    env = [*shared_env(spec), {"name": ALIASES_ENV, "value": aliases_json(spec)}]
    return _job(
        spec,
        owner,
        kind="populate",
        job=spec.populate,
        command=spec.populate.command,
        env=env,
        annotations={SITES_ANNOTATION: ",".join(s.slug for s in spec.sites)},
        image=image,
    )


def migrate_job(spec: MultiSiteProjectSpec, owner: Owner) -> Obj:
    # Migrations change the schema every pod shares; the pod runs with the web pods' environment (multi-project:
    # the default site's), as Divio's release step runs in the release's own environment.
    env = shared_env(spec) if spec.mode == "shared" else site_env(spec, spec.default_site())
    return _job(
        spec,
        owner,
        kind="migrate",
        job=spec.migrate,
        command=spec.migrate.command,
        env=env,
        annotations={},
    )
