"""Issue 14 item 10 and issue 16 on the fake API: a rotated Secret rolls the pods and re-runs the database Jobs;
an unchanged Ready project's reconcile reads no Secret; Secret values never reach any rendered object.

Why here: which Secret values the digest covers, when they are read, and what a change renames are decisions of
rotation.py, the reconcile and render/; tests/e2e/test_rotation.py proves the roll on a real control plane.
"""

from __future__ import annotations

import hashlib
import json

from fake_cluster import SECRETS, FakeCluster, example, reconcile
from multisite_operator.reconcile import Reconciler
from multisite_operator.rotation import DATABASE_DIGEST, SECRETS_DIGEST, digests

DB = ("example-db", "DATABASE_URL")
STORAGE = ("example-storage", "DEFAULT_STORAGE_DSN")
NEW_DB = "postgres://example:n3w-r0tated-pw@db2:5432/example"
INTERVAL = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ready(name: str = "example-shared") -> tuple[FakeCluster, Reconciler, Clock]:
    """A project that is Ready, with every Job done."""
    cluster, clock = FakeCluster(example(name)), Clock()
    r = Reconciler(cluster, cluster.emit, secret_recheck=INTERVAL, clock=clock)
    cluster.settle(r)
    assert cluster.ready() == ("True", "Ready")
    return cluster, r, clock


def template(cluster: FakeCluster, deployment: str) -> dict:
    return cluster.objects[("Deployment", deployment)]["spec"]["template"]


def secret_reads(cluster: FakeCluster) -> list[str]:
    return [name for kind, name in cluster.reads if kind == "Secret"]


# --- when the Secrets are read (issue 16: 2 requests -> 0 per unchanged reconcile) -------------------------------
def test_an_unchanged_ready_project_reconciles_without_reading_a_secret():
    cluster, r, clock = ready()
    clock.now += INTERVAL / 2
    out = reconcile(r, cluster)
    assert secret_reads(cluster) == [] and cluster.writes == []
    assert out.retry_after is not None and 0 < out.retry_after <= INTERVAL / 2, "a timed look is due at the interval"


def test_secrets_are_read_again_after_the_interval_on_a_new_generation_and_soon_after_a_failure():
    from multisite_operator.rotation import NOT_READY_RECHECK_SECONDS

    cluster, r, clock = ready()
    clock.now += INTERVAL
    reconcile(r, cluster)
    assert secret_reads(cluster) == ["example-db", "example-storage"]
    reconcile(r, cluster)
    assert secret_reads(cluster) == []
    cluster.edit_spec(replicas=3)  # a new generation
    reconcile(r, cluster)
    assert secret_reads(cluster) == ["example-db", "example-storage"]
    assert cluster.ready() == ("False", "RollingOut")
    reconcile(r, cluster)
    assert secret_reads(cluster) == [], "not Ready: not on every child event of the rollout"
    clock.now += NOT_READY_RECHECK_SECONDS
    reconcile(r, cluster)
    assert secret_reads(cluster) == [], "on its way to Ready: the Secrets read at the generation's start hold"
    cluster.edit_spec(image="registry.example.com/example/web:2.0.0")
    cluster.migrate(r, ok=False)
    assert cluster.ready() == ("False", "MigrationFailed")
    reconcile(r, cluster)
    assert secret_reads(cluster) == []
    clock.now += NOT_READY_RECHECK_SECONDS
    reconcile(r, cluster)
    assert secret_reads(cluster) == ["example-db", "example-storage"], "held back by a failure: looked at again soon"


# --- what a rotation changes -------------------------------------------------------------------------------------
def test_a_rotated_database_url_rolls_the_web_pods_migrates_the_new_database_then_populates_it_at_the_next_look():
    cluster, r, clock = ready()
    before = template(cluster, "example-web")
    old_jobs = set(cluster.named("Job"))
    cluster.secrets[DB] = NEW_DB
    reconcile(r, cluster)
    assert template(cluster, "example-web") == before, "noticed only at the next look, not on every reconcile"
    clock.now += INTERVAL
    reconcile(r, cluster)
    after = template(cluster, "example-web")
    assert after["metadata"]["annotations"][SECRETS_DIGEST] != before["metadata"]["annotations"][SECRETS_DIGEST]
    assert after["metadata"]["annotations"][DATABASE_DIGEST] != before["metadata"]["annotations"][DATABASE_DIGEST]
    [migrate] = [j for j in cluster.named("Job") if j not in old_jobs]
    assert "migrate" in migrate and ("apply", "Job", migrate) in cluster.writes, "the new database gets its schema"
    assert cluster.condition("Migrated")["status"] == "Unknown"
    assert cluster.condition("Populated")["reason"] == "Waiting", "no rows are written before the schema exists"
    assert cluster.ready()[0] == "False"
    cluster.roll_out()
    cluster.finish(migrate)
    reconcile(r, cluster)
    [populate] = [j for j in cluster.named("Job") if j not in old_jobs | {migrate}]
    assert "populate" in populate
    cluster.finish(populate)
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")
    assert cluster.condition("Populated")["message"].startswith(f"Job {populate} wrote")


def test_the_same_values_give_the_same_children_and_no_write():
    cluster, r, clock = ready()
    objects = json.dumps(sorted(map(list, cluster.objects.items())), sort_keys=True)
    clock.now += INTERVAL
    out = reconcile(r, cluster)
    assert secret_reads(cluster) and out.writes == 0 and cluster.writes == []
    assert json.dumps(sorted(map(list, cluster.objects.items())), sort_keys=True) == objects
    again = Reconciler(cluster, cluster.emit)  # a restarted operator computes the same digests
    reconcile(again, cluster)
    assert cluster.writes == []


def test_a_rotated_storage_or_env_secret_rolls_the_pods_but_reruns_no_job():
    cluster, r, clock = ready()
    cluster.edit_spec(env=[{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "payment", "key": "KEY"}}}],
                      envFrom=[{"secretRef": {"name": "extra"}}])
    cluster.secrets[("payment", "KEY")] = "api-key-one"
    cluster.secrets[("extra", "TOKEN")] = "token-one"
    reconcile(r, cluster)
    cluster.roll_out()
    [job] = [j for j in cluster.named("Job") if not cluster.objects[("Job", j)].get("status")]
    cluster.finish(job)
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")
    for secret, value in ((STORAGE, "s3://key:n3w-storage@media/"), (("payment", "KEY"), "api-key-two"),
                          (("extra", "TOKEN"), "token-two")):
        digest = template(cluster, "example-web")["metadata"]["annotations"][SECRETS_DIGEST]
        cluster.secrets[secret] = value
        clock.now += INTERVAL
        reconcile(r, cluster)
        assert template(cluster, "example-web")["metadata"]["annotations"][SECRETS_DIGEST] != digest, secret
        assert [w for w in cluster.writes if w[1] == "Job"] == [], f"{secret}: the database did not change"
        cluster.roll_out()
        reconcile(r, cluster)


def test_multi_project_a_rotated_database_url_migrates_again_even_after_the_old_job_is_gone():
    cluster, r, clock = ready("example-multi-project")
    for job in cluster.named("Job"):  # the migration Job of this image, deleted by hand long ago
        del cluster.objects[("Job", job)]
    clock.now += INTERVAL
    reconcile(r, cluster)
    assert [w for w in cluster.writes if w[1] == "Job"] == [], "same database, same image: nothing to migrate"
    cluster.secrets[DB] = NEW_DB
    clock.now += INTERVAL
    reconcile(r, cluster)
    [job] = cluster.named("Job")
    assert ("apply", "Job", job) in cluster.writes
    assert cluster.condition("Migrated")["reason"] == "Migrating"
    deps = cluster.named("Deployment")
    assert all(template(cluster, d)["metadata"]["annotations"][DATABASE_DIGEST]
               == cluster.objects[("Job", job)]["spec"]["template"]["metadata"]["annotations"][DATABASE_DIGEST]
               for d in deps)
    cluster.finish(job)
    cluster.roll_out()
    reconcile(r, cluster)
    reconcile(r, cluster)
    assert cluster.ready() == ("True", "Ready")
    assert cluster.named("Job") == [job]


# --- no value anywhere ---------------------------------------------------------------------------------------------
def test_no_secret_value_or_plain_hash_of_one_is_in_any_rendered_object():
    cluster, r, clock = ready()
    cluster.secrets[DB] = NEW_DB
    clock.now += INTERVAL
    reconcile(r, cluster)
    text = json.dumps([list(cluster.objects.values()), cluster.project["status"], cluster.events])
    for value in [*SECRETS.values(), NEW_DB, "s3cr3t-pw", "st0rage-pw", "n3w-r0tated-pw"]:
        assert value not in text
        assert hashlib.sha256(value.encode()).hexdigest()[:32] not in text


def test_digests_depend_on_the_project_and_on_every_value():
    entries = [(*DB, "postgres://a:pw@h/d"), (*STORAGE, "s3://k:pw@b/")]
    one = digests("uid-1", DB, entries)
    assert one == digests("uid-1", DB, list(reversed(entries)))
    assert one != digests("uid-2", DB, entries), "equal passwords in two projects give unrelated digests"
    changed = digests("uid-1", DB, [entries[0], (*STORAGE, "s3://k:pw2@b/")])
    assert changed.database == one.database and changed.everything != one.everything
    assert digests("uid-1", DB, [(*DB, None), entries[1]]).database != one.database


# --- what the real API client hands the digest, and the option -----------------------------------------------------
def test_check_secrets_lists_every_value_the_pods_read_and_what_is_absent():
    import base64

    from multisite_operator.kube import ApiError, KubeApi

    stored = {"db": {"DATABASE_URL": "postgres://u:p@h/d"}, "extra": {"A": "1", "B": "2"}}

    class Api(KubeApi):
        def _call(self, path: str, method: str, **_: object) -> object:
            name = path.rsplit("/", 1)[-1]
            if name not in stored:
                raise ApiError(404)
            return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in stored[name].items()}}

    import asyncio

    read = []
    Api._call = lambda self, path, method, _call=Api._call, **kw: read.append(path) or _call(self, path, method, **kw)
    check = asyncio.run(Api(None).check_secrets("ns", [("db", "DATABASE_URL"), ("db", "NOPE")],  # type: ignore[arg-type]
                                                [("extra", None), ("gone", None), ("extra", "B")]))
    assert check.missing == ["Secret db has no key NOPE"]
    assert check.entries == [("db", "DATABASE_URL", "postgres://u:p@h/d"), ("db", "NOPE", None), ("extra", "A", "1"),
                             ("extra", "B", "2"), ("gone", "*", None), ("extra", "B", "2")]
    assert len(read) == 3, "each Secret is read once"


def test_the_recheck_option_takes_seconds_and_refuses_a_negative_or_a_word(capsys):
    import pytest

    from multisite_operator.cli import parser

    assert parser().parse_args(["run", "--secret-recheck-seconds", "5"]).secret_recheck_seconds == 5.0
    assert parser().parse_args(["run"]).secret_recheck_seconds == 60.0
    for bad, said in (("-1", "must be 0 or more seconds"), ("inf", "must be 0 or more"), ("nan", "must be 0 or more"),
                      ("soon", "not a number of seconds")):
        with pytest.raises(SystemExit):
            parser().parse_args(["run", "--secret-recheck-seconds", bad])
        assert said in capsys.readouterr().err


def test_upgrading_to_digests_rolls_the_pods_but_migrates_nothing_again():
    """Children made before digests existed carry none: the sites roll once, the database is not migrated again."""
    cluster, r, clock = ready("example-multi-project")
    for (kind, _), obj in cluster.objects.items():
        if kind in ("Deployment", "Job"):
            obj["spec"]["template"]["metadata"].get("annotations", {}).clear()
    clock.now += INTERVAL
    reconcile(r, cluster)
    assert [w for w in cluster.writes if w[:2] == ("apply", "Job")] == []
    assert {k for v, k, _ in cluster.writes if v == "apply"} == {"Deployment"}
