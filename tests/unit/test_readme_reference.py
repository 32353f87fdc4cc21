"""The README's configuration reference is the CRD schema's text: a failing test, and the fix, when it is stale.

`python tests/unit/test_readme_reference.py` prints the table to paste into README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "operator"))

from multisite_operator.crd import crd  # noqa: E402


def _type(node: dict[str, Any]) -> str:
    if node.get("type") == "array":
        return "[]" + _type(node.get("items", {}))
    return node.get("type", "int-or-string")


def _rows(props: dict[str, Any], prefix: str = "") -> list[str]:
    rows = []
    for key, node in props.items():
        path = f"{prefix}{key}"
        text = node.get("description", "")
        if "default" in node and node["default"] not in ({}, []):
            text += f" Default `{node['default']}`."
        rows.append(f"| `{path}` | {_type(node)} | {text} |")
        if node.get("type") == "object" and "properties" in node:
            rows += _rows(node["properties"], f"{path}.")
        elif node.get("type") == "array" and "properties" in node.get("items", {}):
            rows += _rows(node["items"]["properties"], f"{path}[].")
    return rows


def reference_table() -> str:
    spec = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return "\n".join(["| field | type | meaning |", "|---|---|---|", *_rows(spec["properties"])])


def test_readme_reference_table_is_the_crd_schema():
    assert reference_table() in (ROOT / "README.md").read_text(), (
        "README.md's configuration reference is stale: paste `python tests/unit/test_readme_reference.py`")


if __name__ == "__main__":
    print(reference_table())
