"""What a serving test does: put a project on the real runtime, then ask Traefik which site answers each host."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from harness.project import create_project, example_project, wait_condition
from helpers import wait_for
from ingress.traefik import Response, Traefik
from runtime import project as real
from runtime.kubelet import RealKubelet


def site_of(resp: Response) -> int | None:
    """The site id the Django runtime says served the request (None if the answer is not the test view's)."""
    if resp.status != 200 or not resp.headers.get("content-type", "").startswith("application/json"):
        return None
    return json.loads(resp.body).get("site_id")


def answer(resp: Response) -> dict[str, Any]:
    """What `make routes` prints for one host."""
    return {"status": resp.status, "site_id": site_of(resp), "location": resp.headers.get("location")}


class ServingHarness:
    def __init__(self, api: client.ApiClient, namespace: str, traefik: Traefik | None, kubelet: RealKubelet,
                 work_dir: Path) -> None:
        self.api, self.namespace, self.traefik, self.kubelet = api, namespace, traefik, kubelet
        self.work_dir = work_dir
        self.work_dir.mkdir(parents=True, exist_ok=True)

    def example(self, tag: str = "1", **spec: Any) -> dict[str, Any]:
        """The README's example project on the real runtime (image, IngressClass), with ``spec`` changes."""
        return real.on_real_runtime(example_project(**spec), tag)

    def apply(self, project: dict[str, Any], *, migrated: bool = False,
              database_url: str | None = None) -> str:
        """Create the project's Secrets (a fresh sqlite database) and the project; returns its name.

        ``migrated``: start from a database already migrated for the image (for a project that migrates outside
        the operator); by default it starts empty, as a new project does, and the operator's migrate Job (both
        modes) migrates it for real.
        """
        name = project["metadata"]["name"]
        tag = project["spec"]["image"].rpartition(":")[2]
        if tag == "broken-settings":  # its settings cannot load, so nothing can migrate with it; schema of release 1
            tag = "1"
        db_dir = real.database_dir(self.work_dir, name, migrated_for=tag if migrated else None)
        core = client.CoreV1Api(self.api)
        refs = real.secret_refs(project)
        for secret in real.secrets(db_dir, *refs):
            if database_url and secret["metadata"]["name"] == refs[0]:
                secret["stringData"][refs[1]] = database_url
            core.create_namespaced_secret(self.namespace, secret)
        create_project(self.api, self.namespace, project)
        return name

    def database(self, name: str) -> Path:
        return self.work_dir / name / "db.sqlite3"

    def wait_ready(self, name: str, *, populated: bool = True, timeout: float = 300) -> dict[str, Any]:
        project = wait_condition(self.api, self.namespace, name, "Ready", "True", timeout=timeout)
        if populated and project["spec"].get("mode", "shared") == "shared":
            project = wait_condition(self.api, self.namespace, name, "Populated", "True", timeout=timeout)
        return project

    def ask(self, host: str) -> dict[str, Any]:
        return answer(self.traefik.request(host))

    def until(self, host: str, predicate: Any, timeout: float = 120) -> tuple[Response, float]:
        """Ask ``host`` until ``predicate(response)``; returns it and the seconds it took."""
        start = time.monotonic()
        last: list[Response] = []

        def check() -> Response | None:
            r = self.traefik.request(host)
            last[:] = [r]
            return r if predicate(r) else None

        try:
            resp = wait_for(check, timeout=timeout, interval=0.1, message=f"the answer for {host}")
        except AssertionError as exc:
            got = last[0] if last else None
            raise AssertionError(f"{exc}; last answer: {answer(got) if got else None} "
                                 f"{got.body[:300] if got else b''!r}\n{self.diagnostics()}") from None
        return resp, time.monotonic() - start

    def until_site(self, host: str, site_id: int, timeout: float = 120) -> float:
        return self.until(host, lambda r: site_of(r) == site_id, timeout)[1]

    def pods(self, selector: str = "") -> list[client.V1Pod]:
        return client.CoreV1Api(self.api).list_namespaced_pod(self.namespace, label_selector=selector).items

    def diagnostics(self) -> str:
        lines = [f"kubelet errors: {self.kubelet.errors}"]
        if self.traefik:
            lines += ["traefik log:", self.traefik.log_tail(10)]
        for pod in self.pods():
            cs = (pod.status.container_statuses or [None])[0]
            lines.append(f"pod {pod.metadata.name} {pod.status.phase} ip={pod.status.pod_ip} "
                         f"state={cs.state.to_dict() if cs else None}")
            d = self.kubelet.pod_dir(self.namespace, pod.metadata.name)
            if d:
                for log in d.glob("*.log"):
                    lines.append("  | " + "\n  | ".join(log.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(lines)
