"""The test image: which "image" references the test-side kubelet can run, and what each one holds.

Why: there is no container runtime here, so an image is a name for (venv, project directory, env, entry point),
the parts of an image's config a kubelet uses. The tag is the release of tests/runtime/site's code it holds
(SITE_CODE_VERSION, read by its settings.py), so a test ships a new release, a failing migration or a start-up
crash by changing `spec.image` exactly as a user would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SITE_DIR = HERE / "site"
REPOSITORY = "multisite-test/divio-site"  # kwok's stages skip pods of this repository (controlplane/cluster.py)
# Release tags: "1" and "2" (2 adds a migration), "broken-migration" (a migration that raises),
# "broken-settings" (settings.py raises at start-up).
TAGS = ("1", "2", "broken-migration", "broken-settings")
IMAGE = f"{REPOSITORY}:1"


def image(tag: str) -> str:
    if tag not in TAGS:
        raise ValueError(f"unknown test image tag {tag!r}; known: {TAGS}")
    return f"{REPOSITORY}:{tag}"


def runtime_dir() -> Path:
    """The runtime venv + vendored add-ons built by `make runtime-venv` (tests/runtime/build-venv.sh)."""
    cache = Path(os.environ.get("RUNTIME_CACHE") or REPO / ".cache" / "runtime")
    current = cache / "current"
    if not (current / "venv" / "bin" / "python").exists() or not (current / ".complete").exists():
        raise FileNotFoundError(f"the Divio runtime venv is not built ({current}); run `make runtime-venv`")
    return current.resolve()


@dataclass(frozen=True)
class ImageConfig:
    """What a container runtime takes from an image: entry point, default arguments, working dir, env."""

    entrypoint: list[str]
    cmd: list[str]
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)


class ImageNotFound(LookupError):
    """The reference names no image this runtime has (the kubelet reports ErrImagePull)."""


def resolve(reference: str, data_dir: Path) -> ImageConfig:
    """The config of ``reference``; ``data_dir`` is the container's writable layer (DATA_ROOT, static files)."""
    repo, _, tag = reference.partition(":")
    if repo != REPOSITORY or tag not in TAGS:
        raise ImageNotFound(f"failed to pull and unpack image {reference!r}: not found (known tags: {TAGS})")
    runtime = runtime_dir()
    venv_bin = runtime / "venv" / "bin"
    return ImageConfig(
        # Divio images start the web process by default; Jobs override the command (`python manage.py ...`).
        entrypoint=["python", str(SITE_DIR / "start.py")],
        cmd=["web"],
        workdir=SITE_DIR,
        env={
            "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
            "VIRTUAL_ENV": str(runtime / "venv"),
            "RUNTIME_ADDONS_DIR": str(runtime / "addons"),
            "SITE_CODE_VERSION": tag,
            "PYTHONDONTWRITEBYTECODE": "1",  # the project directory is the repository's: keep it clean
            "PYTHONUNBUFFERED": "1",
            "DATA_ROOT": str(data_dir),
            "STATIC_ROOT": str(data_dir / "static"),
            "CACHE_URL": "locmem://",
            "SECRET_KEY": "test-image-not-secret",
            # One uWSGI worker per pod (the machine has 2 cores); Divio's cheaper mode needs more than one.
            "DJANGO_WEB_WORKERS": "1",
            "ENABLE_UWSGI_CHEAPER": "off",
        },
    )
