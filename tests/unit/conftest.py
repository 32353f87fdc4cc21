"""Unit-test fixtures: specs built from the example manifest, no cluster."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from multisite_operator.models import MultiSiteProjectSpec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "example-shared.yaml"


def example_spec_dict() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    return copy.deepcopy(next(d for d in docs if d["kind"] == "MultiSiteProject")["spec"])


@pytest.fixture
def spec_dict() -> dict[str, Any]:
    return example_spec_dict()


@pytest.fixture
def spec(spec_dict: dict[str, Any]) -> MultiSiteProjectSpec:
    return MultiSiteProjectSpec.model_validate(spec_dict)
