"""Secret values out of every message meant for status, Events or logs."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

_URL_CREDENTIALS = re.compile(r"(://[^/\s:@]+:)[^@\s/]+@")
_SECRET_QUERY_KEYS = re.compile(r"pass|secret|token|key|signature|credential", re.IGNORECASE)


def secret_parts(value: str) -> set[str]:
    """What to hide of a secret value: a DSN's password (plain and percent-encoded) and secret-looking query
    parameters, so "postgres://app:[redacted]@db:5432/app" keeps the host that helps debugging; any other value
    whole. A failing program prints the password on its own as often as the whole URL."""
    inner: set[str] = set()
    try:
        url = urlsplit(value.strip())
        if url.scheme and url.netloc:
            if url.password:
                inner |= {url.password, unquote(url.password)}
            for key, values in parse_qs(url.query).items():
                if _SECRET_QUERY_KEYS.search(key):
                    inner |= set(values)
    except ValueError:
        pass
    parts = inner or {value, value.strip()}
    return {p for p in parts if len(p) >= 4}


def redact(text: str, secrets: list[str]) -> str:
    """Remove every known secret value (and the password inside a DSN), and URL passwords in any case, from a
    message meant for status, Events or logs."""
    known = set().union(*(secret_parts(s) for s in secrets)) if secrets else set()
    for value in sorted(known, key=len, reverse=True):
        text = text.replace(value, "[redacted]")
    return _URL_CREDENTIALS.sub(r"\1[redacted]@", text)
