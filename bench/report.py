"""The table `make bench` prints, and bench/RESULTS.md (figures, targets, machine, date, command).

The analysis in RESULTS.md (why a figure is what it is, with profiles) is written by hand in bench/ANALYSIS.md and
included as is, so regenerating the figures never loses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ANALYSIS = HERE / "ANALYSIS.md"
MB = 1_000_000  # the targets are in MB


def _row(rows: list[list[str]], what: str, value: str, target: str = "", met: bool | None = None) -> None:
    rows.append([what, value, target, "" if met is None else ("yes" if met else "NO")])


SHORT = {"kube-apiserver": "apiserver", "kube-controller-manager": "controller-manager",
         "kube-scheduler": "scheduler"}


def cpu_split(run: dict[str, Any], own: float | None = None) -> str:
    """Where the machine's CPU went during one run (machine.CpuMeter), the client's own last: the operator's
    (`own`) or kubectl's."""
    cpu = dict(run.get("cluster_cpu_s") or {})
    if not cpu:
        return ""
    client = cpu.pop("kubectl", 0.0)
    parts = [f"{SHORT.get(k, k)} {v:.1f}" for k, v in cpu.items()]
    parts.append(f"operator {own:.1f}" if own is not None else f"kubectl {client:.1f}")
    return ", ".join(parts)


def rows(results: dict[str, Any]) -> list[list[str]]:
    out: list[list[str]] = []
    adm = results.get("admission")
    if adm:
        _row(out, "1. largest project the API server admits (sites with alias+redirect)",
             f"{adm['largest_admitted']}" + (f" (rejected above: {adm['rejection'][-100:]})" if adm.get("rejection")
                                            else f" (dry run {adm['dry_run_seconds']} s)"),
             f"MAX_SITES {adm['max_sites']}", adm["largest_admitted"] >= adm["max_sites"])
    conv = results.get("convergence")
    if conv:
        for s in conv["summary"]:
            if s["ratio"] is None:
                _row(out, f"1. converge {s['mode']} N={s['sites']}",
                     f"operator: project REJECTED by the API server ({s['rejected'][-120:]}); "
                     f"kubectl {s['kubectl_s']:.2f} s", "ratio <= 1.0", False)
                continue
            orng, krng = s.get("operator_range") or [0, 0], s.get("kubectl_range") or [0, 0]
            _row(out, f"1. converge {s['mode']} N={s['sites']} (median of {s['runs']})",
                 f"operator {s['operator_s']:.2f} s ({orng[0]:.2f}-{orng[1]:.2f}) / kubectl {s['kubectl_s']:.2f} s "
                 f"({krng[0]:.2f}-{krng[1]:.2f}) = {s['ratio']:.2f}",
                 "ratio <= 1.0", s["ratio"] <= 1.0)
            if s.get("ratio_ordered") is not None:
                ornge = s.get("ordered_range") or [0, 0]
                _row(out, f"1. converge {s['mode']} N={s['sites']}: vs kubectl in the safe order",
                     f"operator {s['operator_s']:.2f} s / kubectl migrate -> populate -> web {s['ordered_s']:.2f} s "
                     f"({ornge[0]:.2f}-{ornge[1]:.2f}) = {s['ratio_ordered']:.2f}"
                     + (f"; the project's own create took {s['project_created_s']:.2f} s of the operator's time"
                        if s.get("project_created_s") else ""), "ratio <= 1.0",
                     s["ratio_ordered"] <= 1.0)
    for label in sorted((k for k in results if k == "edit" or k.startswith("edit_")), key=lambda k: len(k)):
        edit = results[label]
        target, limit = ("median <= 0.1 s", 0.1) if edit["sites"] <= 100 else ("", None)
        _row(out, f"2. edit: +1 alias on {edit['sites']} sites -> Ingress ({edit['edits']} edits)",
             f"median {edit['median_s']:.3f} s, p95 {edit['p95_s']:.3f} s", target,
             edit["median_s"] <= limit if limit else None)
        if "floor_median_s" in edit:
            _row(out, f"2. edit floor, {edit['sites']} sites: the project's write + the same host added to an Ingress "
                      "as large by hand",
                 f"median {edit['floor_median_s']:.3f} s (project write {edit['project_write_median_s']:.3f} s, "
                 f"Ingress write to its watch event {edit['ingress_write_median_s']:.3f} s)")
        _row(out, f"2. edit -> Ready again (rollout included), {edit['sites']} sites",
             f"median {edit['ready_median_s']:.2f} s")
    sc = results.get("scale")
    if sc:
        idle = sc["idle"]
        reqs = idle["operator_requests"]
        _row(out, f"3. idle: operator writes in {idle['seconds']:g} s ({sc['projects']} projects), Lease apart",
             f"{idle['operator_writes']} (other requests: {sum(v for k, v in reqs.items() if k != 'leases')}; "
             f"leader-election Lease requests: {reqs.get('leases', 0)})", "0", idle["operator_writes"] == 0)
        un = sc["unchanged"]
        apart = un.get("requests_per_reconcile_apart_from_rechecks")
        _row(out, "3. requests per reconcile of an unchanged project",
             (f"{apart} apart from timed rechecks ({un.get('secret_reads', 0):g} Secret GETs due every 60 s, CRD "
              f"list {un['operator_requests'].get('list', 0)}); all told {un['requests_per_reconcile']} "
              if apart is not None else f"{un['requests_per_reconcile']} ")
             + f"({', '.join(f'{k} {v}' for k, v in un['operator_requests'].items() if k != 'leases')}"
             f" over {sum(un['reconciles'].values()):g} reconciles for {un['touches']} touches; writes {un['writes']})",
             "0", apart == 0 if apart is not None else None)
        _row(out, f"4. scale: {sc['projects']} x {sc['sites']} sites, operator start -> all Ready",
             f"{sc['seconds']:.1f} s", "<= 30 s", sc["seconds"] <= 30)
        floor = results.get("scale_floor")
        if floor:
            _row(out, f"4. scale floor: the same {floor['projects']} projects by kubectl in the safe order, to all "
                      "children done",
                 f"{floor['seconds']:.1f} s ("
                 + "; ".join(f"{k.replace('_', ' ')} {v} s" for k, v in floor["milestones_s"].items()) + ")")
        first = sc["milestones_s"].get("first_ready")
        if first is not None:
            _row(out, "4. scale: operator start -> first project Ready", f"{first:.1f} s", "<= 5 s", first <= 5)
        eds = sc.get("edit_during_startup")
        if eds:
            _row(out, "4. scale: an edit during start-up -> its Ingress",
                 f"{eds['ingress_s']:.2f} s (edit at {eds['edit_at_s']:.1f} s, {eds['ready_at_edit']} projects Ready "
                 f"then)", "<= 2 s", eds["ingress_s"] <= 2)
        _row(out, "4. scale: operator peak RSS (VmHWM)", f"{sc['hwm_kib'] * 1024 / MB:.0f} MB", "<= 120 MB",
             sc["hwm_kib"] * 1024 <= 120 * MB)
        _row(out, "4. scale: milestones (from operator start)",
             "; ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in sc["milestones_s"].items())
             + f"; operator CPU {sc.get('cpu_s', 0):.1f} s")
        _row(out, "4. scale: operator requests/s (writes/s)",
             f"{sc['requests_per_s']:.1f} ({sc['writes_per_s']:.1f}); {sc['requests_total']} in all")
        if sc.get("cluster_cpu_s"):
            _row(out, "4. scale: CPU seconds by process, operator run / floor",
                 f"{cpu_split(sc, sc.get('cpu_s', 0.0))} / {cpu_split(floor or {})}")
    gr = results.get("growth")
    if gr and gr["ms_per_site"] is not None:
        pts = ", ".join(f"N={p['sites']}: {p['seconds']:.2f} s, {p['rss_kib'] * 1024 / MB:.0f} MB"
                        for p in gr["points"])
        _row(out, "5. growth with sites per project (shared)", pts)
        _row(out, "5. slope", f"{gr['ms_per_site']:.2f} ms/site, {gr['kib_per_site']:.1f} KiB RSS/site "
                              f"(peak {gr['hwm_kib_per_site']:.1f} KiB/site)")
    return out


def table(results: dict[str, Any]) -> str:
    data = [["measure", "result", "target", "met"], *rows(results)]
    widths = [max(len(r[i]) for r in data) for i in range(4)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in data]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(results: dict[str, Any], text_table: str) -> str:
    m = results["machine"]
    md = [
        "# Benchmark results",
        "",
        f"Measured {m['date']} with `make bench` (`{results['command']}`), {results['wall_seconds']:.0f} s in all, on "
        f"{m['cpus']} cores ({m['cpu_model']}), {m['memory_gib']} GiB, Kubernetes {m['kubernetes']} "
        f"(private control plane of tests/controlplane: etcd, kube-apiserver, controller-manager, scheduler, kwok), "
        f"Python {m['python']}. Raw figures: [results.json](results.json).",
        "",
        "Load average (1 min) during the run: " + "; ".join(
            f"{part} min {v['min']}, mean {v['mean']}, max {v['max']}" for part, v in results.get("load", {}).items())
        + " (2 cores; the suite's own processes keep it around 1.5-2.5, clearly more means other work competed).",
        "",
        "| measure | result | target | met |",
        "|---|---|---|---|",
        *(f"| {' | '.join(c.replace('|', '/') for c in r)} |" for r in rows(results)),
        "",
    ]
    conv = results.get("convergence")
    if conv:
        md += ["## Convergence runs", "", "| mode | sites | who | seconds | kubectl exit s | operator: project created, "
               "children present, children done (s) | operator requests | CPU s by process |",
               "|---|---|---|---|---|---|---|---|"]
        for r in conv["runs"]:
            reqs = ", ".join(f"{k} {v}" for k, v in (r.get("requests") or {}).items())
            secs = f"{r['seconds']:.2f}" if r["seconds"] is not None else "rejected"
            marks = ", ".join(str(v) for v in (r.get("milestones_s") or {}).values())
            cpu = cpu_split(r, r.get("cpu_s") if r["who"] == "operator" else None)
            md.append(f"| {r['mode']} | {r['sites']} | {r['who']} | {secs} | "
                      f"{r.get('kubectl_exit_seconds', '')} | {marks} | {reqs} | {cpu} |")
        md.append("")
    sc = results.get("scale")
    if sc:
        md += ["## Scale milestones (seconds from operator start)", "",
               f"operator healthy {sc['operator_started_s']} s; "
               + "; ".join(f"{k.replace('_', ' ')} {v} s" for k, v in sc["milestones_s"].items())
               + f"; all Ready {sc['seconds']} s. Operator requests by verb: {sc['requests']}.", "",
               f"Idle window: operator requests {sc['idle']['operator_requests'] or 'none'}; writes by every client "
               f"(apiserver_request_total): {sc['idle']['all_clients_writes'] or 'none'}.", ""]
    if ANALYSIS.exists():
        md += [ANALYSIS.read_text().strip(), ""]
    return "\n".join(md)
