#!/usr/bin/env python3
"""The benchmark suite of issue 7 (`make bench`): convergence against kubectl, edit latency, idle cost, scale and
growth with sites, on a private control plane started for the run and stopped at the end.

Why a private control plane: the suite loads two cores for minutes and creates hundreds of namespaces' worth of
objects; it must neither disturb the shared cluster other developers' tests use nor be disturbed by them.

    .venv/bin/python bench/run.py                       # everything; writes bench/results.json and RESULTS.md
    .venv/bin/python bench/run.py --only convergence    # one part (results.json/RESULTS.md are not touched)
    .venv/bin/python bench/run.py --profile             # run the operators under pyinstrument (profiles in workdir)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]

from controlplane.cluster import ControlPlane  # noqa: E402
from harness.cluster import install_crd as harness_install_crd  # noqa: E402

import apicount  # noqa: E402
import machine  # noqa: E402
import report  # noqa: E402
import scenarios  # noqa: E402

# Scale runs first: its operator runs cluster-wide (as deployed), so no other namespace may hold projects yet.
# Growth comes from the convergence runs, idle from the scale run.
PARTS = ("scale", "convergence", "edit")
CRD_FILE = ROOT / "crds" / "multisiteprojects.yaml"


def install_crd(cp: ControlPlane, path: Path = CRD_FILE) -> None:
    harness_install_crd(cp.api_client(), path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--only", action="append", choices=PARTS, help="run only this part (repeatable)")
    p.add_argument("--sizes", default="3,10,100,1000", help="sites per project for convergence/growth (shared)")
    p.add_argument("--multi", default="100,1000",
                   help="sites per project for multi-project convergence ('' to skip)")
    p.add_argument("--repeats", type=int, default=5, help="repeats of each shared-mode convergence case")
    p.add_argument("--multi-repeats", default="3,1",
                   help="repeats of each multi-project convergence case, one per --multi size (the last one for the "
                        "rest): N=1000 takes ~5 minutes a repeat")
    p.add_argument("--edits", type=int, default=20)
    p.add_argument("--edit-sizes", default="100,1000",
                   help="sites of the shared projects whose edit latency is measured (each on its first operator run)")
    p.add_argument("--scale-projects", type=int, default=200)
    p.add_argument("--scale-sites", type=int, default=20)
    p.add_argument("--idle-seconds", type=float, default=60)
    p.add_argument("--profile", action="store_true", help="run operators under pyinstrument (text profiles)")
    p.add_argument("--trace", action="store_true",
                   help="record each operator's reconciles and requests on a timeline (see bench/timeline.py)")
    p.add_argument("--operator-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment of the operator processes, for experiments (repeatable)")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="first wait up to this long for the 1-minute load average to drop below 1")
    p.add_argument("--crd", type=Path, default=CRD_FILE,
                   help="what-if: install this CRD instead of the committed one (e.g. without some CEL rules)")
    p.add_argument("--grant-namespace-list", action="store_true",
                   help="also let the operator list/watch namespaces (for measuring operators older than this one)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (operator logs, rendered YAML)")
    p.add_argument("--out", type=Path, default=None,
                   help="results file (default bench/results.json, written only when every part ran)")
    args = p.parse_args(argv)
    parts = args.only or list(PARTS)
    sizes = [int(x) for x in args.sizes.split(",") if x]
    multi = [int(x) for x in args.multi.split(",") if x]
    given = [int(x) for x in args.multi_repeats.split(",") if x] or [1]
    multi_repeats = {n: given[min(i, len(given) - 1)] for i, n in enumerate(multi)}
    edit_sizes = [int(x) for x in args.edit_sizes.split(",") if x]

    if args.wait_quiet:
        print(f"waiting up to {args.wait_quiet:g} s for a quiet machine (load {machine.load1()})", flush=True)
        machine.wait_quiet(1.0, args.wait_quiet)
    started = time.monotonic()
    sampler = machine.LoadSampler()
    workdir = Path(tempfile.mkdtemp(prefix="multisite-bench-"))
    cp = ControlPlane()
    print(f"starting a private control plane ({cp.release}) in {cp.state_dir}", flush=True)
    cp.start()
    results: dict = {"machine": machine.describe(cp.release), "parts": parts, "load": {},
                     "command": " ".join(["bench/run.py", *(argv or sys.argv[1:])])}
    try:
        api = cp.api_client()
        install_crd(cp, args.crd)
        results["crd"] = str(args.crd.resolve().relative_to(ROOT) if args.crd.resolve().is_relative_to(ROOT) else args.crd)
        env = scenarios.Env(api=api, admin_kubeconfig=cp.kubeconfig,
                            operator_kubeconfig=apicount.operator_identity(
                                cp, api, workdir / "operator.kubeconfig", args.grant_namespace_list),
                            kubectl=cp.kubectl, workdir=workdir, profile=args.profile, cluster_pids=cp.pids(),
                            trace=args.trace, operator_env=dict(e.split("=", 1) for e in args.operator_env))

        if "scale" in parts:
            print(f"scale: {args.scale_projects} projects x {args.scale_sites} sites, then idle", flush=True)
            t_part = time.monotonic()
            results["scale"] = scenarios.scale(env, args.scale_projects, args.scale_sites, args.idle_seconds)
            print("scale floor: the same projects by kubectl in the safe order", flush=True)
            results["scale_floor"] = scenarios.scale_kubectl_ordered(env, args.scale_projects, args.scale_sites)
            print(f"  kubectl in the safe order: {results['scale_floor']['seconds']} s", flush=True)
            results["load"]["scale"] = sampler.summary(t_part)
        if "convergence" in parts:
            results["admission"] = scenarios.admission(env)
            print(f"admission: largest project admitted {results['admission']['largest_admitted']} sites "
                  f"(MAX_SITES {results['admission']['max_sites']})", flush=True)
        if "convergence" in parts or "edit" in parts:
            print("convergence (operator vs kubectl apply) and growth", flush=True)
            t_part = time.monotonic()

            def edit_on(run: dict, op) -> None:
                label = "edit" if run["sites"] == 100 else f"edit_{run['sites']}"
                if "edit" in parts and run["sites"] in edit_sizes and run["mode"] == "shared" and label not in results:
                    print(f"edit latency, {run['sites']} sites", flush=True)
                    # Half as many edits above 100 sites: each waits for a rollout of the big project (~5-10 s).
                    edits = args.edits if run["sites"] <= 100 else max(1, args.edits // 2)
                    results[label] = scenarios.edit_latency(env, run["namespace"], op, edits, run["sites"])
                    e = results[label]
                    print(f"  edit: median {e['median_s']} s, p95 {e['p95_s']} s; floor {e['floor_median_s']} s "
                          f"(project write {e['project_write_median_s']} s, Ingress write {e['ingress_write_median_s']} s)",
                          flush=True)

            if "convergence" in parts:
                conv = scenarios.convergence(env, sizes, args.repeats, multi_repeats,
                                             on_operator=edit_on)
                results["convergence"] = conv
                results["growth"] = scenarios.growth(conv["runs"], [n for n in sizes if n >= 10])
                results["load"]["convergence"] = sampler.summary(t_part)
            else:
                for n in edit_sizes:
                    r = scenarios.converge_operator(env, n)
                    op = r.pop("op")
                    try:
                        edit_on(r, op)
                    finally:
                        op.stop()
    finally:
        cp.stop()
        results["wall_seconds"] = round(time.monotonic() - started, 1)
        results["load"]["run"] = sampler.summary(started)
        if args.keep or args.profile or args.trace:
            print(f"work directory kept: {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)

    table = report.table(results)
    print(table)
    out = args.out or (HERE / "results.json" if set(parts) == set(PARTS) else None)
    if out:
        out.write_text(json.dumps(results, indent=1, default=str) + "\n")
        out.with_name("RESULTS.md" if out.name == "results.json" else out.stem + ".md").write_text(
            report.markdown(results, table))
        print(f"wrote {out} and its Markdown")
    print(f"total {results['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
