"""The committed CRD is exactly what the models generate: one source of truth, and a failing test when stale."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from multisite_operator.crd import crd

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "multisiteprojects.yaml"


def test_committed_crd_is_not_stale():
    assert yaml.safe_load(CRD_FILE.read_text()) == crd(), (
        "crds/multisiteprojects.yaml is stale: run `multisite-operator crd > crds/multisiteprojects.yaml`")


def _walk(node, path="spec"):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.get("properties", {}).items():
            yield from _walk(value, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            yield from _walk(node["items"], f"{path}[]")


@pytest.mark.parametrize("part", ["spec", "status"])
def test_schema_is_structural_and_explained(part):
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][part]
    for path, node in _walk(schema, part):
        assert "$ref" not in node and "anyOf" not in node, path
        assert "description" in node or path.endswith("[]"), f"{path} has no description for kubectl explain"
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path


def test_printer_columns_and_scale_subresource():
    version = crd()["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Mode", "Environment", "Sites", "Ready", "Populated", "Domains", "Age"]
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    assert crd()["spec"]["names"]["shortNames"] == ["msp"]


def test_status_schema_is_complete_without_preserving_unknown_fields():
    """Every field the operator writes is in the schema (the API server would prune it otherwise)."""
    status = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert "x-kubernetes-preserve-unknown-fields" not in str(status)
    assert {"knownSites", "orphanedSites", "image", "sites", "conditions", "replicas", "selector"} <= set(
        status["properties"])
    site = status["properties"]["sites"]["items"]["properties"]
    assert {"image", "rollingTo", "readyReplicas", "available"} <= set(site)
    assert site["image"]["nullable"] is True, "a site with no image yet is written as null and must stay so"
