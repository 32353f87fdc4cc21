"""The harness's own rules, without a cluster: the netns guard, pod IP ranges, kwok leaving the test image alone."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess

import pytest

from controlplane import cluster
from runtime import images, netns
from runtime.kubelet import IPPool, _expand


def _fake_routes(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    def run(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - stands in for subprocess.run
        return subprocess.CompletedProcess(args, 0, stdout=text, stderr="")
    monkeypatch.setattr(netns.subprocess, "run", run)


def test_guard_refuses_when_the_pod_range_is_not_local(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the host's namespace looks like: loopback only (and a bridge), no 10.0.0.0/16.
    _fake_routes(monkeypatch, "local 127.0.0.0/8 dev lo proto kernel scope host src 127.0.0.1\n"
                              "local 10.88.0.1 dev cni-podman0 proto kernel scope host src 10.88.0.1\n")
    with pytest.raises(netns.NotInPrivateNetns, match="refusing to serve: 10.0.0.0/16 is not a local route"):
        netns.require_private_netns()
    # A narrower local route does not cover the whole pod range either.
    _fake_routes(monkeypatch, "local 10.0.0.0/24 dev lo scope host\n")
    assert not netns.pod_range_is_local()


def test_guard_accepts_the_namespace_make_test_creates(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_routes(monkeypatch, "local 10.0.0.0/16 dev lo scope host\n"
                              "local 127.0.0.0/8 dev lo proto kernel scope host src 127.0.0.1\n")
    netns.require_private_netns()


def test_real_and_kwok_pod_ips_never_collide_and_stay_in_the_local_range() -> None:
    real, kwok = ipaddress.ip_network(cluster.REAL_POD_CIDR), ipaddress.ip_network(cluster.KWOK_POD_CIDR)
    local = ipaddress.ip_network(netns.POD_RANGE)
    assert not real.overlaps(kwok)
    assert real.subnet_of(local) and kwok.subnet_of(local)
    pool = IPPool()
    a, b = pool.take(), pool.take()
    assert a != b and ipaddress.ip_address(a) in real
    pool.give_back(a)
    assert pool.take() == a


def test_every_kwok_pod_stage_skips_the_test_image() -> None:
    docs = cluster.kwok_stages().split("---\n")
    pod_stages = [d for d in docs if "kind: Pod\n" in d]
    assert len(pod_stages) == len(cluster.KWOK_STAGES) - 2 + 1  # two node stages; plus the pull-failure stage
    for doc in pod_stages:
        assert f'startswith("{images.REPOSITORY.split("/")[0]}/")' in doc and "operator: 'DoesNotExist'" in doc


def test_env_expansion_follows_kubernetes() -> None:
    env = {"A": "x", "B": "y"}
    assert _expand("$(A)-$(B)", env) == "x-y"
    assert _expand("$$(A)", env) == "$(A)"  # escaped
    assert _expand("$(MISSING)", env) == "$(MISSING)"  # unknown references stay as written


def test_unknown_tags_are_not_images() -> None:
    with pytest.raises(images.ImageNotFound, match="not found"):
        images.resolve("multisite-test/divio-site:9.9", images.REPO / ".cache")
    with pytest.raises(ValueError, match="unknown test image tag"):
        images.image("latest")


# Two site processes' transactions that read, then write (django-multisite's Alias.save_base: full_clean's SELECTs,
# then the INSERT). A holds its transaction open until B has begun one too (or 2 s passed: B may be made to wait).
_TWO_WRITERS = '''
import threading
from django.db import connection, transaction
with connection.cursor() as c:
    c.execute("CREATE TABLE t (x integer)")
a_read, b_began, errors = threading.Event(), threading.Event(), []

def writer(name, first):
    try:
        if not first:
            a_read.wait(10)
        with transaction.atomic():
            if not first:
                b_began.set()
            with connection.cursor() as c:
                c.execute("SELECT count(*) FROM t")
                c.fetchall()
                if first:
                    a_read.set()
                    b_began.wait(2)
                c.execute("INSERT INTO t VALUES (1)")
    except Exception as exc:
        errors.append(f"{name}: {exc}")
    finally:
        connection.close()

threads = [threading.Thread(target=writer, args=(n, n == "A")) for n in "AB"]
[t.start() for t in threads]
[t.join(30) for t in threads]
with connection.cursor() as c:
    c.execute("SELECT count(*) FROM t")
    print("rows", c.fetchone()[0], "errors", errors)
'''


def test_two_site_processes_writing_at_once_to_the_sqlite_stand_in_both_succeed(tmp_path) -> None:
    """sqlite stands in for Postgres: two instances' read-then-write transactions must both succeed, one waiting
    for the other, as on Postgres. With sqlite's deferred BEGIN the second failed at once with "database is
    locked" (the lock-upgrade deadlock) and a multi-project site started next to another was left without its
    canonical Alias (500 Alias.DoesNotExist); the test site's backend begins IMMEDIATE (sqlite_immediate/base.py)."""
    config = images.resolve(images.image("1"), tmp_path / "data")
    env = {**config.env, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "DEFAULT_STORAGE_DSN": f"file://{tmp_path}/media?url=%2Fmedia%2F"}
    res = subprocess.run(["python", "manage.py", "shell", "-c", _TWO_WRITERS], cwd=config.workdir, env=env,
                         capture_output=True, text=True, timeout=300,
                         executable=shutil.which("python", path=env["PATH"]))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "rows 2 errors []" in res.stdout, res.stdout[-2000:]
