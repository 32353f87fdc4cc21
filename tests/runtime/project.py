"""A MultiSiteProject made to run on the real runtime: the test image, the `traefik` class, a fresh sqlite database.

Why: `make routes` and the serving tests take a user's manifest and change only what must point at this machine
(image, IngressClass, the database and storage Secrets); everything the operator renders from it is untouched.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from . import images

_TEMPLATES: dict[str, Path] = {}
_LOCK = threading.Lock()


def migrated_database(tag: str, work_dir: Path) -> Path:
    """A sqlite database with the schema of release ``tag`` (migrated once per release and run, then copied).

    Why: for a project that migrates outside the operator (its migrate command does nothing); by default tests
    start empty and the operator's migrate Job migrates, in both modes.
    """
    with _LOCK:
        template = _TEMPLATES.get(tag)
        if template is None or not template.exists():
            tdir = work_dir / f"template-{tag}"
            tdir.mkdir(parents=True, exist_ok=True)
            template = tdir / "db.sqlite3"
            config = images.resolve(images.image(tag), tdir / "data")
            env = {**config.env, "DATABASE_URL": f"sqlite:///{template}",
                   "DEFAULT_STORAGE_DSN": f"file://{tdir}/media?url=%2Fmedia%2F",
                   "DJANGO_MULTISITE_PLUS_AUTO_POPULATE_SITES": "False"}
            res = subprocess.run(["python", "manage.py", "migrate", "--noinput"], cwd=config.workdir, env=env,
                                 capture_output=True, text=True, timeout=600,
                                 executable=shutil.which("python", path=env["PATH"]))
            if res.returncode:
                raise RuntimeError(f"migrating a template database failed:\n{res.stdout[-2000:]}{res.stderr[-3000:]}")
            _TEMPLATES[tag] = template
    return template


def database_dir(base: Path, name: str, *, migrated_for: str | None) -> Path:
    """A fresh directory with db.sqlite3 (a copy of the migrated template, or none) and media/."""
    d = base / name
    if d.exists():
        shutil.rmtree(d)
    (d / "media").mkdir(parents=True)
    if migrated_for:
        shutil.copyfile(migrated_database(migrated_for, base), d / "db.sqlite3")
    return d


def secrets(db_dir: Path, db_secret: str, db_key: str, storage_secret: str | None,
            storage_key: str | None) -> list[dict[str, Any]]:
    """The project's Secrets, pointing at the sqlite database and a media directory in ``db_dir``."""
    out = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": db_secret}, "type": "Opaque",
            "stringData": {db_key: f"sqlite:///{db_dir / 'db.sqlite3'}"}}]
    if storage_secret and storage_key:
        media = urllib.parse.quote("/media/", safe="")
        out.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": storage_secret}, "type": "Opaque",
                    "stringData": {storage_key: f"file://{db_dir / 'media'}?url={media}"}})
    return out


def on_real_runtime(project: dict[str, Any], tag: str = "1") -> dict[str, Any]:
    """The project with the test image and the `traefik` IngressClass; in multi-project mode one replica per site.

    Why one replica: sqlite stands in for the shared Postgres database. In multi-project mode each instance creates
    its Site row (aldryn-sites) and django-multisite its canonical Alias at the instance's first request; two
    replicas of one site doing that at once on sqlite can both take a read lock and fail the upgrade to a write lock
    at once (SQLITE_BUSY, no busy wait helps), leaving a Site without its canonical Alias and the site answering 500
    for good. Postgres serializes those inserts instead. Nothing else changed.
    """
    p = copy.deepcopy(project)
    p["spec"]["image"] = images.image(tag)
    if p["spec"].get("mode") == "multi-project":
        p["spec"]["replicas"] = 1
    ingress = p["spec"].setdefault("ingress", {})
    ingress["className"] = "traefik"
    return p


def secret_refs(project: dict[str, Any]) -> tuple[str, str, str | None, str | None]:
    spec = project["spec"]
    db = spec["database"]["secretRef"]
    storage = (spec.get("storage") or {}).get("secretRef") or {}
    return db["name"], db.get("key", "DATABASE_URL"), storage.get("name"), storage.get("key", "DEFAULT_STORAGE_DSN")
