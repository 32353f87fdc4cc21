"""A small in-memory stand-in for the API the reconciler talks to, and for what controllers do to children.

Why: the reconcile decisions (what to apply, what to keep, what Ready says) are tested without a cluster, in
milliseconds, by playing the cluster's part by hand: `roll_out` a Deployment, `finish` a Job. The fake applies the
way server-side apply does for what the decisions depend on: metadata.generation moves when the spec changes and
the status stays until a controller updates it.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from multisite_operator.controller import Controller
from multisite_operator.kube import SecretCheck
from multisite_operator.models import MultiSiteProjectStatus
from multisite_operator.pods import pod_problem

Obj = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
SECRETS = {("example-db", "DATABASE_URL"): "postgres://example:s3cr3t-pw@db:5432/example",
           ("example-storage", "DEFAULT_STORAGE_DSN"): "s3://key:st0rage-pw@media/"}


def example(name: str = "example-shared") -> Obj:
    """The example project as the API server would hand it to the operator."""
    docs = [d for d in yaml.safe_load_all((ROOT / "examples" / f"{name}.yaml").read_text()) if d]
    project = copy.deepcopy(next(d for d in docs if d["kind"] == "MultiSiteProject"))
    project["metadata"].update(namespace="shop", uid="uid-1", generation=1, creationTimestamp="2026-01-01T00:00:00Z",
                               resourceVersion="1")
    project["status"] = {}
    return project


@dataclass
class FakeCluster:
    """Children by (kind, name), the project's status, and every write the reconciler made."""

    project: Obj
    secrets: dict[tuple[str, str], str] = field(default_factory=lambda: dict(SECRETS))
    objects: dict[tuple[str, str], Obj] = field(default_factory=dict)
    writes: list[tuple[str, str, str]] = field(default_factory=list)  # (verb, kind, name)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    job_logs: dict[str, str] = field(default_factory=dict)
    reads: list[tuple[str, str]] = field(default_factory=list)  # (kind, name) read by name
    served: set[tuple[str, str]] = field(default_factory=lambda: {("gateway.networking.k8s.io/v1", "httproutes")})

    def children(self) -> list[Obj]:
        """What the informer indexes hand the reconcile: objects whose controller reference names the project."""
        name = self.project["metadata"]["name"]
        return [copy.deepcopy(o) for o in self.objects.values()
                if any(r.get("controller") and r.get("name") == name for r in o["metadata"].get("ownerReferences") or [])]

    # --- the API the reconciler calls ------------------------------------------------------------------------
    async def apply(self, obj: Obj) -> Obj:
        key = (obj["kind"], obj["metadata"]["name"])
        before = self.objects.get(key)
        new = copy.deepcopy(obj)
        gen = (before or {}).get("metadata", {}).get("generation", 0)
        new["metadata"]["generation"] = gen + (before is None or before.get("spec") != obj.get("spec"))
        new["metadata"]["uid"] = (before or {}).get("metadata", {}).get("uid") or f"uid-{key[0]}-{key[1]}"
        new["status"] = copy.deepcopy((before or {}).get("status") or {})
        self.objects[key] = new
        self.writes.append(("apply", *key))
        return copy.deepcopy(new)

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        self.reads.append((kind, name))
        if kind == "MultiSiteProject":
            return copy.deepcopy(self.project) if name == self.project["metadata"]["name"] else None
        return copy.deepcopy(self.objects.get((kind, name)))

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.objects.pop((kind, name), None)
        self.writes.append(("delete", kind, name))

    async def patch_status(self, namespace: str, name: str, status: Obj) -> str:
        # Every status the reconciler writes must fit the generated CRD schema's models: no field kept only by luck.
        MultiSiteProjectStatus.model_validate(status)
        self.project["status"] = copy.deepcopy(status)
        self.writes.append(("status", "MultiSiteProject", name))
        return self.bump()

    def bump(self) -> str:
        """A write to the project (its status, or its spec): a new resourceVersion, as etcd gives one."""
        meta = self.project["metadata"]
        meta["resourceVersion"] = str(int(meta.get("resourceVersion") or 0) + 1)
        return meta["resourceVersion"]

    async def check_secrets(self, namespace: str, refs: list[tuple[str, str]],
                            visible: list[tuple[str, str | None]] | None = None) -> SecretCheck:
        self.reads += [("Secret", n) for n in dict.fromkeys([n for n, _ in refs] + [n for n, _ in visible or []])]
        missing = [f"Secret {n} has no key {k}" for n, k in refs if (n, k) not in self.secrets]
        values = [self.secrets[r] for r in refs if r in self.secrets]
        entries = [(n, k, self.secrets.get((n, k))) for n, k in refs]
        for name, key in visible or []:
            found = [(k, v) for (n, k), v in self.secrets.items() if n == name and key in (None, k)]
            values += [v for _, v in found]
            entries += [(name, k, v) for k, v in found] or [(name, key or "*", None)]
        return SecretCheck(missing=missing, values=values, entries=entries)

    async def job_failure(self, namespace: str, job: str) -> str:
        return self.job_logs.get(job, "")

    async def serves(self, group_version: str, plural: str, recheck: float = 60) -> bool:
        self.reads.append(("discovery", f"{group_version}/{plural}"))
        return (group_version, plural) in self.served

    def emit(self, project: Obj, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    # --- playing the controllers' part --------------------------------------------------------------------------
    def named(self, kind: str, prefix: str = "") -> list[str]:
        return sorted(n for k, n in self.objects if k == kind and n.startswith(prefix))

    def roll_out(self, *names: str) -> None:
        """The Deployment controller: every wanted replica updated, ready and Available."""
        for name in names or self.named("Deployment"):
            dep = self.objects[("Deployment", name)]
            n = dep["spec"].get("replicas", 1)
            dep["status"] = {"observedGeneration": dep["metadata"]["generation"], "replicas": n, "updatedReplicas": n,
                             "readyReplicas": n, "availableReplicas": n,
                             "conditions": [{"type": "Available", "status": "True"}]}

    def pod(self, deployment: str, *, output: str = "", template: Obj | None = None, rs_hash: str = "abc12") -> Obj:
        """A pod of `deployment` (its current template, or `template`) as the kubelet shows it after its web
        container exited with `output` and is in CrashLoopBackOff (no output: a running, ready pod)."""
        tpl = copy.deepcopy(template or self.objects[("Deployment", deployment)]["spec"]["template"])
        name = tpl["spec"]["containers"][0]["name"]
        if output:
            cs = {"name": name, "ready": False, "restartCount": 3,
                  "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting"}},
                  "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": output}}}
        else:
            cs = {"name": name, "ready": True, "restartCount": 0, "state": {"running": {}}}
        labels = {**tpl["metadata"].get("labels", {}), "pod-template-hash": rs_hash}
        return {"metadata": {"name": f"{deployment}-{rs_hash}-x1", "labels": labels, "uid": f"pod-{rs_hash}",
                             "ownerReferences": [{"kind": "ReplicaSet", "name": f"{deployment}-{rs_hash}",
                                                  "controller": True}]},
                "spec": tpl["spec"], "status": {"containerStatuses": [cs]}}

    def finish(self, name: str, ok: bool = True, message: str = "") -> None:
        """The Job controller: Complete, or Failed with the pod's termination message."""
        job = self.objects[("Job", name)]
        kind = "Complete" if ok else "Failed"
        job["status"] = {"conditions": [{"type": kind, "status": "True", "reason": "BackoffLimitExceeded" if not ok
                                         else "Completed", "message": ""}]}
        if message:
            self.job_logs[name] = message

    def edit_spec(self, **changes: Any) -> None:
        self.project["spec"].update(changes)
        self.project["metadata"]["generation"] += 1
        self.bump()

    def migrate(self, reconciler: Any, ok: bool = True, message: str = "") -> None:
        """Past the version gate: reconcile, let the migration Job for spec.image finish, reconcile again."""
        reconcile(reconciler, self)
        job = next(n for n in self.named("Job", f"{self.project['metadata']['name']}-migrate-")
                   if self.objects[("Job", n)]["metadata"]["annotations"].get("multisite.dev/image")
                   == self.project["spec"]["image"])
        self.finish(job, ok, message)
        reconcile(reconciler, self)

    def settle(self, reconciler: Any, **kwargs: Any) -> None:
        """Past the version gate and rolled out: every Job the operator starts succeeds, every Deployment is
        Available (a few rounds: migrate, then populate, then the roll)."""
        for _ in range(4):
            reconcile(reconciler, self, **kwargs)
            self.roll_out()
            for job in self.named("Job"):
                if not self.objects[("Job", job)].get("status"):
                    self.finish(job)
        reconcile(reconciler, self, **kwargs)

    def condition(self, type_: str) -> Obj:
        return next(c for c in self.project["status"].get("conditions") or [] if c["type"] == type_)

    def ready(self) -> tuple[str, str]:
        c = self.condition("Ready")
        return c["status"], c["reason"]


def reconcile(reconciler: Any, cluster: FakeCluster, conflicts: list[str] | None = None,
              image_problems: list[str] | None = None, pods: list[Obj] | None = None,
              gateways: dict | None = None, certs: Any = None) -> Any:
    """One reconcile as the controller runs it: the project and its children as the caches hold them; `pods` go
    through the controller's own pod problems and crash filter (pods.Problems, Controller)."""
    cluster.writes.clear()
    cluster.reads.clear()
    children = cluster.children()
    ctl = Controller()
    key = (cluster.project["metadata"]["namespace"], cluster.project["metadata"]["name"])
    ctl.pod_problems.by_project[key] = {str(i): p for i, p in enumerate(filter(None, map(pod_problem, pods or [])))}
    crashes = ctl.crashes(key, children)

    async def once() -> Any:
        outcome = await reconciler.reconcile(copy.deepcopy(cluster.project), children, conflicts, image_problems,
                                             None, crashes, gateways, certs)
        await reconciler.flush()  # status writes run off the reconcile's path (status_writer.py)
        return outcome

    return asyncio.run(once())
