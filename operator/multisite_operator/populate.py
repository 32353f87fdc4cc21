"""The shared mode's populate step: Python run by the project's own `manage.py shell -c`, nothing to install.

Why a script and not only Django Multisite Plus's two management commands: those commands write the Sites tables
and each site's canonical django-multisite Alias, and nothing else. Any other host has no Alias row, so
django-multisite-plus's middleware falls back to the default site: an alias of site 2 would serve site 1 and a
redirect host would serve a page instead of a 301. The script therefore

1. does what `multisite_plus_populate_sites` and `multisite_plus_rewrite_domains` do (they are one-line wrappers
   of these manager methods, in the released 0.6.3 and on master alike): `Site.objects.auto_populate_sites()`,
   then `Site.objects.update_sites()`;
2. keeps django-multisite's non-canonical Alias rows equal to the spec's aliases (`redirect_to_canonical=False`)
   and redirects (`True`: django-multisite then answers 301 to the site's canonical domain, path and query kept)
   for the active environment. Alias rows no longer listed are deleted: they are routing, not content. Canonical
   Aliases (`is_canonical=True`, kept in step with Site.domain by django-multisite itself) and Site rows are
   never touched.

The hosts arrive as JSON in the environment variable ALIASES_ENV ({host: [site id, redirect]}), read with
`json.loads`: user input never passes through a shell or into Python source. A host that is another site's
canonical domain cannot become an alias (django-multisite keeps Alias.domain unique): the script writes the rest,
then fails naming the host, so `Populated=False` says what to fix. Rows are saved only when they differ, so a
re-run with the same spec writes nothing.
"""

from __future__ import annotations

ALIASES_ENV = "MULTISITE_OPERATOR_ALIASES"

POPULATE_SCRIPT = f'''
import json, os, sys
from django.db import transaction
from django_multisite_plus.models import Site
from multisite.models import Alias

Site.objects.auto_populate_sites()
Site.objects.update_sites()

wanted = {{host.lower(): (site, redirect) for host, (site, redirect) in json.loads(os.environ["{ALIASES_ENV}"]).items()}}
created, changed, removed, conflicts = [], [], [], []
with transaction.atomic():
    existing = {{a.domain.lower(): a for a in Alias.objects.select_for_update()}}
    for host, alias in existing.items():
        if not alias.is_canonical and host not in wanted:
            alias.delete()
            removed.append(host)
    for host, (site, redirect) in wanted.items():
        alias = existing.get(host)
        if alias is None:
            Alias.objects.create(domain=host, site_id=site, redirect_to_canonical=redirect)
            created.append(host)
        elif alias.is_canonical:
            if alias.site_id != site:
                conflicts.append("%s is the domain of Site %s" % (host, alias.site_id))
        elif (alias.site_id, alias.redirect_to_canonical) != (site, redirect):
            alias.site_id, alias.redirect_to_canonical = site, redirect
            alias.save()
            changed.append(host)
print("aliases: %d listed; created %s; changed %s; removed %s" % (
    len(wanted), created or "none", changed or "none", removed or "none"))
if conflicts:
    sys.exit("cannot make these hosts aliases: " + "; ".join(conflicts)
             + " (remove the host from the spec, or change that Site's domain in the Django admin)")
'''.strip()

DEFAULT_POPULATE_COMMAND = ["python", "manage.py", "shell", "-c", POPULATE_SCRIPT]
