"""What a platform engineer watches: /metrics, Events on the project, and JSON logs, from a running operator.

The operator runs as in the image (`--log-format json`), so every test here also checks its log stream.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from helpers import wait_for
from multisite_operator import metrics as metrics_module

from harness.operator_process import OperatorProcess
from harness.project import (
    apply_example_secrets,
    create_project,
    events_for,
    example_project,
    failing_populate_project,
    jobs,
    patch_spec,
    wait_condition,
)

NAMED = sorted(m._name for m in vars(metrics_module).values() if isinstance(m, (Counter, Gauge, Histogram)))


@pytest.fixture
def operator(cluster, crd: str, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator with JSON logs (named `operator` so a failing test prints its log, see conftest)."""
    proc = OperatorProcess(cluster.kubeconfig, [namespace], tmp_path / "operator.log",
                           extra=["--log-format", "json"]).start()
    try:
        yield proc
    finally:
        proc.stop()


def scrape(operator: OperatorProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as Prometheus parses it: (sample name, labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def reasons(api: client.ApiClient, namespace: str) -> dict[str, int]:
    """Event reason -> how many times it was reported (a repeated Event counts `count` times)."""
    out: dict[str, int] = {}
    for e in events_for(api, namespace, "example"):
        out[e.reason] = out.get(e.reason, 0) + (e.count or 1)
    return out


def assert_json_log(operator: OperatorProcess) -> list[dict]:
    lines = [line for line in operator.log().splitlines() if line.strip()]
    assert lines, "the operator logged nothing"
    records = []
    for line in lines:
        record = json.loads(line)  # every line, kopf's and the client's included
        assert isinstance(record, dict) and {"time", "level", "logger", "message"} <= set(record), line
        records.append(record)
    assert any(r["logger"].startswith("kopf") for r in records)
    return records


def test_metrics_serve_every_named_metric_with_real_values(api_client, namespace, operator):
    assert {"multisite_reconciles", "multisite_reconcile_errors", "multisite_reconcile_duration_seconds",
            "multisite_sites_managed", "multisite_populate_results", "multisite_migrate_results"} <= set(NAMED)
    apply_example_secrets(api_client, namespace)
    create_project(api_client, namespace, example_project())
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=90)
    samples = scrape(operator)

    families = {name for name, _ in samples}
    for name in NAMED:  # counters are served as NAME_total, histograms as NAME_bucket/_sum/_count
        assert {name, f"{name}_total", f"{name}_count"} & families, f"{name} is not served"
    assert value(samples, "multisite_sites_managed") == 3
    assert value(samples, "multisite_projects") == 1
    assert value(samples, "multisite_leader") == 1  # no --leader-elect: this replica reconciles
    assert value(samples, "multisite_populate_results_total", result="started") == 1
    assert value(samples, "multisite_populate_results_total", result="succeeded") == 1
    assert value(samples, "multisite_populate_results_total", result="failed") == 0
    assert value(samples, "multisite_migrate_results_total", result="started") == 0  # shared mode: no migration
    assert value(samples, "multisite_reconcile_errors_total") == 0
    changed = value(samples, "multisite_reconciles_total", result="changed")
    total = changed + value(samples, "multisite_reconciles_total", result="unchanged")
    assert changed >= 1
    assert value(samples, "multisite_reconcile_duration_seconds_count") == total
    assert value(samples, "multisite_reconcile_duration_seconds_sum") > 0
    # Service, Deployment, Job, Ingress and at least one status write.
    assert value(samples, "multisite_api_writes_total") >= 5

    # An event that changes nothing: one more reconcile, and no outcome counted again (transitions only).
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        "multisite.dev", "v1alpha1", namespace, "multisiteprojects", "example",
        {"metadata": {"annotations": {"example.com/touched": "yes"}}})
    later = wait_for(lambda: (s := scrape(operator))
                     and value(s, "multisite_reconciles_total", result="unchanged") > total - changed and s,
                     timeout=30, message="a reconcile after the annotation change")
    assert value(later, "multisite_populate_results_total", result="succeeded") == 1
    assert value(later, "multisite_api_writes_total") == value(samples, "multisite_api_writes_total")
    assert_json_log(operator)


def test_events_report_each_decision_once(api_client, namespace, operator):
    apply_example_secrets(api_client, namespace)
    create_project(api_client, namespace, example_project())
    project = wait_condition(api_client, namespace, "example", "Ready", "True", timeout=90)
    first_job = jobs(api_client, namespace, "populate")[0].metadata.name
    seen = wait_for(lambda: (r := reasons(api_client, namespace)).get("Ready") and r, timeout=20,
                    message="the Ready Event")
    assert seen["PopulateStarted"] == 1 and seen["Succeeded"] == 1 and seen["Ready"] == 1
    events = events_for(api_client, namespace, "example")
    started = next(e for e in events if e.reason == "PopulateStarted")
    assert started.type == "Normal" and first_job in started.message and "de, gh, us" in started.message
    # The happy path warns about nothing: rolling out and populating are progress, not problems.
    assert [e.reason for e in events if e.type == "Warning"] == []

    # Removing a site: it is orphaned (its data stays), a new populate Job runs and the old one is pruned.
    sites = [s for s in project["spec"]["sites"] if s["slug"] != "gh"]
    patch_spec(api_client, namespace, "example", {"sites": sites})
    wait_condition(api_client, namespace, "example", "Ready", "True", timeout=90)
    wait_for(lambda: [j.metadata.name for j in jobs(api_client, namespace, "populate")] != [first_job],
             timeout=30, message="the first populate Job pruned")
    seen = wait_for(lambda: (r := reasons(api_client, namespace)).get("Deleted") and r, timeout=20,
                    message="the Deleted Event")
    assert seen["SiteOrphaned"] == 1 and seen["PopulateStarted"] == 2
    events = events_for(api_client, namespace, "example")
    orphaned = next(e for e in events if e.reason == "SiteOrphaned")
    assert "gh (SITE_ID 2)" in orphaned.message and "stay in the database" in orphaned.message
    deleted = [e.message for e in events if e.reason == "Deleted"]
    assert deleted == [f"deleted Job {first_job}: no longer desired by the spec"]

    # Nothing new happens on a no-op event: no Event is repeated.
    before = reasons(api_client, namespace)
    # Counted before the change: the reconcile it causes may be done before a scrape after it.
    reconciles = value(scrape(operator), "multisite_reconciles_total", result="unchanged")
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        "multisite.dev", "v1alpha1", namespace, "multisiteprojects", "example",
        {"metadata": {"annotations": {"example.com/touched": "yes"}}})
    wait_for(lambda: value(scrape(operator), "multisite_reconciles_total", result="unchanged") > reconciles,
             timeout=30, message="a reconcile after the annotation change")
    assert reasons(api_client, namespace) == before
    assert value(scrape(operator), "multisite_populate_results_total", result="started") == 2


def test_failed_populate_is_a_warning_and_a_failed_count(api_client, namespace, operator):
    apply_example_secrets(api_client, namespace)
    create_project(api_client, namespace, failing_populate_project("django.db.utils.OperationalError: could not connect"))
    wait_condition(api_client, namespace, "example", "Populated", "False", timeout=90, reason="Failed")
    samples = scrape(operator)
    assert value(samples, "multisite_populate_results_total", result="started") == 1
    assert value(samples, "multisite_populate_results_total", result="failed") == 1
    assert value(samples, "multisite_populate_results_total", result="succeeded") == 0
    warnings = wait_for(lambda: {e.reason: e for e in events_for(api_client, namespace, "example")
                                 if e.type == "Warning"}.get("Failed"), timeout=20, message="a Warning Event")
    assert "could not connect" in warnings.message and warnings.message.startswith("Populated=False")
    records = assert_json_log(operator)
    assert all("change-me" not in r["message"] for r in records)  # the example Secret's value never logged
