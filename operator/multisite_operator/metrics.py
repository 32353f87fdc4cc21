"""Prometheus metrics: what a platform engineer graphs and alerts on. Names are listed in the README."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("multisite_reconciles_total", "Reconciles of a MultiSiteProject, by result.", ["result"])
RECONCILE_ERRORS = Counter("multisite_reconcile_errors_total", "Reconciles that raised an error (retried).")
RECONCILE_SECONDS = Histogram(
    "multisite_reconcile_duration_seconds", "Duration of one reconcile.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WRITES = Counter("multisite_api_writes_total", "Writes to the Kubernetes API made by reconciles (apply, delete, status).")
PROJECTS = Gauge("multisite_projects", "MultiSiteProjects known to this operator.")
SITES = Gauge("multisite_sites_managed", "Sites across every MultiSiteProject known to this operator.")
POPULATE_RESULTS = Counter("multisite_populate_results_total", "Populate Job outcomes seen, by result.", ["result"])
MIGRATE_RESULTS = Counter("multisite_migrate_results_total", "Migration Job outcomes seen, by result.", ["result"])
