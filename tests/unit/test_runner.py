"""kopf's namespace scanning is turned off only when every --namespace is an exact name: with deploy/rbac.yaml
(no namespace list/watch) scanning cost ~54 s of kopf retries at start-up; a pattern still needs the scan."""

from __future__ import annotations

from multisite_operator.runner import exact_namespaces


def test_exact_names_need_no_scanning():
    assert exact_namespaces(["shop"]) and exact_namespaces(["shop", "team-2"])


def test_cluster_wide_or_patterns_keep_scanning():
    assert not exact_namespaces([]) and not exact_namespaces(None)
    assert not exact_namespaces(["shop-*"]) and not exact_namespaces(["!kube-system"])
    assert not exact_namespaces(["shop", "team-?"])
