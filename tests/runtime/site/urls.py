"""Divio's project urls.py, plus the one view the tests read."""
import aldryn_addons.urls
from aldryn_django.utils import i18n_patterns
from django.urls import path

from siteinfo.views import which_site

urlpatterns = (
    [path("__site__", which_site)]
    + aldryn_addons.urls.patterns()
    + i18n_patterns(*aldryn_addons.urls.i18n_patterns())
)
