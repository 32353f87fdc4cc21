"""The five measurements of issue 7, each a function of a running private control plane returning plain data.

Every time is taken from the benchmark's side: from just before the request (or the kubectl process) that starts
the change, to the receipt of the watch event that shows the end point. Requests are counted by the API server
(see apicount.py), memory from the kernel (/proc/<pid>/status).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

import apicount
import machine
import projects
from multisite_operator.cli import dump_all
from operator_proc import BenchOperator
from tracker import Tracker, child, children_done, job_complete, project_ready, raw

Obj = dict[str, Any]
PROJECT = "bench"


@dataclass
class Env:
    """What every scenario needs: the admin client, kubeconfigs, kubectl and a scratch directory."""

    api: client.ApiClient
    admin_kubeconfig: str
    operator_kubeconfig: str
    kubectl: str
    workdir: Path
    profile: bool = False
    trace: bool = False
    operator_env: dict[str, str] = field(default_factory=dict)  # experiments, e.g. MALLOC_ARENA_MAX=2
    cluster_pids: dict[str, int] = field(default_factory=dict)  # control-plane components, for machine.CpuMeter
    _serial: int = 0

    def namespace(self, prefix: str) -> str:
        self._serial += 1
        return projects.create_namespace(self.api, f"{prefix}-{self._serial}")

    def operator(self, namespaces: list[str], label: str, extra: list[str] | None = None) -> BenchOperator:
        prof = self.workdir / f"profile-{label}.txt" if self.profile else None
        trace = self.workdir / f"trace-{label}.jsonl" if self.trace else None
        return BenchOperator(self.operator_kubeconfig, namespaces, self.workdir / f"operator-{label}.log", prof, trace,
                             self.operator_env, extra)


def timeout_for(sites: int, mode: str) -> float:
    return 120 + (sites * (0.6 if mode == "multi-project" else 0.05))


# --- 1 and 5: convergence against kubectl, and growth with sites ---------------------------------------------------
def converge_operator(env: Env, sites: int, mode: str = "shared", replicas: int = 2) -> dict[str, Any]:
    """A fresh operator (scoped to a fresh namespace) and one project of ``sites`` sites: create to Ready."""
    ns = env.namespace(f"op-{mode[:5]}-{sites}")
    doc = projects.project(PROJECT, ns, sites, mode=mode, replicas=replicas)
    _, objs = projects.render(doc, ns, env.workdir)
    op = env.operator([ns], ns).start_and_watch(env.api)
    try:
        mem_idle, cpu_idle = op.memory_kib(), op.cpu_seconds()
        with Tracker(env.api, ns) as tr:
            before = apicount.Snapshot.take(env.api)
            meter = machine.CpuMeter(env.cluster_pids)
            t0 = time.monotonic()
            try:
                projects.create(env.api, doc)
                created = time.monotonic() - t0  # the API server's write of the project itself: kubectl has none
            except ApiException as exc:
                if exc.status != 422:
                    raise
                # The API server refused the project (e.g. a CEL rule over its cost limit): that is the result.
                op.stop()
                return {"namespace": ns, "sites": sites, "mode": mode, "seconds": None, "children": len(objs),
                        "rejected": json.loads(exc.body).get("message", str(exc))[:600], "op": op}
            expected = projects.expected_children(objs)
            marks: dict[str, float] = {}

            def ready(o: dict[str, dict[str, Obj]]) -> bool:
                # Milestones split the time: children created (operator), children done (cluster), Ready (operator).
                if "children_present" not in marks and all(child(o, k, n) is not None for k, n in expected):
                    marks["children_present"] = time.monotonic() - t0
                if "children_done" not in marks and children_done(expected)(o):
                    marks["children_done"] = time.monotonic() - t0
                return project_ready(o["msp"].get(PROJECT))

            try:
                t_ready = tr.wait(ready, timeout_for(sites, mode), "Ready")
                if op.trace_to is not None:
                    marks_abs = {"create": t0, **{k: t0 + v for k, v in marks.items()}, "ready": t_ready}
                    op.trace_to.with_suffix(".bench.json").write_text(json.dumps(marks_abs))
            except TimeoutError as exc:
                st = (tr.objects["msp"].get(PROJECT) or {}).get("status") or {}
                raise TimeoutError(f"{exc}; conditions: {st.get('conditions')}; log: {op.log()[-1500:]}") from None
            seconds = t_ready - t0
            # Separate watch streams are not ordered with each other: give ours a moment to catch up.
            try:
                tr.wait(children_done(expected), 10, "children done")
            except TimeoutError:
                missing = [c for c in expected if not children_done([c])(tr.objects)]
                raise AssertionError(f"Ready but children missing or not done: {missing[:5]}") from None
            mem, cpu = op.memory_kib(), op.cpu_seconds() - cpu_idle
            cluster_cpu = meter.used()
            requests = apicount.Snapshot.take(env.api).operator_since(before)
        return {"namespace": ns, "sites": sites, "mode": mode, "seconds": round(seconds, 3), "t0_monotonic": t0,
                "rss_idle_kib": mem_idle["VmRSS"], "rss_kib": mem["VmRSS"], "hwm_kib": mem["VmHWM"],
                "cpu_s": round(cpu, 2), "cluster_cpu_s": cluster_cpu, "requests": requests, "children": len(objs),
                "op": op,
                "milestones_s": {"project_created": round(created, 3), **{k: round(v, 3) for k, v in marks.items()}},
                "counters": op.counters()}
    except BaseException:
        op.stop()
        raise


def converge_kubectl(env: Env, sites: int, mode: str = "shared", replicas: int = 2) -> dict[str, Any]:
    """The baseline: `kubectl apply -f` of what `multisite-operator render` prints, to the same end point."""
    ns = env.namespace(f"kc-{mode[:5]}-{sites}")
    doc = projects.project(PROJECT, ns, sites, mode=mode, replicas=replicas)
    path, objs = projects.render(doc, ns, env.workdir)
    with Tracker(env.api, ns, ("deployments", "services", "ingresses", "jobs")) as tr:
        meter = machine.CpuMeter(env.cluster_pids)
        t0 = time.monotonic()
        kubectl_seconds = projects.kubectl_apply(env.kubectl, env.admin_kubeconfig, path)
        t_done = tr.wait(children_done(projects.expected_children(objs)), timeout_for(sites, mode), "children done")
        cluster_cpu = meter.used()
    return {"namespace": ns, "sites": sites, "mode": mode, "seconds": round(max(t_done - t0, kubectl_seconds), 3),
            "kubectl_exit_seconds": round(kubectl_seconds, 3), "children": len(objs), "cluster_cpu_s": cluster_cpu}


def release_stages(objs: list[Obj]) -> list[list[Obj]]:
    """The rendered objects in the order the operator's gate keeps (migrate, then populate, then the web pods):
    the migration Job with everything that runs no code (Services, Ingress, routes), the populate Job, the rest."""
    def component(o: Obj) -> str:
        return ((o.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component", "")

    first = [o for o in objs if o["kind"] not in ("Job", "Deployment") or component(o) == "migrate"]
    populate = [o for o in objs if o["kind"] == "Job" and component(o) != "migrate"]
    rest = [o for o in objs if o["kind"] == "Deployment"]
    return [stage for stage in (first, populate, rest) if stage]


def apply_in_order(env: Env, ns: str, stem: str, objs: list[Obj], timeout: float) -> dict[str, Any]:
    """kubectl apply of `objs` stage by stage (release_stages), each stage once the Jobs of the one before
    succeeded (seen on a watch, as fast as any script could know; `kubectl wait` would add a process per stage),
    to every child done. Stage files are written before the clock starts (render time is not counted either)."""
    stages = release_stages(objs)
    files = []
    for i, stage in enumerate(stages):
        f = env.workdir / f"{stem}.stage{i}.yaml"
        f.write_text(dump_all(stage))  # the operator's own dumper: quotes digests a YAML 1.2 reader takes for numbers
        files.append(f)
    kubectl_total, marks = 0.0, {}
    with Tracker(env.api, ns, ("deployments", "services", "ingresses", "jobs")) as tr:
        meter = machine.CpuMeter(env.cluster_pids)
        t0 = time.monotonic()
        for i, (stage, f) in enumerate(zip(stages, files)):
            kubectl_total += projects.kubectl_apply(env.kubectl, env.admin_kubeconfig, f)
            marks[f"stage{i}_applied"] = time.monotonic() - t0
            jobs = [(o["kind"], o["metadata"]["name"]) for o in stage if o["kind"] == "Job"]
            if jobs and stage is not stages[-1]:
                tr.wait(children_done(jobs), timeout, f"stage {i} Jobs done")
                marks[f"stage{i}_jobs_done"] = time.monotonic() - t0
        t_done = tr.wait(children_done(projects.expected_children(objs)), timeout, "children done") - t0
        cluster_cpu = meter.used()
    return {"seconds": t_done, "kubectl_seconds": kubectl_total, "stages": len(stages), "cluster_cpu_s": cluster_cpu,
            "milestones_s": {k: round(v, 2) for k, v in marks.items()}}


def converge_kubectl_ordered(env: Env, sites: int, mode: str = "shared", replicas: int = 2) -> dict[str, Any]:
    """The fair baseline: a script that applies the same objects in the safe order (apply_in_order). Applying
    everything at once, as the plain baseline does, populates a database before its migration ran: the defect the
    gate exists for."""
    ns = env.namespace(f"ko-{mode[:5]}-{sites}")
    doc = projects.project(PROJECT, ns, sites, mode=mode, replicas=replicas)
    path, objs = projects.render(doc, ns, env.workdir)
    run = apply_in_order(env, ns, path.stem, objs, timeout_for(sites, mode))
    return {"namespace": ns, "sites": sites, "mode": mode, "seconds": round(run["seconds"], 3),
            "kubectl_exit_seconds": round(run["kubectl_seconds"], 3), "children": len(objs), "stages": run["stages"],
            "cluster_cpu_s": run["cluster_cpu_s"]}


def convergence(env: Env, sizes: list[int], repeats: int, multi: dict[int, int],
                on_operator=None) -> dict[str, Any]:
    """Operator and kubectl alternate (which goes first flips every repeat), each in its own namespace. `multi`
    maps the multi-project sizes to their repeats."""
    runs: list[dict[str, Any]] = []
    cases = [(n, "shared", 2, repeats) for n in sizes] + [(n, "multi-project", 1, r) for n, r in multi.items()]
    for rep in range(max((r for *_, r in cases), default=0)):
        for n, mode, replicas, reps in cases:
            if rep >= reps:
                continue
            order = ("operator", "kubectl", "ordered") if rep % 2 == 0 else ("ordered", "kubectl", "operator")
            for who in order:
                if who == "operator":
                    r = converge_operator(env, n, mode, replicas)
                    op = r.pop("op")
                    try:
                        if on_operator:
                            on_operator(r, op)
                    finally:
                        op.stop()
                elif who == "kubectl":
                    r = converge_kubectl(env, n, mode, replicas)
                else:
                    r = converge_kubectl_ordered(env, n, mode, replicas)
                r.update(who=who, repeat=rep)
                runs.append(r)
                print(f"  convergence {mode} N={n} {who}: "
                      + (f"{r['seconds']:.2f} s" if r["seconds"] is not None else f"REJECTED {r['rejected'][:200]}"),
                      flush=True)
    summary = []
    for n, mode, *_ in cases:
        op = [r["seconds"] for r in runs if r["who"] == "operator" and r["sites"] == n and r["mode"] == mode]
        kc = [r["seconds"] for r in runs if r["who"] == "kubectl" and r["sites"] == n and r["mode"] == mode]
        rejected = next((r["rejected"] for r in runs if r.get("rejected") and r["sites"] == n and r["mode"] == mode),
                        None)
        ko = [r["seconds"] for r in runs if r["who"] == "ordered" and r["sites"] == n and r["mode"] == mode]
        o = statistics.median(x for x in op if x is not None) if None not in op else None
        k, kord = statistics.median(kc), statistics.median(ko)
        summary.append({"mode": mode, "sites": n, "operator_s": o, "kubectl_s": k, "ordered_s": kord,
                        "operator_range": [min(x for x in op if x is not None), max(x for x in op if x is not None)]
                        if o is not None else None, "kubectl_range": [min(kc), max(kc)],
                        "ordered_range": [min(ko), max(ko)],
                        "ratio": round(o / k, 2) if o is not None else None,
                        "ratio_ordered": round(o / kord, 2) if o is not None else None,
                        "runs": len(op), "rejected": rejected,
                        "project_created_s": statistics.median(
                            [r["milestones_s"]["project_created"] for r in runs if r["who"] == "operator"
                             and r["sites"] == n and r["mode"] == mode and "milestones_s" in r] or [0])})
    return {"summary": summary, "runs": runs}


def growth(runs: list[dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    """Least-squares slopes of time to Ready and of the operator's memory over sites per project (shared mode)."""
    pts = []
    for n in sizes:
        rs = [r for r in runs if r["who"] == "operator" and r["mode"] == "shared" and r["sites"] == n
              and r["seconds"] is not None]
        if rs:
            pts.append({"sites": n, "seconds": statistics.median(r["seconds"] for r in rs),
                        "rss_kib": statistics.median(r["rss_kib"] for r in rs),
                        "rss_growth_kib": statistics.median(r["rss_kib"] - r["rss_idle_kib"] for r in rs),
                        "hwm_kib": max(r["hwm_kib"] for r in rs),
                        "requests": sum(rs[0]["requests"].values())})

    def slope(key: str) -> float:
        xs, ys = [p["sites"] for p in pts], [p[key] for p in pts]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)

    if len(pts) < 2:
        return {"points": pts, "ms_per_site": None, "kib_per_site": None, "hwm_kib_per_site": None}
    return {"points": pts, "ms_per_site": round(slope("seconds") * 1000, 3),
            "kib_per_site": round(slope("rss_kib"), 2), "hwm_kib_per_site": round(slope("hwm_kib"), 2)}


def admission(env: Env) -> dict[str, Any]:
    """The largest project the API server admits (server-side dry run, so the CRD's CEL rules run), up to the
    models' MAX_SITES, with sites that each have a live alias and a redirect. A CEL rule over its cost budget
    rejects big projects that the schema promises to accept."""
    from multisite_operator.models import MAX_SITES

    ns = env.namespace("admission")

    def admitted(n: int) -> str | None:
        doc = projects.project("big", ns, n)
        for s in doc["spec"]["sites"]:
            s["live"].update(aliases=[f"www.{s['live']['domain']}"], redirects=[f"old.{s['live']['domain']}"])
        try:
            raw(env.api, "POST", f"/apis/multisite.dev/v1alpha1/namespaces/{ns}/multisiteprojects",
                query=[("dryRun", "All")], body=doc)
            return None
        except ApiException as exc:
            if exc.status != 422:
                raise
            return json.loads(exc.body).get("message", "")[-300:]

    t0 = time.monotonic()
    problem = admitted(MAX_SITES)
    seconds = time.monotonic() - t0
    if problem is None:
        return {"max_sites": MAX_SITES, "largest_admitted": MAX_SITES, "dry_run_seconds": round(seconds, 2)}
    lo, hi = 1, MAX_SITES  # admitted(lo), not admitted(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if admitted(mid) is None else (lo, mid)
    return {"max_sites": MAX_SITES, "largest_admitted": lo, "rejection": problem}


# --- 2: edit latency -----------------------------------------------------------------------------------------------
def edit_latency(env: Env, ns: str, op: BenchOperator, edits: int = 20, sites: int = 100) -> dict[str, Any]:
    """Add one test-environment alias to a different site each time; time to the Ingress rule, and to Ready.

    The floor of the same edit, measured in the same minute: the API server's write of the project (the PATCH's
    round trip, which the operator cannot shorten) plus a person adding the host to an Ingress of the same size
    directly (`edit_floor`)."""
    to_ingress, to_ready, patch = [], [], []
    path = f"/apis/multisite.dev/v1alpha1/namespaces/{ns}/multisiteprojects/{PROJECT}"
    with Tracker(env.api, ns, ("msp", "ingresses")) as tr:
        for k in range(edits):
            host = f"alias{k}.{ns}.example.org"

            def routed(o: dict[str, dict[str, Obj]], host: str = host) -> bool:
                return routes(o["ingresses"].get(PROJECT), host)

            t0 = time.monotonic()
            raw(env.api, "PATCH", path, content_type="application/json-patch+json",
                body=[{"op": "add", "path": f"/spec/sites/{k}/test", "value": {"aliases": [host]}}])
            patch.append(time.monotonic() - t0)
            to_ingress.append(tr.wait(routed, 60, f"Ingress rule for {host}") - t0)
            to_ready.append(tr.wait(lambda o: project_ready(o["msp"].get(PROJECT)), 120, "Ready after edit") - t0)
        ingress_write = edit_floor(env, ns, tr, edits)
    floor = [a + b for a, b in zip(patch, ingress_write)]
    return {"edits": edits, "sites": sites, "ingress_s": [round(x, 3) for x in to_ingress],
            "ready_s": [round(x, 3) for x in to_ready], "median_s": round(statistics.median(to_ingress), 3),
            "p95_s": round(percentile(to_ingress, 95), 3), "ready_median_s": round(statistics.median(to_ready), 3),
            "project_write_median_s": round(statistics.median(patch), 3),
            "ingress_write_median_s": round(statistics.median(ingress_write), 3),
            "floor_median_s": round(statistics.median(floor), 3),
            "op_counters": op.counters()}


def routes(ingress: Obj | None, host: str) -> bool:
    return bool(ingress) and any(r.get("host") == host for r in ingress["spec"].get("rules") or [])


def edit_floor(env: Env, ns: str, tr: Tracker, edits: int) -> list[float]:
    """Seconds from a JSON patch adding one host to an Ingress as large as the project's, to the watch event that
    shows it: what the edit costs when a person edits the Ingress itself. The copy's hosts are renamed, or the
    operator would rightly refuse the project's domains as served by an Ingress it does not manage."""
    spec = json.loads(json.dumps(tr.objects["ingresses"][PROJECT]["spec"]))
    for rule in spec.get("rules") or []:
        rule["host"] = f"floor-{rule['host']}"
    for tls in spec.get("tls") or []:
        tls["hosts"] = [f"floor-{h}" for h in tls.get("hosts") or []]
    name = f"{PROJECT}-floor"
    base = f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses"
    raw(env.api, "POST", base, body={"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                                     "metadata": {"name": name}, "spec": spec})
    try:
        times = []
        for k in range(edits):
            host = f"floor-alias{k}.{ns}.example.org"
            rule = {"host": host, "http": spec["rules"][0]["http"]}
            t0 = time.monotonic()
            raw(env.api, "PATCH", f"{base}/{name}", content_type="application/json-patch+json",
                body=[{"op": "add", "path": "/spec/rules/-", "value": rule}])
            times.append(tr.wait(lambda o, host=host: routes(o["ingresses"].get(name), host), 60,
                                 f"floor Ingress rule {host}") - t0)
        return times
    finally:
        raw(env.api, "DELETE", f"{base}/{name}")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (for 20 values, p95 is the 19th smallest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


# --- 4 then 3: scale, and the idle cost of the operator that holds it ---------------------------------------------
def scale_kubectl_ordered(env: Env, projects_n: int = 200, sites: int = 20) -> dict[str, Any]:
    """The scale run's floor: the same projects' rendered objects applied by kubectl in the safe order, every
    project's stage at once (release_stages: the migration Jobs with Services and Ingresses, then the populate
    Jobs, then the Deployments), each stage once the Jobs before it succeeded (seen on a watch). No operator runs:
    what remains is the cluster's own time (the Job controller, kwok) plus kubectl's writes."""
    ns = env.namespace("scale-kc")
    docs = [projects.project(f"p{i:03d}", ns, sites, replicas=1) for i in range(projects_n)]
    src = env.workdir / f"{ns}.msp.yaml"
    src.write_text(yaml.safe_dump_all(docs))
    _, objs = projects.render_file(src, ns)
    run = apply_in_order(env, ns, ns, objs, 600)
    return {"projects": projects_n, "sites": sites, "namespace": ns, "seconds": round(run["seconds"], 2),
            "milestones_s": run["milestones_s"], "cluster_cpu_s": run["cluster_cpu_s"]}



def scale(env: Env, projects_n: int = 200, sites: int = 20, idle_seconds: float = 60,
          touches: int = 20) -> dict[str, Any]:
    """``projects_n`` shared projects created while no operator runs; then the operator starts, cluster-wide with
    leader election as deployed (so this runs first, while no other namespace holds projects)."""
    ns = env.namespace("scale")
    docs = [projects.project(f"p{i:03d}", ns, sites, replicas=1) for i in range(projects_n)]
    for doc in docs:
        projects.create(env.api, doc)
    names = [d["metadata"]["name"] for d in docs]
    # As deploy/deployment.yaml runs it: every namespace, leader election on (so the idle figures include its
    # Lease renewals, counted apart).
    op = env.operator([], "scale", ["--leader-elect"])
    result: dict[str, Any] = {"projects": projects_n, "sites": sites, "namespace": ns}
    try:
        with Tracker(env.api, ns, ("msp", "deployments", "jobs", "ingresses")) as tr:
            before = apicount.Snapshot.take(env.api)
            meter = machine.CpuMeter(env.cluster_pids)
            t0 = time.monotonic()
            op.start()
            t_started = time.monotonic() - t0
            marks: dict[str, float] = {}

            def all_ready(o: dict[str, dict[str, Obj]]) -> bool:
                for key, done in (
                    ("children_applied", lambda: len(o["deployments"]) >= projects_n and len(o["jobs"]) >= projects_n
                     and len(o["ingresses"]) >= projects_n),
                    ("deployments_available", lambda: sum(children_done([("Deployment", f"{n}-web")])(o)
                                                          for n in names) >= projects_n),
                    # Two Jobs per shared project: the migration, then the populate Job (modes/gate.py).
                    ("jobs_complete", lambda: sum(1 for j in o["jobs"].values() if job_complete(j)) >= 2 * projects_n),
                ):
                    if key not in marks and done():
                        marks[key] = time.monotonic() - t0
                ready = sum(project_ready(o["msp"].get(n)) for n in names)
                for key, count in (("first_ready", 1), ("half_ready", (projects_n + 1) // 2)):
                    if key not in marks and ready >= count:
                        marks[key] = time.monotonic() - t0
                return ready == projects_n

            # A user's edit while the operator works through the start-up backlog: the last project listed gets
            # an alias as soon as the first Ingress exists; time from the PATCH to that host in its Ingress.
            tr.wait(lambda o: all_ready(o) or len(o["ingresses"]) >= 1, 600, "a first Ingress")
            result["edit_during_startup"] = edit_during_startup(env, tr, ns, names[-1], all_ready, names, t0)
            print(f"  edit during start-up: {result['edit_during_startup']['ingress_s']} s to its Ingress "
                  f"({result['edit_during_startup']['ready_at_edit']} projects Ready at the edit)", flush=True)
            t_ready = tr.wait(all_ready, 600, f"{projects_n} projects Ready") - t0
            after = apicount.Snapshot.take(env.api)
            mem = op.memory_kib()
            result["cpu_s"] = op.cpu_seconds()
            result["cluster_cpu_s"] = meter.used()
            reqs = after.operator_since(before)
            total = apicount.operator_total(reqs)
            result.update({
                "seconds": round(t_ready, 2), "operator_started_s": round(t_started, 2),
                "milestones_s": {k: round(v, 2) for k, v in marks.items()},
                "hwm_kib": mem["VmHWM"], "rss_kib": mem["VmRSS"], "requests": reqs, "requests_total": total,
                "requests_per_s": round(total / t_ready, 1),
                "writes_per_s": round(apicount.operator_total(reqs, apicount.WRITE_VERBS) / t_ready, 1),
                "op_counters": op.counters(),
            })
            if env.operator_env.get("MULTISITE_TRACEMALLOC"):  # diagnosis only: dump Python allocations now
                os.kill(op.proc.pid, signal.SIGUSR1)
            print(f"  scale: {projects_n}x{sites} Ready in {t_ready:.1f} s, peak RSS {mem['VmHWM'] / 1024:.0f} MiB",
                  flush=True)
            # Quiet: the last rollout's echoes (status of a Deployment, the last events) settle first.
            tr.wait(lambda o: time.monotonic() - tr.last_event > 5, 120, "5 s without events")
            result["idle"] = idle(env, op, idle_seconds)
            print(f"  idle: operator writes in {idle_seconds:g} s: {result['idle']['operator_writes']}", flush=True)
            result["unchanged"] = unchanged(env, op, ns, names[:touches])
            print(f"  unchanged reconcile: {result['unchanged']['requests_per_reconcile']} requests each", flush=True)
    finally:
        op.stop()
    return result


def edit_during_startup(env: Env, tr: Tracker, ns: str, name: str, progress: Any, names: list[str],
                        t_start: float) -> dict[str, Any]:
    """Add an alias to `name` (last in the backlog) now; seconds until its Ingress routes it. `progress` keeps the
    caller's milestones up to date while this waits."""
    host = f"edit-during-startup.{name}.{ns}.example.org"

    def routed(o: dict[str, dict[str, Obj]]) -> bool:
        progress(o)
        ing = o["ingresses"].get(name)
        return bool(ing) and any(r.get("host") == host for r in ing["spec"].get("rules") or [])

    ready_at_edit = sum(project_ready(tr.objects["msp"].get(n)) for n in names)
    ingresses_at_edit = len(tr.objects["ingresses"])
    t0 = time.monotonic()
    raw(env.api, "PATCH", f"/apis/multisite.dev/v1alpha1/namespaces/{ns}/multisiteprojects/{name}",
        content_type="application/json-patch+json",
        body=[{"op": "add", "path": "/spec/sites/0/test", "value": {"aliases": [host]}}])
    seconds = tr.wait(routed, 600, f"Ingress rule for {host}") - t0
    return {"project": name, "edit_at_s": round(t0 - t_start, 2), "ingress_s": round(seconds, 3),
            "ready_at_edit": ready_at_edit, "ingresses_at_edit": ingresses_at_edit}


def idle(env: Env, op: BenchOperator, seconds: float) -> dict[str, Any]:
    """Nothing changes for ``seconds``: the operator's requests by verb, and every client's writes for context."""
    c0, before = op.counters(), apicount.Snapshot.take(env.api)
    time.sleep(seconds)
    after, c1 = apicount.Snapshot.take(env.api), op.counters()
    reqs = after.operator_since(before)
    return {"seconds": seconds, "operator_requests": reqs,
            "operator_writes": apicount.operator_total(reqs, apicount.WRITE_VERBS),
            "reconciles": {k: c1.get(k, 0) - c0.get(k, 0) for k in c1 if c1.get(k, 0) != c0.get(k, 0)},
            "all_clients_writes": after.writes_since(before)}


def unchanged(env: Env, op: BenchOperator, ns: str, names: list[str]) -> dict[str, Any]:
    """Touch an annotation of each project (no spec change): each causes one reconcile that should change nothing."""
    c0, before = op.counters(), apicount.Snapshot.take(env.api)
    total0 = sum(v for k, v in c0.items() if k.startswith("reconciles_"))
    for i, name in enumerate(names):
        raw(env.api, "PATCH", f"/apis/multisite.dev/v1alpha1/namespaces/{ns}/multisiteprojects/{name}",
            content_type="application/merge-patch+json", body={"metadata": {"annotations": {"bench/touch": str(i)}}})

    def settled() -> dict[str, float] | None:
        c = op.counters()
        return c if sum(v for k, v in c.items() if k.startswith("reconciles_")) - total0 >= len(names) else None

    deadline = time.monotonic() + 60
    while not settled():
        if time.monotonic() > deadline:
            raise TimeoutError("reconciles after touches did not happen")
        time.sleep(0.2)
    time.sleep(2)  # anything a reconcile triggers in turn
    after, c1 = apicount.Snapshot.take(env.api), op.counters()
    reqs = after.operator_since(before)
    reconciles = {k: c1.get(k, 0) - c0.get(k, 0) for k in c1 if k.startswith("reconciles_") and c1[k] != c0.get(k, 0)}
    n = sum(reconciles.values())
    # Timed rechecks fall into the window too: each project's Secrets every --secret-recheck-seconds (60 s;
    # rotation.py) with a reconcile of its own, and the operator-wide CRD list. They are counted apart: the measure
    # is what a reconcile of an unchanged project asks for.
    secret_reads = reqs.get("secrets", 0)
    rest = apicount.operator_total(reqs, apicount.VERBS) - reqs.get("list", 0)
    total = rest + reqs.get("list", 0) + secret_reads
    return {"touches": len(names), "reconciles": reconciles, "operator_requests": reqs,
            "writes": apicount.operator_total(reqs, apicount.WRITE_VERBS), "secret_reads": secret_reads,
            "requests_per_reconcile": round(total / n, 2) if n else None,
            "requests_per_reconcile_apart_from_rechecks": round(rest / n, 2) if n else None}
