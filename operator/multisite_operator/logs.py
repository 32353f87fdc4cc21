"""Logging for `multisite-operator run`: readable lines by default, one JSON object per line with --log-format json.

JSON lines are what log pipelines (Loki, Elasticsearch, Cloud Logging) index without parsing rules; every record
goes through the root handler here, kopf's and the Kubernetes client's included, so no line escapes the format.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

# Records that are not ours to print in full unless asked (--verbose).
QUIET = {"urllib3": logging.WARNING, "kubernetes": logging.WARNING, "aiohttp.access": logging.WARNING}


class JsonFormatter(logging.Formatter):
    """time (UTC, ISO 8601), level, logger, message; `object` for kopf's per-object records; `exc` for tracebacks."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ref = getattr(record, "k8s_ref", None)  # kopf's ObjectLogger puts the object it is about here
        if isinstance(ref, dict) and ref.get("name"):
            data["object"] = {k: ref[k] for k in ("kind", "namespace", "name") if ref.get(k)}
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            data["stack"] = record.stack_info
        return json.dumps(data, ensure_ascii=False, default=str)


def configure(log_format: str, verbose: bool) -> None:
    """Install one stderr handler on the root logger, replacing any other (kopf adds none when embedded)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    logging.captureWarnings(True)  # warnings.warn() output becomes a record in the same format
    if not verbose:
        for name, level in QUIET.items():
            logging.getLogger(name).setLevel(level)
        # kopf logs every handled event ("Handler 'child_event' succeeded"): thousands of lines at scale.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
