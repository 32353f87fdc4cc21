"""Golden manifests: each example in, every object `multisite-operator render` prints out, compared whole.

Why whole: a renderer change anywhere (an env value, a label, a probe) shows up here as one readable diff, not only
where a targeted test happens to look. The expected files are committed under tests/unit/golden/; after a deliberate
renderer change regenerate them with

    REGENERATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_golden.py

and review the diff (`git diff tests/unit/golden`) like any other change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from multisite_operator.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"
EXAMPLES = ["example-shared", "example-multi-project", "example-gateway"]


def rendered(example: str, capsys: pytest.CaptureFixture[str]) -> str:
    main(["render", str(ROOT / "examples" / f"{example}.yaml"), "--namespace", "shop"])
    return capsys.readouterr().out


@pytest.mark.parametrize("example", EXAMPLES)
def test_render_output_matches_golden_manifest(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = rendered(example, capsys)
    golden = GOLDEN / f"{example}.rendered.yaml"
    if os.environ.get("REGENERATE_GOLDEN"):
        golden.write_text(out)
    assert golden.exists(), f"{golden} missing: run REGENERATE_GOLDEN=1 pytest {Path(__file__).name}"
    want = list(yaml.safe_load_all(golden.read_text()))
    have = list(yaml.safe_load_all(out))
    assert [(o["kind"], o["metadata"]["name"]) for o in have] == [(o["kind"], o["metadata"]["name"]) for o in want]
    for got, expected in zip(have, want):
        assert got == expected, f"{got['kind']} {got['metadata']['name']} differs from {golden.name}"
