"""Prometheus metrics: what a platform engineer graphs and alerts on. Names are listed in the README."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("multisite_reconciles_total", "Reconciles of a MultiSiteProject, by result.", ["result"])
RECONCILE_ERRORS = Counter("multisite_reconcile_errors_total", "Reconciles that raised an error (retried).")
RECONCILE_SECONDS = Histogram(
    "multisite_reconcile_duration_seconds", "Duration of one reconcile.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WRITES = Counter("multisite_api_writes_total",
                 "Writes to the Kubernetes API made by reconciles (apply, delete, status).")
SECRET_READS = Counter("multisite_secret_reads_total",
                       "GETs of Secrets a project references (to find missing and rotated ones); flat while every "
                       "project is Ready and unchanged, between rechecks (--secret-recheck-seconds).")
WRITE_REQUESTS = Counter("multisite_api_write_requests_total",
                         "Write requests sent to the Kubernetes API (apply, delete, status, Event; Lease renewals "
                         "excluded), each retry counted: what a deposed leader must never send.")
WRITES_REFUSED = Counter("multisite_writes_refused_total",
                         "Writes refused before sending because this replica's Lease had expired by its own clock "
                         "(leader.py): each one is a write a deposed leader would otherwise have made.")
PROJECTS = Gauge("multisite_projects", "MultiSiteProjects known to this operator.")
SITES = Gauge("multisite_sites_managed", "Sites across every MultiSiteProject known to this operator.")
POPULATE_RESULTS = Counter("multisite_populate_results_total",
                           "Populate Jobs started, and their outcomes, by result (started|succeeded|failed).",
                           ["result"])
MIGRATE_RESULTS = Counter("multisite_migrate_results_total",
                          "Migration Jobs started, and their outcomes, by result (started|succeeded|failed).",
                          ["result"])
# Read at scrape time from the controller (controller.py): across replicas, exactly one should report 1.
LEADER = Gauge("multisite_leader", "1 while this replica reconciles (holds the Lease, or runs without "
               "--leader-elect); 0 on a standby.")


# Known label values start at 0, so every series exists from the first scrape (rate() and alerts need that).
for _result in ("started", "succeeded", "failed"):
    POPULATE_RESULTS.labels(_result)
    MIGRATE_RESULTS.labels(_result)
for _result in ("changed", "unchanged", "error"):
    RECONCILES.labels(_result)

# Condition transitions that are a Job's outcome: (type, status) -> (counter, result).
_JOB_OUTCOMES = {
    ("Populated", "True", "Succeeded"): (POPULATE_RESULTS, "succeeded"),
    ("Populated", "False", "Failed"): (POPULATE_RESULTS, "failed"),
    ("Migrated", "True", "Succeeded"): (MIGRATE_RESULTS, "succeeded"),
    ("Migrated", "False", "Failed"): (MIGRATE_RESULTS, "failed"),
}


def count_job_result(change: dict) -> None:
    """Count a populate/migrate outcome from a condition transition: once per outcome, never per reconcile."""
    hit = _JOB_OUTCOMES.get((change.get("type"), change.get("status"), change.get("reason")))
    if hit is not None:
        hit[0].labels(hit[1]).inc()
