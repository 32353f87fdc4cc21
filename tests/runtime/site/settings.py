"""A Divio-style project's settings: aldryn-addons loads every add-on's aldryn_config.py, which reads the env.

The add-ons Divio ships (aldryn-django, aldryn-django-cms, django-multisite-plus) come from the runtime venv's cache
directory (RUNTIME_ADDONS_DIR, set by the test image's config, see tests/runtime/images.py): their aldryn_config.py
files are vendored sources, not ours. SITE_CODE_VERSION (also from the image) says which version of this project's
code the image holds; it is how the tests ship a new release, a failing migration or a broken start-up.
"""
import os

from django.core.exceptions import ImproperlyConfigured

CODE_VERSION = os.environ.get("SITE_CODE_VERSION", "1")
if CODE_VERSION == "broken-settings":
    # A release whose settings cannot load: the web process exits at start-up, as a typo in settings.py would.
    raise ImproperlyConfigured("SITE_CODE_VERSION=broken-settings: this release's settings are broken on purpose")

# aldryn-addons looks for each add-on in ADDONS_DEV_DIR first, then in ADDONS_DIR. The project's own add-on
# directory (aldryn-addons') is here; the vendored ones are in the runtime cache (RUNTIME_ADDONS_DIR).
ADDONS_DEV_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "addons")
ADDONS_DIR = os.environ.get("RUNTIME_ADDONS_DIR") or ADDONS_DEV_DIR
INSTALLED_ADDONS = ["aldryn-addons", "aldryn-django", "aldryn-django-cms", "django-multisite-plus"]

import aldryn_addons.settings  # noqa: E402

aldryn_addons.settings.load(locals())

# The recipe's project settings (../shared/reference/divio-runtime-recipe.md):
DJANGO_MULTISITE_PLUS_AUTO_POPULATE_SITES = False
# master's AppConfig.ready() refuses to start while this is unset and REWRITE_DOMAINS is True; no environment
# variable sets it (the add-on's aldryn_config.py reads none), so a project's settings.py must.
DJANGO_MULTISITE_PLUS_AUTO_REWRITE_DOMAINS = False
# multisite-plus's cms_urls imports a module only Divio's old django CMS fork has.
ADDON_URLS_I18N_LAST = "cms.urls"
# django-multisite's SiteID is not an int.
SILENCED_SYSTEM_CHECKS = ["sites.E101"]

INSTALLED_APPS.append("siteinfo")  # noqa: F821 - defined by aldryn_addons.settings.load
_RELEASE_APPS = {"1": [], "2": ["siteinfo_v2"], "broken-migration": ["siteinfo_v2", "siteinfo_broken"]}
if CODE_VERSION not in _RELEASE_APPS:
    raise ImproperlyConfigured(f"unknown SITE_CODE_VERSION {CODE_VERSION!r}")
INSTALLED_APPS.extend(_RELEASE_APPS[CODE_VERSION])  # noqa: F821

# sqlite stands in for the shared Postgres database: let a write wait for another instance's lock (default 5 s is
# short on a loaded 2-core machine) rather than fail with "database is locked", and take that lock when a
# transaction begins, so two instances never deadlock on upgrading it (sqlite_immediate/base.py).
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F821 - defined by aldryn_addons.settings.load
    DATABASES["default"]["ENGINE"] = "sqlite_immediate"  # noqa: F821
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 60  # noqa: F821
