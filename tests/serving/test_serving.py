"""Real HTTP through Traefik to Divio's real Django runtime, for the README's example in both modes.

What kwok-only tests cannot show: that a request for a domain reaches the process of the right site. Every check
asks Traefik with a Host header and reads the site id Django itself resolved (tests/runtime/site's `/__site__`).
Where today's answer is wrong the test says what a user expects and is an expected failure (strict) naming issue 13,
so it turns into a failure to look at the day the renderers are fixed.
"""

from __future__ import annotations

import sqlite3
import time

import pytest
from kubernetes import client

from harness.project import events_for, patch_spec, wait_condition
from helpers import wait_for

from .support import ServingHarness, answer, site_of

TEST_HOSTS = {"de.example-stage.eu.aldryn.io": 1, "gh.example-stage.eu.aldryn.io": 2,
              "us.example-stage.eu.aldryn.io": 3}
LIVE_HOSTS = {"example.de": 1, "example.gh": 2, "example.us": 3}
UNSERVED = "nobody-serves-this.example.org"


def _report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(f"\n  measured: {text}")


# ---------------------------------------------------------------------------------------------------- shared mode
def test_shared_test_environment_every_domain_its_own_site(harness: ServingHarness) -> None:
    name = harness.apply(harness.example())
    harness.wait_ready(name)
    for host, site in TEST_HOSTS.items():
        harness.until_site(host, site, timeout=60)
        assert harness.ask(host)["status"] == 200
    # Live domains are not routed in the test environment, nor is a host nobody serves.
    assert harness.ask("example.gh")["status"] == 404
    assert harness.ask(UNSERVED)["status"] == 404


def test_shared_live_environment_every_domain_its_own_site(harness: ServingHarness) -> None:
    name = harness.apply(harness.example(environment="live"))
    harness.wait_ready(name)
    for host, site in LIVE_HOSTS.items():
        harness.until_site(host, site, timeout=60)
    assert harness.ask("gh.example-stage.eu.aldryn.io")["status"] == 404


def test_shared_live_redirect_host_answers_301_to_its_domain(harness: ServingHarness) -> None:
    name = harness.apply(harness.example(environment="live"))
    harness.wait_ready(name)
    harness.until_site("example.us", 3, timeout=60)
    got = harness.ask("www.example.us")
    assert got["status"] == 301, got
    assert got["location"] in ("http://example.us/__site__", "https://example.us/__site__"), got


def test_shared_live_alias_of_another_site_serves_that_site(harness: ServingHarness) -> None:
    project = harness.example(environment="live")
    project["spec"]["sites"][1]["live"]["aliases"] = ["www.example.gh"]
    name = harness.apply(project)
    harness.wait_ready(name)
    harness.until_site("example.gh", 2, timeout=60)
    assert site_of(harness.traefik.request("www.example.gh")) == 2, harness.ask("www.example.gh")


def test_shared_live_wildcard_alias_serves_every_subdomain_with_its_site(harness: ServingHarness) -> None:
    """Issue 13 item 3: `*.example.gh` (Ghana, not the default site a miss would fall back to) through every layer:
    the Ingress's wildcard host, `.example.gh` in ALLOWED_HOSTS, django-multisite's wildcard Alias."""
    project = harness.example(environment="live")
    project["spec"]["sites"][1]["live"]["aliases"] = ["*.example.gh"]
    name = harness.apply(project)
    harness.wait_ready(name)
    for host in ("shop.example.gh", "blog.example.gh"):
        harness.until_site(host, 2, timeout=60)
    assert site_of(harness.traefik.request("example.gh")) == 2
    assert site_of(harness.traefik.request("example.de")) == 1


def test_shared_adding_a_site_makes_its_domain_answer_and_the_others_answer_throughout_the_roll(
        harness: ServingHarness, capsys: pytest.CaptureFixture[str]) -> None:
    """The env changes, so the web pods roll: the other sites' hosts keep answering with their own site on every
    request while the old pod is replaced (its preStop sleep keeps it serving until Traefik stops routing to it;
    without it, requests met the exiting pod: 502 Bad Gateway)."""
    project = harness.example()
    name = harness.apply(project)
    harness.wait_ready(name)
    harness.until_site("gh.example-stage.eu.aldryn.io", 2, timeout=60)
    web = f"app.kubernetes.io/component=web,multisite.dev/project={name}"
    old_pods = {p.metadata.name for p in harness.pods(web)}
    sites = project["spec"]["sites"] + [{"slug": "fr", "id": 4, "name": "France", "live": {"domain": "example.fr"}}]
    patch_spec(harness.api, harness.namespace, name, {"sites": sites})
    start, answered, wrong = time.monotonic(), [], []

    def rolled_while_every_host_answers() -> bool:
        for host, site in TEST_HOSTS.items():
            resp = harness.traefik.request(host)
            if site_of(resp) != site:
                wrong.append(f"{host}: {answer(resp)}")
        if not answered and site_of(harness.traefik.request("fr.example-stage.eu.aldryn.io")) == 4:
            answered.append(time.monotonic() - start)
        return bool(answered) and not old_pods & {p.metadata.name for p in harness.pods(web)}

    wait_for(rolled_while_every_host_answers, timeout=300, interval=0.1,
             message="the new site answering and the old web pod gone")
    _report(capsys, f"shared mode, a site added by editing the resource answered with its own site in "
                    f"{answered[0]:.1f} s; the old pod was gone after {time.monotonic() - start:.1f} s")
    assert wrong == [], wrong[:5]


def test_shared_switching_environment_swaps_what_answers(harness: ServingHarness,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    name = harness.apply(harness.example())
    harness.wait_ready(name)
    harness.until_site("us.example-stage.eu.aldryn.io", 3, timeout=60)
    patch_spec(harness.api, harness.namespace, name, {"environment": "live"})
    seconds = harness.until_site("example.us", 3, timeout=300)
    harness.until("us.example-stage.eu.aldryn.io", lambda r: r.status == 404, timeout=60)
    harness.wait_ready(name)
    # Seen once right after Ready: example.us answered by site 1 (an old pod still shutting down, or a live pod that
    # cached the fallback before the new populate finished); reported, and asked until stable here.
    for host, site in LIVE_HOSTS.items():
        harness.until_site(host, site, timeout=60)
    _report(capsys, f"test -> live: example.us answered with site 3 after {seconds:.1f} s")


def _failing_populate(h: ServingHarness, secret: str) -> str:
    """The example on a database nothing listens for: the real populate command fails (backoffLimit 0)."""
    project = h.example()
    project["spec"]["populate"] = {"backoffLimit": 0}
    # The version gate would stop at the migration (same database, same error): this project migrates elsewhere
    # (a migrate command that does nothing), so what fails for real is the populate Job.
    project["spec"]["migrate"] = {"command": ["python", "-c", "pass"]}
    name = h.apply(project, database_url=f"postgres://example:{secret}@127.0.0.1:1/example")
    got = wait_condition(h.api, h.namespace, name, "Populated", "False", timeout=300)
    assert secret not in str(got["status"])
    return next(c for c in got["status"]["conditions"] if c["type"] == "Populated")["message"]


def test_populate_that_really_fails_shows_populated_false_with_its_output(runtime_harness: ServingHarness) -> None:
    """An unreachable database: Populated=False with the failed Job and the real command's output, no password."""
    message = _failing_populate(runtime_harness, "s3cr3t-db-password")
    assert "example-populate-" in message and "failed" in message, message
    assert "django/db/backends" in message, message  # the real traceback, not a stand-in


def test_populate_failure_message_names_the_real_error(runtime_harness: ServingHarness) -> None:
    message = _failing_populate(runtime_harness, "s3cr3t-db-password")
    assert "Connection refused" in message or "OperationalError" in message, message


def test_web_process_exiting_at_startup_shows_a_crash_loop(runtime_harness: ServingHarness) -> None:
    # The version gate stops a release whose settings cannot load at its migration (and populate), before any web
    # pod runs it; a start-up crash of the web process alone is what this test is about, so this project
    # migrates elsewhere and has no populate step.
    name = runtime_harness.apply(runtime_harness.example(tag="broken-settings", migrate={"command": ["python", "-c",
                                                                                                 "pass"]},
                                                         populate={"enabled": False}), migrated=True)

    def crash_looping() -> client.V1ContainerStatus | None:
        for pod in runtime_harness.pods(f"multisite.dev/project={name},app.kubernetes.io/component=web"):
            for cs in pod.status.container_statuses or []:
                waiting = cs.state.waiting
                if waiting and waiting.reason == "CrashLoopBackOff" and cs.last_state.terminated:
                    return cs
        return None

    from helpers import wait_for

    cs = wait_for(crash_looping, timeout=300, interval=0.5, message="a web pod in CrashLoopBackOff")
    term = cs.last_state.terminated
    assert term.exit_code != 0
    assert "broken on purpose" in term.message, term.message
    assert not cs.ready
    # The project says so itself (issue 13 item 5): its own reason, the process's last output, a Warning Event.
    project = wait_condition(runtime_harness.api, runtime_harness.namespace, name, "Ready", "False", timeout=120,
                             reason="CrashLoop")
    ready = next(c for c in project["status"]["conditions"] if c["type"] == "Ready")
    assert "broken on purpose" in ready["message"], ready["message"]
    wait_for(lambda: any(e.type == "Warning" and e.reason == "CrashLoop"
                         for e in events_for(runtime_harness.api, runtime_harness.namespace, name)),
             timeout=60, interval=0.5, message="a Warning CrashLoop Event on the project")
    # A good image rolls out: the project recovers by itself (the crashing pods were of the replaced template).
    patch_spec(runtime_harness.api, runtime_harness.namespace, name,
               {"image": runtime_harness.example(tag="1")["spec"]["image"]})
    runtime_harness.wait_ready(name, timeout=400)


def test_a_fresh_shared_project_answers_only_after_the_operators_migration_ran(harness: ServingHarness) -> None:
    """Issue 13 item 6: an empty database; the operator's migrate Job (the real `manage.py migrate`) runs first,
    then populate, then the web Deployment: every test domain then answers with its site."""
    name = harness.apply(harness.example())
    assert not harness.database(name).exists() or harness.database(name).stat().st_size == 0
    harness.wait_ready(name, timeout=400)
    batch, apps = client.BatchV1Api(harness.api), client.AppsV1Api(harness.api)
    [migrate] = batch.list_namespaced_job(harness.namespace, label_selector=(
        f"multisite.dev/project={name},app.kubernetes.io/component=migrate")).items
    web = apps.read_namespaced_deployment(f"{name}-web", harness.namespace)
    assert migrate.status.succeeded == 1 and migrate.status.completion_time <= web.metadata.creation_timestamp
    with sqlite3.connect(harness.database(name)) as db:
        assert db.execute("select count(*) from django_migrations").fetchone()[0] > 0, "migrated by the Job"
    for host, site in TEST_HOSTS.items():  # Ready says the pods are; Traefik learns their endpoints a moment later
        harness.until_site(host, site, timeout=60)


# ----------------------------------------------------------------------------------------------- multi-project mode
def test_multi_project_live_every_domain_its_own_site(harness: ServingHarness) -> None:
    name = harness.apply(harness.example(mode="multi-project", environment="live"))
    harness.wait_ready(name, timeout=400)
    for host, site in LIVE_HOSTS.items():
        harness.until_site(host, site, timeout=60)
    # The alias goes to its own site's instance.
    harness.until_site("www.example.de", 1, timeout=30)
    assert harness.ask(UNSERVED)["status"] == 404


def test_multi_project_live_wildcard_alias_is_served_by_its_sites_instance(harness: ServingHarness) -> None:
    """Issue 13 item 3 in multi-project mode: aldryn-sites gets the regex it wants for `*.example.gh`, so Ghana's
    own instance serves any subdomain (no redirect, no 400 from the host check)."""
    project = harness.example(mode="multi-project", environment="live")
    project["spec"]["sites"][1]["live"]["aliases"] = ["*.example.gh"]
    name = harness.apply(project)
    harness.wait_ready(name, timeout=400)
    for host in ("shop.example.gh", "blog.example.gh"):
        resp, _ = harness.until(host, lambda r: site_of(r) == 2, timeout=60)
        assert resp.status == 200, answer(resp)
    harness.until_site("example.gh", 2, timeout=30)


def test_multi_project_redirect_host_answers_301(harness: ServingHarness) -> None:
    name = harness.apply(harness.example(mode="multi-project", environment="live"))
    harness.wait_ready(name, timeout=400)
    harness.until_site("example.us", 3, timeout=60)
    got = harness.ask("www.example.us")
    assert got["status"] == 301, got
    assert (got["location"] or "").rstrip("/").endswith("example.us/__site__"), got


def test_multi_project_new_image_migrates_first_and_failing_migration_keeps_old_code(
        harness: ServingHarness, capsys: pytest.CaptureFixture[str]) -> None:
    name = harness.apply(harness.example(mode="multi-project"))
    harness.wait_ready(name, timeout=400)
    host = "gh.example-stage.eu.aldryn.io"
    harness.until(host, lambda r: site_of(r) == 2 and b'"version": "1"' in r.body, timeout=60)
    db = harness.database(name)

    def tables() -> set[str]:
        with sqlite3.connect(db) as conn:
            return {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}

    assert "siteinfo_v2_release2marker" not in tables()
    # Release 2: its migration runs for real before any site rolls, then every site serves release 2.
    patch_spec(harness.api, harness.namespace, name, {"image": "multisite-test/divio-site:2"})
    wait_condition(harness.api, harness.namespace, name, "Migrated", "True", timeout=400)
    assert "siteinfo_v2_release2marker" in tables()
    _, seconds = harness.until(host, lambda r: b'"version": "2"' in r.body, timeout=400)
    harness.wait_ready(name, timeout=400)
    # Right after Ready a request may still meet an old pod that is shutting down (Bad Gateway for a moment, as a
    # real kubelet's SIGTERM without a preStop delay gives too): ask until each site answers release 2.
    for h, site in TEST_HOSTS.items():
        harness.until(h, lambda r, site=site: site_of(r) == site and b'"version": "2"' in r.body, timeout=60)
    _report(capsys, f"multi-project: release 2 served {seconds:.1f} s after its migration succeeded")
    # A release whose migration fails for real: nothing rolls, every site keeps serving release 2.
    patch_spec(harness.api, harness.namespace, name, {"image": "multisite-test/divio-site:broken-migration",
                                                       "migrate": {"backoffLimit": 0}})
    got = wait_condition(harness.api, harness.namespace, name, "Migrated", "False", timeout=400)
    message = next(c for c in got["status"]["conditions"] if c["type"] == "Migrated")["message"]
    assert "example-migrate-" in message and "migration" in message, message  # the real command's traceback
    for h, site in TEST_HOSTS.items():
        resp = harness.traefik.request(h)
        assert site_of(resp) == site and b'"version": "2"' in resp.body, (h, resp.body)


def test_multi_project_failed_migration_message_names_the_real_error(harness: ServingHarness) -> None:
    name = harness.apply(harness.example(tag="broken-migration", mode="multi-project",
                                         migrate={"backoffLimit": 0}))
    got = wait_condition(harness.api, harness.namespace, name, "Migrated", "False", timeout=400)
    message = next(c for c in got["status"]["conditions"] if c["type"] == "Migrated")["message"]
    assert "fails on purpose" in message, message
