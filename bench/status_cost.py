#!/usr/bin/env python3
"""What one status write of a large project costs the API server, by what the patch carries.

    .venv/bin/python bench/status_cost.py [--sites 1000] [--repeats 7]

Converges one shared project of N sites with the operator (as bench/run.py does), stops the operator, then times
merge patches of the status subresource sent from here: the whole status with one message changed, the conditions
alone, and the conditions alone once status.sites is gone. Each time is one request, from send to response.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests"), str(HERE.parent / "operator")]

from kubernetes import client  # noqa: E402

import apicount  # noqa: E402
import scenarios  # noqa: E402
from controlplane.cluster import ControlPlane  # noqa: E402
from multisite_operator.models import GROUP, PLURAL, VERSION  # noqa: E402
from run import CRD_FILE, install_crd  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sites", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--crd", type=Path, default=CRD_FILE, help="what-if: install this CRD instead of the committed one")
    args = p.parse_args()
    cp = ControlPlane()
    cp.start()
    try:
        api = cp.api_client()
        install_crd(cp, args.crd)
        workdir = Path(tempfile.mkdtemp(prefix="multisite-status-cost-"))
        env = scenarios.Env(api=api, admin_kubeconfig=cp.kubeconfig,
                            operator_kubeconfig=apicount.operator_identity(cp, api, workdir / "op.kubeconfig", False),
                            kubectl=cp.kubectl, workdir=workdir, profile=False, trace=False, operator_env={})
        run = scenarios.converge_operator(env, args.sites)
        run.pop("op").stop()
        ns = run["namespace"]
        url = f"{api.configuration.host}/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}/{scenarios.PROJECT}"
        status = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, scenarios.PROJECT)["status"]
        print(f"{args.sites} sites: status {len(json.dumps(status)) / 1e3:.0f} KB; project converged in "
              f"{run['seconds']:.2f} s")

        def timed(label: str, body: dict[str, Any], repeats: int) -> None:
            seconds = []
            for i in range(repeats):
                patch = copy.deepcopy(body)
                if "conditions" in patch["status"]:
                    patch["status"]["conditions"][0]["message"] = f"status cost {i} {time.time()}"
                t0 = time.monotonic()
                resp = api.rest_client.request("PATCH", url + "/status", body=patch,
                                               headers={"Content-Type": "application/merge-patch+json"})
                seconds.append(time.monotonic() - t0)
                assert resp.status == 200, resp.status
            print(f"  {label}: median {statistics.median(seconds) * 1000:.0f} ms "
                  f"({', '.join(f'{s * 1000:.0f}' for s in seconds)})")

        timed("whole status, one message changed", {"status": status}, args.repeats)
        timed("conditions alone", {"status": {"conditions": status["conditions"]}}, args.repeats)
        timed("status.sites removed", {"status": {"sites": None, "knownSites": None}}, 1)
        timed("conditions alone, no status.sites", {"status": {"conditions": status["conditions"]}}, args.repeats)
    finally:
        cp.stop()


if __name__ == "__main__":
    main()
