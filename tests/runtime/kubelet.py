"""A test-side kubelet: runs the test image's pods as real processes and reports back through the pod status.

Why: kwok only pretends pods run. For pods of the test image (tests/runtime/images.py; kwok's stages skip them,
see controlplane/cluster.py) this runner does what a kubelet and container runtime do, so the operator's pods,
Jobs and env meet Divio's real Django runtime:
- the container's command/args (or the image's entry point and default arguments), with the env resolved as the
  kubelet resolves it (`value` with `$(VAR)` expansion, `secretKeyRef`, `configMapKeyRef`, `fieldRef`, `envFrom`);
- the process binds the pod's IP (given as POD_IP; every pod shares the test run's private network namespace);
- the pod status: Running, Ready once the container port accepts TCP (what the operator's tcpSocket probe checks),
  and on exit the exit code, reason and termination message; `restartPolicy: Always` restarts with the kubelet's
  back-off (10 s doubling to 5 min) and shows `CrashLoopBackOff`; a Job's pod ends Succeeded or Failed;
- a deleted pod runs its preStop sleep (still serving), then gets SIGTERM, SIGKILL after the rest of its grace
  period (capped), then is removed.
Pod IPs come from controlplane.cluster.REAL_POD_CIDR, the half of the pod range kwok does not use.

One deviation, on purpose: the termination message of a failed container is its last output lines (the kubelet's
FallbackToLogsOnError rule: 80 lines, 2048 bytes) whatever the policy, because this runner serves no log endpoint
and the operator reads a failed pod's last log lines on a real cluster.
"""

from __future__ import annotations

import base64
import collections
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from controlplane.cluster import NODE_NAME, REAL_POD_CIDR, _set_pdeathsig

from . import images
from .netns import require_private_netns

NODE_IP = "10.255.0.1"  # kwok's --node-ip: the hostIP of every pod on the node
BACKOFF_START, BACKOFF_MAX = 10.0, 300.0
MESSAGE_LINES, MESSAGE_BYTES = 80, 2048
MAX_GRACE = 10.0  # tests must not wait 30 s for a pod to go


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ConfigError(Exception):
    """The container cannot be configured (a missing Secret or key): CreateContainerConfigError, retried."""


class IPPool:
    """Pod IPs from REAL_POD_CIDR, one per pod uid, reused after the pod is gone."""

    def __init__(self, cidr: str = REAL_POD_CIDR) -> None:
        self._free = (str(ip) for ip in ipaddress.ip_network(cidr).hosts())
        self._released: list[str] = []
        self._lock = threading.Lock()

    def take(self) -> str:
        with self._lock:
            return self._released.pop(0) if self._released else next(self._free)

    def give_back(self, ip: str) -> None:
        with self._lock:
            self._released.append(ip)


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, $$ escapes, unknown references stay as written."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", sub, text)


class PodWorker(threading.Thread):
    """Runs one pod's (single) container until it ends for good or the pod is deleted."""

    def __init__(self, kubelet: RealKubelet, pod: client.V1Pod) -> None:
        super().__init__(daemon=True, name=f"pod-{pod.metadata.namespace}/{pod.metadata.name}")
        self.kubelet = kubelet
        self.pod = pod
        self.ns, self.name, self.uid = pod.metadata.namespace, pod.metadata.name, pod.metadata.uid
        self.container = pod.spec.containers[0]
        self.deleting = threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None
        self.ip: str | None = None
        self.restarts = 0
        self.last_terminated: dict[str, Any] | None = None
        self.started_at = _now()
        self.dir = kubelet.state_dir / f"{self.ns}_{self.name}_{self.uid[:8]}"
        self.output: collections.deque[str] = collections.deque(maxlen=MESSAGE_LINES)

    # ------------------------------------------------------------------ status
    def _status(self, *, phase: str, state: dict[str, Any], ready: bool, extra: dict[str, Any] | None = None) -> None:
        cs: dict[str, Any] = {
            "name": self.container.name, "image": self.container.image,
            "imageID": f"{self.container.image}@sha256:{'0' * 64}", "containerID": f"real://{self.uid}",
            "ready": ready, "started": "running" in state, "restartCount": self.restarts, "state": state,
        }
        if self.last_terminated:
            cs["lastState"] = {"terminated": self.last_terminated}
        cond = "True" if ready else "False"
        status: dict[str, Any] = {
            "phase": phase,
            "hostIP": NODE_IP, "hostIPs": [{"ip": NODE_IP}],
            "startTime": self.started_at,
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": cond, **({} if ready else {"reason": "ContainersNotReady"})},
                {"type": "Ready", "status": cond, **({} if ready else {"reason": "ContainersNotReady"})},
            ],
            "containerStatuses": [cs],
            **(extra or {}),
        }
        if self.ip:
            status["podIP"], status["podIPs"] = self.ip, [{"ip": self.ip}]
        try:
            self.kubelet.core.patch_namespaced_pod_status(
                self.name, self.ns, {"status": status}, _content_type="application/merge-patch+json")
        except ApiException as exc:
            if exc.status != 404:
                raise

    # ------------------------------------------------------------------ env and command
    def _secret(self, name: str) -> dict[str, str] | None:
        try:
            s = self.kubelet.core.read_namespaced_secret(name, self.ns)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in (s.data or {}).items()}

    def _config_map(self, name: str) -> dict[str, str] | None:
        try:
            return dict(self.kubelet.core.read_namespaced_config_map(name, self.ns).data or {})
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _field(self, path: str) -> str:
        meta = self.pod.metadata
        simple = {"metadata.name": meta.name, "metadata.namespace": meta.namespace, "metadata.uid": meta.uid,
                  "spec.nodeName": self.pod.spec.node_name, "spec.serviceAccountName": self.pod.spec.service_account_name,
                  "status.podIP": self.ip, "status.hostIP": NODE_IP}
        if path in simple:
            return simple[path] or ""
        m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if m:
            return (getattr(meta, m.group(1)) or {}).get(m.group(2), "")
        raise ConfigError(f"unsupported fieldRef {path}")

    def _env(self, image_env: dict[str, str]) -> dict[str, str]:
        env = dict(image_env)
        env["HOSTNAME"] = self.name
        for src in self.container.env_from or []:
            ref = src.secret_ref or src.config_map_ref
            data = self._secret(ref.name) if src.secret_ref else self._config_map(ref.name)
            if data is None:
                if ref.optional:
                    continue
                raise ConfigError(f'{"secret" if src.secret_ref else "configmap"} "{ref.name}" not found')
            env.update({(src.prefix or "") + k: v for k, v in data.items()})
        for e in self.container.env or []:
            if e.value_from is None:
                env[e.name] = _expand(e.value or "", env)
                continue
            vf = e.value_from
            if vf.secret_key_ref or vf.config_map_key_ref:
                ref = vf.secret_key_ref or vf.config_map_key_ref
                kind = "secret" if vf.secret_key_ref else "configmap"
                data = self._secret(ref.name) if vf.secret_key_ref else self._config_map(ref.name)
                if data is None or ref.key not in data:
                    if ref.optional:
                        continue
                    raise ConfigError(f'{kind} "{ref.name}" not found' if data is None
                                      else f"couldn't find key {ref.key} in {kind.capitalize()} {self.ns}/{ref.name}")
                env[e.name] = data[ref.key]
            elif vf.field_ref:
                env[e.name] = self._field(vf.field_ref.field_path)
            else:
                raise ConfigError(f"unsupported valueFrom in env {e.name}")
        # The runtime's, not the pod's: every pod shares one network namespace, so the process binds its pod IP.
        env["POD_IP"] = self.ip or ""
        return env

    def _argv(self, config: images.ImageConfig, env: dict[str, str]) -> list[str]:
        c = self.container
        if c.command:
            argv = list(c.command) + list(c.args or [])
        else:
            argv = list(config.entrypoint) + list(c.args if c.args is not None else config.cmd)
        return [_expand(a, env) for a in argv]

    # ------------------------------------------------------------------ lifecycle
    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - a runner bug must show, not kill the kubelet silently
            self.kubelet.errors.append(f"{self.ns}/{self.name}: {exc!r}")
        finally:
            self._finish()

    def _run(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            config = images.resolve(self.container.image, self.dir / "data")
        except images.ImageNotFound as exc:
            self._status(phase="Pending", ready=False,
                         state={"waiting": {"reason": "ErrImagePull", "message": str(exc)}})
            self.deleting.wait()
            return
        self.ip = self.kubelet.ips.take()
        backoff = BACKOFF_START
        policy = self.pod.spec.restart_policy or "Always"
        while not self.deleting.is_set():
            try:
                env = self._env(config.env)
            except ConfigError as exc:
                self._status(phase="Pending", ready=False,
                             state={"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}})
                if self.deleting.wait(1.0):
                    return
                continue
            code, started, finished = self._run_once(config, env)
            if self.deleting.is_set():
                return
            terminated = {
                "exitCode": code, "reason": "Completed" if code == 0 else "Error",
                "startedAt": started, "finishedAt": finished, "containerID": f"real://{self.uid}",
            }
            if code != 0:
                terminated["message"] = self._message()
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                self._status(phase="Succeeded" if code == 0 else "Failed", ready=False,
                             state={"terminated": terminated})
                return
            self.last_terminated = terminated
            self._status(phase="Running", ready=False, state={"waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {int(backoff)}s restarting failed container={self.container.name} "
                           f"pod={self.name}_{self.ns}({self.uid})"}})
            if self.deleting.wait(backoff):
                return
            backoff = min(backoff * 2, BACKOFF_MAX)
            self.restarts += 1

    def _message(self) -> str:
        text = "\n".join(self.output)
        return text.encode()[-MESSAGE_BYTES:].decode(errors="replace")

    def _run_once(self, config: images.ImageConfig, env: dict[str, str]) -> tuple[int, str, str]:
        argv = self._argv(config, env)
        started = _now()
        self.output.clear()
        exe = shutil.which(argv[0], path=env.get("PATH")) if "/" not in argv[0] else argv[0]
        if not exe:
            self.output.append(f'exec: "{argv[0]}": executable file not found in $PATH')
            return 128, started, _now()
        log = open(self.dir / f"{self.container.name}.log", "ab")  # noqa: SIM115 - closed by the reader thread
        self.proc = subprocess.Popen([exe, *argv[1:]], env=env, cwd=config.workdir, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_set_pdeathsig)
        reader = threading.Thread(target=self._read, args=(self.proc, log), daemon=True)
        reader.start()
        self._status(phase="Running", ready=False, state={"running": {"startedAt": started}})
        probe = self.container.readiness_probe
        port = self._probe_port()
        ready = False
        if probe is None or port is None:  # no probe: ready as soon as it runs, like the kubelet
            self._status(phase="Running", ready=True, state={"running": {"startedAt": started}})
            ready = True
        while self.proc.poll() is None:
            if not ready and self._accepts(port):
                self._status(phase="Running", ready=True, state={"running": {"startedAt": started}})
                ready = True
            if self.deleting.wait(0.1):
                break
        if self.deleting.is_set():
            self._terminate()
        code = self.proc.wait()
        reader.join(5)
        # A signal death is reported as 128 + signal, as container runtimes do.
        return (128 - code if code < 0 else code), started, _now()

    def _read(self, proc: subprocess.Popen[bytes], log: Any) -> None:
        assert proc.stdout is not None
        with log:
            for raw in proc.stdout:
                log.write(raw)
                log.flush()
                self.output.append(raw.decode(errors="replace").rstrip("\n"))

    def _probe_port(self) -> int | None:
        probe = self.container.readiness_probe
        if probe is None or probe.tcp_socket is None:
            return None
        port = probe.tcp_socket.port
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for p in self.container.ports or []:
            if p.name == port:
                return p.container_port
        return None

    def _accepts(self, port: int | None) -> bool:
        if port is None or not self.ip:
            return False
        try:
            with socket.create_connection((self.ip, port), timeout=0.5):
                return True
        except OSError:
            return False

    def _terminate(self) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        grace = min(float(self.pod.spec.termination_grace_period_seconds or 30), MAX_GRACE)
        hook = self.pod.spec.containers[0].lifecycle
        sleep = hook.pre_stop.sleep if hook and hook.pre_stop else None
        if sleep is not None and self.proc.poll() is None:  # preStop sleep: it still serves meanwhile
            waited = min(float(sleep.seconds), grace - 1)
            time.sleep(max(waited, 0))
            grace -= waited
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _finish(self) -> None:
        """After deletion: stop the process, remove the pod (grace 0), free the IP."""
        if self.deleting.is_set():
            self._terminate()
            try:
                self.kubelet.core.delete_namespaced_pod(self.name, self.ns, grace_period_seconds=0)
            except Exception:  # noqa: BLE001 - gone already, or the API server stopped first at shutdown
                pass
        if self.ip:
            self.kubelet.ips.give_back(self.ip)
            self.ip = None


class RealKubelet:
    """Watches the node's pods and runs those of the test image (see the module docstring)."""

    def __init__(self, api: client.ApiClient, state_dir: Path, node_name: str = NODE_NAME) -> None:
        self.core = client.CoreV1Api(api)
        self.state_dir = Path(state_dir)
        self.node_name = node_name
        self.ips = IPPool()
        self.workers: dict[str, PodWorker] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def handles(pod: client.V1Pod) -> bool:
        return any(c.image.startswith(images.REPOSITORY + ":") for c in pod.spec.containers)

    def start(self) -> RealKubelet:
        require_private_netns()
        images.runtime_dir()  # fail now, clearly, if the venv is missing
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._watch, daemon=True, name="real-kubelet")
        self._thread.start()
        return self

    def _watch(self) -> None:
        selector = f"spec.nodeName={self.node_name}"
        while not self._stop.is_set():
            try:
                pods = self.core.list_pod_for_all_namespaces(field_selector=selector)
                for pod in pods.items:
                    self._handle(pod)
                w = watch.Watch()
                for event in w.stream(self.core.list_pod_for_all_namespaces, field_selector=selector,
                                      resource_version=pods.metadata.resource_version, timeout_seconds=30):
                    if self._stop.is_set():
                        w.stop()
                        break
                    pod = event["object"]
                    if event["type"] == "DELETED":
                        worker = self.workers.pop(pod.metadata.uid, None)
                        if worker:
                            worker.deleting.set()
                    else:
                        self._handle(pod)
            except Exception as exc:  # noqa: BLE001 - API hiccups: list again, like a kubelet's informer
                if not self._stop.is_set():
                    self.errors.append(f"watch: {exc!r}")
                    time.sleep(0.5)

    def _handle(self, pod: client.V1Pod) -> None:
        if not self.handles(pod):
            return
        uid = pod.metadata.uid
        worker = self.workers.get(uid)
        if pod.metadata.deletion_timestamp is not None:
            if worker:
                worker.deleting.set()
            else:  # a finished pod (or one never started): nothing runs, just remove it
                try:
                    self.core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0)
                except ApiException:
                    pass
            return
        if worker is None and pod.status.phase not in ("Succeeded", "Failed"):
            worker = PodWorker(self, pod)
            self.workers[uid] = worker
            worker.start()

    def stop(self) -> None:
        self._stop.set()
        for worker in list(self.workers.values()):
            worker.deleting.set()
        for worker in list(self.workers.values()):
            worker.join(MAX_GRACE + 5)
        if self._thread:
            self._thread.join(35)

    def pod_dir(self, namespace: str, name: str) -> Path | None:
        """Where a pod's output log is (for a failing test's report)."""
        for w in self.workers.values():
            if (w.ns, w.name) == (namespace, name):
                return w.dir
        return None
