"""`multisite-operator hosts` and `site-env`: local development as the hosting document describes it.

The commands are run as a developer runs them (a subprocess; site-env's output `eval`ed by a real shell) and what
they produce is read the way its consumer reads it: /etc/hosts lines split into address and names, and the
exported variables parsed by Divio's runtime parser (django-getenv's `env()`), in a fresh Python process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "examples" / "example-shared.yaml"
MULTI = ROOT / "examples" / "example-multi-project.yaml"
LIVE = {"example.de": "de", "www.example.de": "de", "example.gh": "gh", "example.us": "us", "www.example.us": "us"}

# Runs in the shell after `eval`: what Divio's runtime would read from this environment.
RUNTIME_READ = """
import json, os
from getenv import env
names = [n for n in os.environ if n in json.loads(os.environ["WANTED"])]
out = {n: env(n) for n in names}
hosts = out.get("ALLOWED_HOSTS")
if hosts is not None:
    hosts.append("added-by-aldryn-django")  # aldryn-django calls .append on it: it must be a list
for name in ("DOMAIN_ALIASES", "DOMAIN_REDIRECTS"):
    if name in out:  # aldryn-django: [d.strip() for d in env(name, '').split(',') if d.strip()]
        out[name] = [d.strip() for d in str(env(name, "")).split(",") if d.strip()]
print(json.dumps(out, default=repr))
"""
WANTED = ["SITE_ID", "SITE_NAME", "ALLOWED_HOSTS", "DOMAIN", "DOMAIN_ALIASES", "DOMAIN_REDIRECTS", "STAGE",
          "DATABASE_URL", "DJANGO_MULTISITE_PLUS_MODE", "DJANGO_MULTISITE_PLUS_SITES",
          "DJANGO_MULTISITE_PLUS_USE_REAL_DOMAIN", "DJANGO_MULTISITE_PLUS_REWRITE_DOMAINS",
          "DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT", "DJANGO_MULTISITE_PLUS_AUTO_POPULATE_SITES"]


def cli(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "multisite_operator.cli", *args], input=stdin, text=True,
                          capture_output=True, check=check, timeout=60)


def hosts_entries(text: str) -> dict[str, str]:
    """/etc/hosts as the resolver reads it: comments stripped, first field the address, the rest names."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            for name in fields[1:]:
                out[name] = fields[0]
    return out


def runtime_env(file: Path | str, slug: str, *flags: str, stdin: str | None = None) -> dict[str, Any]:
    """`eval "$(multisite-operator site-env FILE SLUG)"` in bash, then read the variables as the runtime does."""
    script = (f'set -e; exports="$("{sys.executable}" -m multisite_operator.cli site-env "$1" "$2" {" ".join(flags)})"; '
              f'eval "$exports"; exec "{sys.executable}" -c "$3"')
    env = {"PATH": "/usr/bin:/bin", "WANTED": json.dumps(WANTED), "HOME": "/nonexistent"}
    done = subprocess.run(["bash", "-c", script, "bash", str(file), slug, RUNTIME_READ], env=env, input=stdin,
                          text=True, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def edited(path: Path, **changes: Any) -> str:
    """The example manifest with spec changes, as YAML text (fed to the command on stdin)."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        if doc["kind"] == "MultiSiteProject":
            for key, value in changes.items():
                doc["spec"][key] = value
    return yaml.safe_dump_all(docs)


# --- hosts ----------------------------------------------------------------------------------------------------------
def test_hosts_maps_every_live_domain_to_this_machine():
    out = cli("hosts", str(SHARED)).stdout
    assert hosts_entries(out) == {name: "127.0.0.1" for name in LIVE}
    for name, slug in LIVE.items():  # every line says which site it is
        assert any(line.split()[1:2] == [name] and f"# {slug} " in line for line in out.splitlines()), name
    assert "port" not in out  # served on port 80: nothing to append


def test_hosts_port_note_when_not_80_and_other_address():
    out = cli("hosts", str(SHARED), "--port", "8000", "--address", "127.0.0.2").stdout
    assert set(hosts_entries(out).values()) == {"127.0.0.2"}
    note = [line for line in out.splitlines() if "8000" in line]
    assert note and all(line.startswith("#") for line in note)
    assert "http://example.de:8000/" in note[0]


def test_hosts_test_domains_and_wildcards_are_not_host_lines():
    text = edited(SHARED, sites=[
        {"slug": "de", "id": 1, "name": "Germany", "live": {"domain": "example.de", "aliases": ["*.example.de"]},
         "test": {"aliases": ["*.de.example-stage.eu.aldryn.io"]}},
    ])
    live = cli("hosts", "-", stdin=text).stdout
    assert hosts_entries(live) == {"example.de": "127.0.0.1"}
    assert "# *.example.de (de)" in live
    test = cli("hosts", "-", "--environment", "test", stdin=text).stdout
    assert hosts_entries(test) == {"de.example-stage.eu.aldryn.io": "127.0.0.1"}


def test_hosts_file_without_project_fails_readably(tmp_path):
    path = tmp_path / "secret.yaml"
    path.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n")
    done = cli("hosts", str(path), check=False)
    assert done.returncode != 0 and "no MultiSiteProject" in done.stderr


# --- site-env -------------------------------------------------------------------------------------------------------
def test_site_env_forces_one_site_of_a_shared_project_as_the_runtime_reads_it():
    env = runtime_env(SHARED, "gh")
    assert env["SITE_ID"] == 2  # a literal int, as the runtime's int(env("SITE_ID", 1)) needs
    assert env["DJANGO_MULTISITE_PLUS_SITES"] == {
        "de": {"id": 1, "real_domain": "example.de", "name": "Germany"},
        "gh": {"id": 2, "real_domain": "example.gh", "name": "Ghana"},
        "us": {"id": 3, "real_domain": "example.us", "name": "USA"},
    }
    assert env["DJANGO_MULTISITE_PLUS_MODE"] == "single-process"
    # Live domains locally (what the hosts lines point here), no rewriting to test domains.
    assert env["DJANGO_MULTISITE_PLUS_USE_REAL_DOMAIN"] is True
    assert env["DJANGO_MULTISITE_PLUS_REWRITE_DOMAINS"] is False
    assert env["DJANGO_MULTISITE_PLUS_AUTO_POPULATE_SITES"] is False
    # A list the runtime can append to, which lets a local browser in (localhost) as well as the hosts-file names.
    assert env["ALLOWED_HOSTS"][:2] == ["localhost", "127.0.0.1"]
    assert set(LIVE) <= set(env["ALLOWED_HOSTS"]) and env["ALLOWED_HOSTS"][-1] == "added-by-aldryn-django"
    # STAGE and Secret-backed values are the local environment's own.
    assert "STAGE" not in env and "DATABASE_URL" not in env


def test_site_env_test_environment_gives_the_rewrite_format():
    env = runtime_env(SHARED, "us", "--environment", "test")
    assert env["SITE_ID"] == 3
    assert env["DJANGO_MULTISITE_PLUS_REWRITE_DOMAINS"] is True
    assert env["DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT"].format("us") == "us.example-stage.eu.aldryn.io"
    assert "us.example-stage.eu.aldryn.io" in env["ALLOWED_HOSTS"]


def test_site_env_of_a_multi_project_site_is_that_instance_env():
    env = runtime_env(MULTI, "de")
    assert env["SITE_ID"] == 1 and env["SITE_NAME"] == "Germany"
    assert env["DOMAIN"] == "example.de"
    docs = [d for d in yaml.safe_load_all(MULTI.read_text()) if d and d["kind"] == "MultiSiteProject"]
    live = next(s for s in docs[0]["spec"]["sites"] if s["slug"] == "de")["live"]
    assert env["DOMAIN_ALIASES"] == live.get("aliases", [])
    assert env["DOMAIN_REDIRECTS"] == live.get("redirects", [])
    assert env["ALLOWED_HOSTS"][:3] == ["localhost", "127.0.0.1", "example.de"]
    assert "DJANGO_MULTISITE_PLUS_SITES" not in env  # one instance per site: no multisite routing


def test_site_env_allows_a_wildcard_alias_the_way_django_matches_it():
    """Django's ALLOWED_HOSTS wants '.example.de' for the subdomains; '*.example.de' would match nothing."""
    text = edited(SHARED, sites=[{"slug": "de", "id": 1, "name": "Germany",
                                  "live": {"domain": "example.de", "aliases": ["*.example.de"]}}])
    env = runtime_env("-", "de", stdin=text)
    assert ".example.de" in env["ALLOWED_HOSTS"] and "*.example.de" not in env["ALLOWED_HOSTS"]


@pytest.mark.parametrize("name", ["Deutschland's \"beste\" $HOME `id` \\ Seite", "Wow! It's $1"])
def test_site_env_values_survive_the_shell(name):
    """Quotes, $, backticks, backslashes and '!' in a site name reach the runtime unchanged, never executed."""
    text = edited(SHARED, sites=[{"slug": "de", "id": 1, "name": name, "live": {"domain": "example.de"}}])
    env = runtime_env("-", "de", stdin=text)
    assert env["DJANGO_MULTISITE_PLUS_SITES"]["de"]["name"] == name


def test_site_env_never_prints_secret_values():
    out = cli("site-env", str(SHARED), "de").stdout
    assert "change-me" not in out  # the example's Secrets hold it; only their names are mentioned
    assert "# DATABASE_URL: from Secret example-db (key DATABASE_URL)" in out


def test_site_env_unknown_slug_lists_the_slugs():
    done = cli("site-env", str(SHARED), "fr", check=False)
    assert done.returncode != 0
    assert "no site with slug 'fr'; slugs: de, gh, us" in done.stderr


def test_site_env_invalid_manifest_fails_readably():
    """What `kubectl apply` would reject is said plainly, with the field, not as a stack trace or a wrong env."""
    done = cli("site-env", "-", "de", stdin=edited(SHARED, testDomainFormat=None), check=False)
    assert done.returncode != 0 and done.stdout == ""
    assert "MultiSiteProject example: sites de, gh, us have no test domain" in done.stderr
    assert "Traceback" not in done.stderr


def test_render_quotes_strings_kubectl_would_read_as_numbers():
    """A content hash like 544107e124 is a float to kubectl's YAML reader: `render | kubectl apply -f -` failed."""
    import yaml

    from multisite_operator.cli import dump_all

    values = ["544107e124", "1e3", "0o17", "0x1F", "12", "1.5", "abc", "e123", "2026-12-03"]
    text = dump_all([{"metadata": {"annotations": {f"k{i}": v for i, v in enumerate(values)}}}])
    for i, v in enumerate(values[:6]):
        assert f"k{i}: '{v}'" in text, text
    assert "k6: abc" in text and "k7: e123" in text
    assert yaml.safe_load(text)["metadata"]["annotations"] == {f"k{i}": v for i, v in enumerate(values)}
