"""Which site served this request, as Django Multisite Plus / aldryn-sites decided (get_current_site)."""
import os

from django.contrib.sites.shortcuts import get_current_site
from django.http import JsonResponse


def which_site(request):
    site = get_current_site(request)
    return JsonResponse({
        "site_id": site.pk,
        "domain": site.domain,
        "host": request.get_host(),
        "version": os.environ.get("SITE_CODE_VERSION", "1"),
    })
