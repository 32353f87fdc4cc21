"""Limits of the cluster and of Linux that a valid-looking spec can still exceed, checked before anything is applied.

A spec the schema accepts but whose children the API server (or a node) refuses would otherwise make the operator
retry forever with nothing in the project's status. These checks turn each such spec into one readable message:
the CRD's CEL rule on metadata.name at `kubectl apply` time, and `InvalidSpec` (condition and Warning Event) from
the operator and an error from `multisite-operator render` for what only the rendered children show.

- Project name. It is the value of the label `multisite.dev/project` on every child (label values: at most 63
  characters) and the stem of the Services' names, which may not contain '.' and, before Kubernetes relaxed Service
  name validation (1.36 accepts '2shop-web'), must start with a letter: DNS-1035 labels, the portable rule. Longer child names (`<project>-site-<slug>`, `<project>-populate-<hash>`)
  are shortened with a hash by naming.fit, so no limit depends on the slug: a 63-character name with 40-character
  slugs gives valid names everywhere (tests/unit/test_limits.py renders it and checks every name and label).
- One environment string. execve(2) refuses ("Argument list too long", E2BIG) any single "NAME=value" string longer
  than MAX_ARG_STRLEN = 32 pages = 131072 bytes including its terminating NUL, so the container never starts. The
  variables that grow with the sites (`DJANGO_MULTISITE_PLUS_SITES`, `ALLOWED_HOSTS`) reach it first.
- Annotations. The API server refuses an object whose annotations total more than 256 KiB (keys plus values), on
  the object and on a pod template alike.
"""

from __future__ import annotations

import re
from typing import Any

from .naming import DNS_LABEL_MAX, PROJECT_LABEL

Obj = dict[str, Any]

# include/uapi/linux/binfmts.h: #define MAX_ARG_STRLEN (PAGE_SIZE * 32), checked by fs/exec.c copy_strings() against
# strnlen_user(), which counts the NUL. 4 KiB pages are the smallest Linux uses, so this holds on every node.
MAX_ARG_STRLEN = 4096 * 32
# k8s.io/apimachinery/pkg/api/validation/objectmeta.go: TotalAnnotationSizeLimitB.
MAX_ANNOTATIONS_BYTES = 256 * 1024

NAME_RE = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
_LENGTH = (f"metadata.name must be at most {DNS_LABEL_MAX} characters: it is the value of the label {PROJECT_LABEL} "
           f"on every child, and Kubernetes label values are at most {DNS_LABEL_MAX} characters")
_SYNTAX_WHY = ("' must start with a lowercase letter and contain only lowercase letters, digits and '-' (no '.'): "
               "it names the project's Services, whose names may not contain dots (and on many clusters must start "
               "with a letter)")


def _cel(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# The same two rules as CEL on the CRD's root (crd.py), worded alike: the API server rejects such a name at apply.
NAME_RULES = [
    {
        "rule": f"self.metadata.name.size() <= {DNS_LABEL_MAX}",
        "message": _LENGTH,  # no count: string(int) in a messageExpression is priced far over the CEL budget
        "reason": "FieldValueInvalid",
        "fieldPath": ".metadata.name",
    },
    {
        "rule": f"self.metadata.name.matches({_cel(NAME_RE)})",
        "messageExpression": f"\"metadata.name '\" + self.metadata.name + {_cel(_SYNTAX_WHY)}",
        "reason": "FieldValueInvalid",
        "fieldPath": ".metadata.name",
    },
]


def name_problems(name: str) -> list[str]:
    """What is wrong with a project name for the children it names, in the CRD rules' words."""
    problems = []
    if len(name) > DNS_LABEL_MAX:
        problems.append(_LENGTH)
    if not re.fullmatch(NAME_RE, name):
        problems.append(f"metadata.name '{name}{_SYNTAX_WHY}")
    return problems


def env_string_bytes(name: str, value: str) -> int:
    """What one variable costs against MAX_ARG_STRLEN: "NAME=value" in UTF-8 plus the terminating NUL."""
    return len(name.encode()) + 1 + len(value.encode()) + 1


def _annotation_bytes(annotations: dict[str, str] | None) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in (annotations or {}).items())


def _pod_template(obj: Obj) -> Obj | None:
    return (obj.get("spec") or {}).get("template")


def child_problems(children: list[Obj]) -> list[str]:
    """Limits the rendered children exceed, each named with the variable or annotation set and how to fix it."""
    problems: list[str] = []
    seen: set[str] = set()

    def add(text: str) -> None:
        if text not in seen:  # the web Deployment and the populate Job share one env: say it once
            seen.add(text)
            problems.append(text)

    for obj in children:
        what = f"{obj['kind']} {obj['metadata']['name']}"
        size = _annotation_bytes(obj["metadata"].get("annotations"))
        if size > MAX_ANNOTATIONS_BYTES:
            add(f"the annotations of {what} total {size} bytes, over the API server's limit of "
                f"{MAX_ANNOTATIONS_BYTES} (256 KiB): shorten spec.ingress.annotations")
        template = _pod_template(obj)
        if template is None:
            continue
        size = _annotation_bytes((template.get("metadata") or {}).get("annotations"))
        if size > MAX_ANNOTATIONS_BYTES:
            add(f"the pod annotations of {what} total {size} bytes, over the API server's limit of "
                f"{MAX_ANNOTATIONS_BYTES} (256 KiB): shorten spec.podAnnotations (and populate/migrate.podAnnotations)")
        for container in (template.get("spec") or {}).get("containers") or []:
            for var in container.get("env") or []:
                value = var.get("value")
                if not isinstance(value, str):
                    continue
                size = env_string_bytes(var["name"], value)
                if size > MAX_ARG_STRLEN:
                    add(f"environment variable {var['name']} would be {size} bytes (with its name and NUL), over "
                        f"Linux's limit of {MAX_ARG_STRLEN} bytes for one environment string (MAX_ARG_STRLEN): the "
                        f"container could not start. {_env_fix(var['name'])}")
    return problems


def checked(children: list[Obj], memo: dict[str, Any]) -> list[str]:
    """child_problems, worked out once for the same rendered objects (memo: rendered.RenderCache.memo); the
    objects are held with the answer, so their ids cannot be reused by others meanwhile."""
    ids = tuple(map(id, children))
    seen = memo.get("limits")
    if seen is None or seen[0] != ids:
        seen = memo["limits"] = (ids, children, child_problems(children))
    return list(seen[2])


def _env_fix(name: str) -> str:
    if name in ("DJANGO_MULTISITE_PLUS_SITES", "ALLOWED_HOSTS"):
        return ("It grows with every site and domain: split the sites over several projects, or use fewer or shorter "
                "names and domains")
    return f"Shorten spec.env's {name}"
