#!/usr/bin/env python3
"""Print one traced operator run (`bench/run.py --trace`) as a timeline relative to the project's creation.

    .venv/bin/python bench/timeline.py WORKDIR/trace-op-share-1000-1.jsonl

Lines: the benchmark's milestones (create, children present/done, Ready seen), each trigger, each reconcile (start,
end, CPU seconds, writes) and each API request (method, object, duration).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def short(path: str) -> str:
    """/apis/apps/v1/namespaces/ns/deployments/x -> deployments/x (status subresource kept)."""
    m = re.search(r"/namespaces/[^/]+/(.+)$", path)
    return m.group(1) if m else path


def main(trace: str) -> None:
    marks = json.loads(Path(trace).with_suffix(".bench.json").read_text())
    t0 = marks["create"]
    rows: list[tuple[float, str]] = [(t - t0, f"BENCH {k}") for k, t in marks.items()]
    for line in Path(trace).read_text().splitlines():
        r = json.loads(line)
        if r["ev"] == "trigger":
            rows.append((r["t"] - t0, f"  trigger {r['name']}"))
        elif r["ev"] == "reconcile":
            rows.append((r["t0"] - t0, "  reconcile start"))
            rows.append((r["t1"] - t0, f"  reconcile end ({(r['t1'] - r['t0']) * 1000:.0f} ms, cpu "
                                       f"{r['cpu'] * 1000:.0f} ms, writes {r['writes']})"))
        elif r["ev"] == "request":
            rows.append((r["t0"] - t0, f"    {r['method']} {short(r['path'])} {(r['t1'] - r['t0']) * 1000:.0f} ms"))
    for t, text in sorted(rows):
        if t >= -0.5:
            print(f"{t:8.3f}  {text}")


if __name__ == "__main__":
    main(sys.argv[1])
