"""What every suite that drives a real control plane shares (e2e, bench, and the serving tests):

- cluster.py: kubectl(), installing the CRD, private control planes, restricted namespaces, a project's children;
- project.py: a MultiSiteProject in a user's words: the examples, create/patch/delete, condition(), wait_condition();
- operator_process.py: the operator process as users start it, its metrics and log checks.

The control plane itself is tests/controlplane/cluster.py (also `make cluster-up`).
"""
