#!/usr/bin/env python
"""The test image's entry point: `start.py web` serves the project with Divio's own uWSGI command.

Divio's images run `aldryn-django web`, i.e. aldryn_django.cli.start_uwsgi_command(settings, port=80) bound to
0.0.0.0. Here every pod shares one network namespace, so the process binds its pod's IP instead (POD_IP, given by
the test-side kubelet, tests/runtime/kubelet.py) on the same port (PORT, default 80 as Divio's). Two further
changes: the `--route` arguments are dropped (a registry-built uWSGI has no PCRE; they only add static-file
headers), and `--die-on-term`, so SIGTERM stops it as a container runtime expects (uWSGI reloads on it otherwise).
"""
import os
import sys

BASE_DIR = os.path.dirname(os.path.abspath(__file__))


def web() -> None:
    from aldryn_django import cli, startup
    from django.conf import settings as django_settings

    startup._setup(BASE_DIR)
    settings = {key: getattr(django_settings, key) for key in dir(django_settings)}
    ip, port = os.environ.get("POD_IP", "0.0.0.0"), int(os.environ.get("PORT", "80"))
    cmd = [a for a in cli.start_uwsgi_command(settings, port=port) if not a.startswith("--route=")]
    cmd = [f"--http={ip}:{port}" if a.startswith("--http=") else a for a in cmd]
    cmd += ["--die-on-term", f"--chdir={BASE_DIR}"]
    cli.execute(cmd)


if __name__ == "__main__":
    if sys.argv[1:] != ["web"]:
        sys.exit("usage: start.py web")
    sys.path.insert(0, BASE_DIR)
    web()
