"""Divio's wsgi.py (uWSGI's --module=wsgi)."""
import os

from aldryn_django import startup

application = startup.wsgi(path=os.path.dirname(os.path.abspath(__file__)))
