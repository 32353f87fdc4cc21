"""The CustomResourceDefinition, generated from the pydantic models so schema and code cannot drift apart.

Pydantic's JSON Schema is turned into a Kubernetes structural schema (no $ref, no anyOf-with-null, no titles);
rules that span fields are CEL (`x-kubernetes-validations`), each with a message that says what to fix.
"""

from __future__ import annotations

from typing import Any

from .limits import NAME_RULES
from .models import (
    GROUP, KIND, MAX_SITES, MESSAGES, PLURAL, SHORT_NAMES, SINGULAR, VERSION, MultiSiteProjectSpec,
    MultiSiteProjectStatus,
)

KEEP = {
    "type", "properties", "required", "items", "description", "default", "enum", "pattern", "minLength",
    "maxLength", "minimum", "maximum", "minItems", "maxItems", "additionalProperties", "format",
}  # fmt: skip

# Every host of one environment of one site, as a CEL list expression over a site variable.
_LIVE_HOSTS = "[s.live.domain] + (has(s.live.aliases) ? s.live.aliases : []) + (has(s.live.redirects) ? s.live.redirects : [])"
_TEST_HOSTS = (
    "(has(s.test) ? ((has(s.test.domain) ? [s.test.domain] : []) + (has(s.test.aliases) ? s.test.aliases : [])"
    " + (has(s.test.redirects) ? s.test.redirects : [])) : [])"
)


def _unique(items: str) -> str:
    """Uniqueness in linear CEL cost: building a map fails on the first repeated key, and names it.

    distinct() and all/exists_one pairs are quadratic at run time: measured on the API server, they exceed the
    per-rule cost limit from about 400 sites. transformMapEntry (two-variable comprehensions) fails with
    "insert failed: key <value> already exists evaluating rule: <message>", which tells the user the duplicate.
    """
    return f"{items}.transformMapEntry(i, v, {{v: i}}).size() == {items}.size()"


SPEC_RULES = [
    {
        "rule": _unique("self.sites.map(s, s.slug)"),
        "message": MESSAGES["slugs"],
        "fieldPath": ".sites",
    },
    {
        "rule": _unique("self.sites.map(s, s.id)"),
        "message": MESSAGES["ids"],
        "fieldPath": ".sites",
    },
    {
        "rule": _unique(f"self.sites.map(s, {_LIVE_HOSTS}).flatten()"),
        "message": MESSAGES["live"],
        "fieldPath": ".sites",
    },
    {
        "rule": _unique(f"self.sites.map(s, {_TEST_HOSTS}).flatten()"),
        "message": MESSAGES["test"],
        "fieldPath": ".sites",
    },
    {
        "rule": "has(self.testDomainFormat) || self.sites.all(s, has(s.test) && has(s.test.domain))",
        "message": f"every site needs a test domain: {MESSAGES['test_domain_fix']}",
        "fieldPath": ".sites",
    },
    {
        "rule": "!has(self.defaultSiteId) || self.sites.exists(s, s.id == self.defaultSiteId)",
        "message": MESSAGES["default_site"],
        "fieldPath": ".defaultSiteId",
    },
    {
        # spec.ingress has no schema default, so has() is true only when the user wrote it.
        "rule": "!has(self.gateway) || !has(self.ingress) || (has(self.ingress.enabled) && !self.ingress.enabled)",
        "message": MESSAGES["routing"],
        "fieldPath": ".gateway",
    },
]

FIELD_RULES: dict[str, list[dict[str, str]]] = {
    "testDomainFormat": [
        {"rule": "self.contains('{slug}')", "message": MESSAGES["format_slug"]},
        {
            "rule": "self.replace('{slug}', 'slug').matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?[.])*[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
            "message": MESSAGES["format_host"],
        },
    ],
}


def _structural(node: Any, defs: dict[str, Any], nullable: bool = False) -> Any:
    """`nullable`: an Optional field keeps null (status: a site with no image yet) instead of the API server
    pruning it, so what the operator wrote and what it reads back compare equal."""
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = _structural(defs[node["$ref"].split("/")[-1]], defs, nullable)
        extra = {k: v for k, v in node.items() if k in ("description", "default")}
        return {**target, **extra}
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        if len(branches) == 1:
            merged = {**_structural(branches[0], defs, nullable)}
            if nullable and len(node["anyOf"]) > 1:
                merged["nullable"] = True
            for k in ("description",):
                if k in node:
                    merged[k] = node[k]
            if node.get("default") is not None:
                merged["default"] = node["default"]
            return merged
        # int | str without an explicit schema: Kubernetes' int-or-string.
        return {"x-kubernetes-int-or-string": True, **({"description": node["description"]} if "description" in node else {})}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            out[key] = value
        elif key not in KEEP or (key == "default" and value is None):
            continue
        elif key == "properties":
            out[key] = {name: _structural(sub, defs, nullable) for name, sub in value.items()}
        elif key == "additionalProperties" and value is False:
            continue  # extra="forbid": the API server prunes unknown fields; structural schemas forbid both
        elif key in ("items", "additionalProperties"):
            out[key] = _structural(value, defs, nullable) if isinstance(value, dict) else value
        else:
            out[key] = value
    return out


def _attach_field_rules(schema: dict[str, Any]) -> None:
    """Host and slug syntax stay regex patterns: a CEL regex per list item is priced per possible item
    (sites x aliases) and blows the API server's cost budget, while a pattern is free."""
    schema["properties"]["testDomainFormat"]["x-kubernetes-validations"] = FIELD_RULES["testDomainFormat"]


def status_schema() -> dict[str, Any]:
    """The status as the operator writes it, generated from the models like the spec's schema."""
    raw = MultiSiteProjectStatus.model_json_schema(by_alias=True, mode="serialization")
    schema = _structural(raw, raw.get("$defs", {}), nullable=True)
    schema.pop("required", None)  # merge patches write it piecewise; the API server must accept any subset
    schema["description"] = "What the operator observed. Written by the operator only."
    return schema


def spec_schema() -> dict[str, Any]:
    raw = MultiSiteProjectSpec.model_json_schema(by_alias=True, mode="validation")
    schema = _structural(raw, raw.get("$defs", {}))
    _attach_field_rules(schema)
    schema["properties"]["sites"]["maxItems"] = MAX_SITES
    schema["x-kubernetes-validations"] = SPEC_RULES
    schema["description"] = "Desired state of a multi-site Django project."
    return schema


def crd() -> dict[str, Any]:
    condition = '.status.conditions[?(@.type=="{}")].status'
    columns = [
        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
        {"name": "Environment", "type": "string", "jsonPath": ".spec.environment"},
        {"name": "Sites", "type": "integer", "jsonPath": ".status.siteCount"},
        {"name": "Ready", "type": "string", "jsonPath": condition.format("Ready")},
        {"name": "Populated", "type": "string", "jsonPath": condition.format("Populated")},
        {"name": "Domains", "type": "string", "jsonPath": ".status.routedHosts",
         "description": "Hosts the routing layer accepted, of all hosts served"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "plural": PLURAL, "singular": SINGULAR, "shortNames": SHORT_NAMES,
                      "categories": ["all"]},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A Django project's sites and domains, hosted shared (one deployment, "
                            "Django Multisite Plus) or as one deployment per site on one database.",
                            "required": ["spec"],
                            # The project's name names its children: rejected at apply time if they could not exist.
                            "x-kubernetes-validations": NAME_RULES,
                            "properties": {
                                # Bounds the name rules' CEL cost (a name is at most 253 characters anyway).
                                "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 253}}},
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                        }
                    },
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }
