#!/usr/bin/env python3
"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok.

Why: every feature of the operator must be proved against a real kube-apiserver (CRD schemas and CEL, status
subresources, server-side apply, garbage collection, Deployments and Jobs), but no container runtime or release
download is available here. build.sh builds the binaries from Go modules; kwok plays the kubelet for one fake Node.

Importable (``ControlPlane``) and a CLI::

    python tests/controlplane/cluster.py up [--foreground]   # kubeconfig at .cache/controlplane/kubeconfig
    python tests/controlplane/cluster.py down | status | build
"""

from __future__ import annotations

import argparse
import atexit
import base64
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # the CLI must not need the kubernetes client
    import kubernetes.client

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# Same default and override as build.sh, so both agree on where the binaries are.
CACHE_ROOT = Path(os.environ.get("CONTROLPLANE_CACHE") or REPO / ".cache" / "controlplane").resolve()
DEFAULT_KUBECONFIG = CACHE_ROOT / "kubeconfig"
DEFAULT_STATE_DIR = CACHE_ROOT / "run"
TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
# Start order; stop goes in reverse so controllers never see the apiserver vanish first.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

NODE_NAME = "kwok-node-0"
# Benchmarks run thousands of pods on this one fake Node; nothing real is consumed.
NODE_ALLOCATABLE = {"cpu": "256", "memory": "1Ti", "pods": "10000", "ephemeral-storage": "1Ti"}
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.0.0.0/16"  # the pod range: local inside the real-serving tests' network namespace
# kwok hands out the lower half (kwok's default /24 would run out after 254 pods; 32766 is plenty); the real
# runtime (tests/runtime/kubelet.py) the upper half, so their pod IPs never collide.
KWOK_POD_CIDR = "10.0.0.0/17"
REAL_POD_CIDR = "10.0.128.0/17"

# Stock kwok stages (paths inside the sigs.k8s.io/kwok module). pod-complete selects Running pods owned by a Job,
# so Deployment (ReplicaSet-owned) pods stay Running+Ready. The chaos stage fails pods labelled
# pod-container-running-failed.stage.kwok.x-k8s.io=true; its weight (10000) beats pod-complete's (0).
KWOK_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat/node-heartbeat.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
    "kustomize/stage/pod/chaos/pod-container-running-failed.yaml",
)
# The stock chaos stage writes the annotation text unquoted into YAML, so a message holding ": " breaks the
# template. Quoting (kwok's Quote emits JSON strings, valid YAML) keeps any message intact.
_STAGE_PATCHES = (
    ("reason: {{ $failureReason }}", "reason: {{ $failureReason | Quote }}"),
    ("message: {{ $failureMessage }}", "message: {{ $failureMessage | Quote }}"),
)


class ControlPlaneError(RuntimeError):
    """Start-up or shutdown failed; the message names the component and the tail of its log."""


def release() -> str:
    """The Kubernetes release the binaries are built for, read from go.mod (the single place it is set)."""
    for line in (HERE / "go.mod").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "k8s.io/kubernetes":
            return parts[1]
    raise ControlPlaneError("k8s.io/kubernetes not required in tests/controlplane/go.mod")


def default_bin_dir(cache_root: Path = CACHE_ROOT) -> Path:
    """Where build.sh puts the binaries for the release in go.mod."""
    return cache_root / release() / "bin"


def build(cache_root: Path = CACHE_ROOT) -> None:
    """Build the binaries (no-op when all are cached)."""
    subprocess.run([str(HERE / "build.sh"), str(cache_root)], check=True)


def kwok_module_dir() -> Path:
    """The sigs.k8s.io/kwok module in Go's module cache, where the stock stages live."""
    try:
        out = subprocess.run(
            ["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"],
            cwd=HERE, check=True, capture_output=True, text=True,
        ).stdout.strip()
        if out and Path(out).is_dir():
            return Path(out)
    except (OSError, subprocess.CalledProcessError):
        pass
    version = next(
        line.split()[1] for line in (HERE / "go.mod").read_text().splitlines()
        if line.split()[:1] == ["sigs.k8s.io/kwok"]
    )
    modcache = os.environ.get("GOMODCACHE") or str(Path(os.environ.get("GOPATH") or Path.home() / "go") / "pkg/mod")
    path = Path(modcache) / f"sigs.k8s.io/kwok@{version}"
    if not path.is_dir():
        raise ControlPlaneError(f"kwok module not found (run `make cluster-build`): {path}")
    return path


# kwok pulls no images, so a missing image never fails by itself. This stage plays the kubelet for a registry that
# lacks every image whose reference contains "does-not-exist": the pod stays Pending with its containers waiting
# in ErrImagePull, like a real node. Its weight beats pod-ready's (0); the status is deterministic (no timestamps),
# so re-playing it is a no-op patch that kwok skips, and the pod stays put until it is deleted.
IMAGE_PULL_FAILED_STAGE = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-image-pull-failed
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Pending'
    - key: '.spec.containers[] | select(.image | contains("does-not-exist")) | .name'
      operator: 'Exists'
  weight: 10000
  next:
    statusTemplate: |
      conditions:
      - type: Initialized
        status: "True"
      - type: Ready
        status: "False"
        reason: ContainersNotReady
      - type: ContainersReady
        status: "False"
        reason: ContainersNotReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          waiting:
            reason: ErrImagePull
            message: {{ printf "failed to pull and unpack image %q: %s: not found" .image .image | Quote }}
      {{ end }}
      phase: Pending
"""


# Pods of the real-serving test image are run by tests/runtime/kubelet.py (a real process per pod, real exit codes),
# so every pod stage of kwok skips them: this selector term is added to each. All other pods keep kwok's fake
# behaviour. The prefix is the image repository tests/runtime/images.py serves.
REAL_IMAGE_PREFIX = "multisite-test/"
_SKIP_REAL_PODS = (
    "    - key: '.spec.containers[] | select(.image | startswith(\"" + REAL_IMAGE_PREFIX + "\")) | .name'\n"
    "      operator: 'DoesNotExist'\n"
)
_MATCH_EXPRESSIONS = "  selector:\n    matchExpressions:\n"


def _skip_real_pods(stage: str) -> str:
    """A Pod stage with the term that leaves the real runtime's pods alone (Node stages unchanged)."""
    if "kind: Pod\n" not in stage:
        return stage
    if stage.count(_MATCH_EXPRESSIONS) != 1:
        raise ControlPlaneError(f"cannot narrow kwok stage (no single selector.matchExpressions):\n{stage[:300]}")
    return stage.replace(_MATCH_EXPRESSIONS, _MATCH_EXPRESSIONS + _SKIP_REAL_PODS)


def kwok_stages() -> str:
    """The stock stages (plus the image pull failure stage) concatenated into one kwok config document stream."""
    module = kwok_module_dir()
    docs = []
    for rel in KWOK_STAGES:
        text = (module / rel).read_text()
        for old, new in _STAGE_PATCHES:
            text = text.replace(old, new)
        docs.append(_skip_real_pods(text.strip() + "\n"))
    docs.append(_skip_real_pods(IMAGE_PULL_FAILED_STAGE))
    return "---\n".join(docs)


def free_port() -> int:
    """A loopback port the kernel says is free now (tiny race accepted: nothing else here grabs ports)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_start_time(pid: int) -> int | None:
    """Kernel start time of ``pid`` (None if gone or a zombie): tells a live process from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _set_pdeathsig() -> None:
    """Child side of Popen: die with the launching thread, so even a SIGKILLed test run leaves nothing behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


# Control planes started in this process without detach; stopped at exit or on SIGTERM/SIGHUP. A plain set: an
# instance nobody references any more must still be stopped.
_LIVE: set[ControlPlane] = set()
_handlers_installed = False


def _stop_live() -> None:
    for cp in list(_LIVE):
        try:
            cp.stop()
        except Exception as exc:  # noqa: BLE001 - best effort while exiting
            print(f"control plane: stop failed: {exc}", file=sys.stderr)


def _install_exit_handlers() -> None:
    """atexit plus SIGTERM/SIGHUP handlers that stop live control planes, then behave as before."""
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_stop_live)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            _stop_live()
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        signal.signal(sig, handler)


class ControlPlane:
    """One control plane whose whole state (certs, etcd data, logs, pids) lives in ``state_dir``.

    ``start()`` launches it; ``stop()`` kills every process it started. With ``detach=True`` (the CLI's ``up``)
    the processes outlive this Python process and ``ControlPlane(state_dir).stop()`` from another one ends them,
    using ``pids.json``. Otherwise they die with this process (atexit, SIGTERM/SIGHUP, and PR_SET_PDEATHSIG).
    """

    def __init__(
        self,
        state_dir: Path | str | None = None,
        kubeconfig: Path | str | None = None,
        *,
        bin_dir: Path | str | None = None,
        detach: bool = False,
    ) -> None:
        self._temporary = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="controlplane-")).resolve()
        self.kubeconfig = str(Path(kubeconfig).resolve() if kubeconfig else self.state_dir / "kubeconfig")
        self.bin_dir = Path(bin_dir).resolve() if bin_dir else default_bin_dir()
        self.detach = detach
        self.release = release()
        self.startup_seconds: float | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- paths and state
    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def kubectl(self) -> str:
        return str(self.bin_dir / "kubectl")

    def _state_file(self) -> Path:
        return self.state_dir / "pids.json"

    def _load_state(self) -> dict[str, Any]:
        try:
            return json.loads(self._state_file().read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"ports": {}, "procs": {}}

    def _save_state(self, state: dict[str, Any]) -> None:
        tmp = self._state_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self._state_file())

    @property
    def server(self) -> str:
        """The apiserver URL, from the kubeconfig (works for a cluster started by another process too)."""
        return self._kubeconfig_cluster()["server"]

    # ---------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 90) -> float:
        """Start everything, wait until pods can run, write the kubeconfig; returns the seconds it took."""
        t0 = time.monotonic()
        missing = [t for t in TOOLS if not (self.bin_dir / t).is_file()]
        if missing:
            raise ControlPlaneError(f"binaries missing in {self.bin_dir}: {missing} (run `make cluster-build`)")
        if self._load_state()["procs"]:
            self.stop()  # leftovers of a crashed run in the same state dir
        if self.state_dir.exists() and any(self.state_dir.iterdir()):
            if not self._state_file().exists():  # never wipe a directory that is not ours
                raise ControlPlaneError(f"{self.state_dir} is not empty and holds no control plane state")
            for child in self.state_dir.iterdir():  # keep the dir itself: a temp dir we own, or the CLI's
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        for d in (self.state_dir, self.pki, self.logs, self.state_dir / "etcd"):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o700)  # private keys and cluster data inside
        ports = {"etcd": free_port(), "etcd_peer": free_port(), "apiserver": free_port()}
        self._save_state({"ports": ports, "procs": {}, "release": self.release})
        if not self.detach:
            _LIVE.add(self)
            _install_exit_handlers()
        deadline = t0 + timeout
        try:
            self._write_pki()
            (self.state_dir / "kwok-stages.yaml").write_text(kwok_stages())
            self._launch("etcd", self._etcd_args(ports))
            self._wait(lambda: self._http_ok(f"http://127.0.0.1:{ports['etcd']}/health"), deadline, "etcd /health")
            self._launch("kube-apiserver", self._apiserver_args(ports))
            self._wait(self._apiserver_ready, deadline, "kube-apiserver /readyz")
            for name in COMPONENTS[2:]:
                self._launch(name, self._component_args(name))
            self._create_node()
            self._wait(self._node_schedulable, deadline, f"node {NODE_NAME} Ready and untainted")
            # The serviceaccount controller's first act proves kube-controller-manager is working; pods in a
            # namespace are rejected until its default ServiceAccount exists.
            self._wait(
                lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
                deadline, "default ServiceAccount",
            )
            self._write_kubeconfig(Path(self.kubeconfig))
        except BaseException:
            self.stop(remove_state=False)
            raise
        self.startup_seconds = time.monotonic() - t0
        return self.startup_seconds

    def stop(self, timeout: float = 15, *, remove_state: bool | None = None) -> None:
        """SIGTERM each process group, SIGKILL what is left after ``timeout``; works with stale pid files too.

        A temporary state dir (none given) is removed unless start-up failed (its logs explain why).
        """
        with self._lock:
            state = self._load_state()
            live: dict[str, set[int]] = {name: set() for name in TOOLS}
            for name, rec in state["procs"].items():
                if _proc_start_time(rec["pid"]) == rec["start"]:
                    live[name].add(rec["pid"])
            for name, pid in self._scan():  # covers a stale or lost pid file
                live[name].add(pid)
            # In stages: clients first, then the apiserver (its graceful shutdown writes to etcd, and it only exits
            # quickly once no client holds a watch open), then etcd.
            stages = (("kwok", "kube-scheduler", "kube-controller-manager", "kubectl"), ("kube-apiserver",), ("etcd",))
            for names in stages:
                self._terminate([pid for n in names for pid in live[n]], timeout)
            self._procs.clear()
            if self._state_file().exists():
                state["procs"] = {}
                self._save_state(state)
            _LIVE.discard(self)
            if remove_state is None:
                remove_state = self._temporary
            if remove_state:
                shutil.rmtree(self.state_dir, ignore_errors=True)

    def restart_apiserver(self, timeout: float = 60) -> float:
        """Stop kube-apiserver alone and start it again on the same port and certs; returns seconds it was down.

        Why: fault tests check that the operator survives an apiserver outage.
        """
        if "kube-apiserver" not in self._load_state()["procs"]:
            raise ControlPlaneError(f"no kube-apiserver recorded in {self._state_file()}")
        t0 = time.monotonic()
        self.stop_apiserver()
        self.start_apiserver(timeout)
        return time.monotonic() - t0

    def stop_apiserver(self, timeout: float = 3) -> None:
        """Stop kube-apiserver alone (the rest keeps running and retries), for outage tests.

        It stops listening at once on SIGTERM but then waits for open watches (up to --request-timeout) before
        exiting, so after ``timeout`` it is killed: the outage is the same either way.
        """
        rec = self._load_state()["procs"].get("kube-apiserver")
        if not rec or _proc_start_time(rec["pid"]) != rec["start"]:
            return
        self._terminate([rec["pid"]], timeout)

    def start_apiserver(self, timeout: float = 60) -> None:
        """Start kube-apiserver with its recorded arguments and wait for /readyz."""
        state = self._load_state()
        rec = state["procs"].get("kube-apiserver")
        if not rec:
            raise ControlPlaneError(f"no kube-apiserver recorded in {self._state_file()}")
        if _proc_start_time(rec["pid"]) == rec["start"]:
            raise ControlPlaneError("kube-apiserver is still running")
        self._launch("kube-apiserver", rec["args"][1:])
        self._wait(self._apiserver_ready, time.monotonic() + timeout, "kube-apiserver /readyz after restart")

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- queries
    def is_ready(self, timeout: float = 2) -> bool:
        """True when the kubeconfig exists and its server answers /readyz with ok."""
        try:
            cluster = self._kubeconfig_cluster()
            ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
            with urllib.request.urlopen(cluster["server"] + "/readyz", context=ctx, timeout=timeout) as resp:
                return resp.status == 200 and resp.read().strip() == b"ok"
        except (OSError, KeyError, ValueError, urllib.error.URLError, ssl.SSLError):
            return False

    def pids(self) -> dict[str, int]:
        """Live component pids by name (from pids.json, checked against the kernel's start times)."""
        procs = self._load_state()["procs"]
        return {n: r["pid"] for n, r in procs.items() if _proc_start_time(r["pid"]) == r["start"]}

    def leftover_pids(self) -> list[int]:
        """Every live process running one of our binaries with this state dir in its arguments.

        Why: proves a stop left nothing behind, and lets ``down`` clean up even when pids.json is stale or lost.
        """
        return [pid for _, pid in self._scan()]

    def _scan(self) -> list[tuple[str, int]]:
        marker = str(self.state_dir)
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            args = _cmdline(int(entry))
            if args and Path(args[0]).name in TOOLS and any(marker in a for a in args[1:]):
                if _proc_start_time(int(entry)) is not None:
                    found.append((Path(args[0]).name, int(entry)))
        return found

    def api_client(self) -> kubernetes.client.ApiClient:
        """A kubernetes.client.ApiClient for the admin credential (cluster-admin via system:masters)."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=self.kubeconfig, client_configuration=configuration)
        return client.ApiClient(configuration)

    # ---------------------------------------------------------------- internals: processes
    def _launch(self, name: str, args: list[str]) -> None:
        argv = [str(self.bin_dir / name), *args]
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        env = dict(os.environ, KWOK_WORKDIR=str(self.state_dir / "kwok"))
        env.pop("KUBECONFIG", None)  # every component gets an explicit kubeconfig
        preexec: Callable[[], None] | None = None
        if not self.detach and threading.current_thread() is threading.main_thread():
            preexec = _set_pdeathsig
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.state_dir,
                env=env, start_new_session=True, preexec_fn=preexec,
            )
        finally:
            log.close()
        self._procs[name] = proc
        state = self._load_state()
        start = _proc_start_time(proc.pid)
        state["procs"][name] = {"pid": proc.pid, "start": start, "args": argv}
        self._save_state(state)

    def _terminate(self, pids: list[int], timeout: float) -> None:
        """SIGTERM the process groups, SIGKILL whatever still runs after ``timeout``."""
        for pid in pids:
            self._signal(pid, signal.SIGTERM)
        end = time.monotonic() + timeout
        while time.monotonic() < end and any(self._alive(p) for p in pids):
            time.sleep(0.05)
        for pid in pids:
            if self._alive(pid):
                self._signal(pid, signal.SIGKILL)
        end = time.monotonic() + 5
        while time.monotonic() < end and any(self._alive(p) for p in pids):
            time.sleep(0.05)

    def _signal(self, pid: int, sig: int) -> None:
        try:
            os.killpg(pid, sig)  # each component leads its own session/process group
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def _alive(self, pid: int) -> bool:
        _reap(pid)
        return _proc_start_time(pid) is not None

    def _check_running(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise ControlPlaneError(f"{name} exited with {proc.returncode}:\n{self._log_tail(name)}")

    def _log_tail(self, name: str, lines: int = 25) -> str:
        try:
            return "\n".join((self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _wait(self, predicate: Callable[[], bool], deadline: float, what: str) -> None:
        while True:
            self._check_running()
            if predicate():
                return
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n}\n{self._log_tail(n, 10)}" for n in self._procs)
                raise ControlPlaneError(f"timed out waiting for {what}; state in {self.state_dir}\n{logs}")
            time.sleep(0.1)

    # ---------------------------------------------------------------- internals: HTTP
    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def _url(self, path: str) -> str:
        return f"https://127.0.0.1:{self._load_state()['ports']['apiserver']}{path}"

    @staticmethod
    def _http_ok(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def _apiserver_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self._url("/readyz"), context=self._ssl(), timeout=2) as resp:
                return resp.read().strip() == b"ok"
        except (OSError, urllib.error.URLError, ssl.SSLError):
            return False

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """One admin API call; None on 404. Errors raise."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self._url(path), data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self._ssl(), timeout=10) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def _get(self, path: str) -> dict[str, Any] | None:
        try:
            return self._request("GET", path)
        except (OSError, urllib.error.URLError):
            return None

    def _create_node(self) -> None:
        """The one fake Node kwok manages (selected by its annotation)."""
        self._request("POST", "/api/v1/nodes", {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64", "type": "kwok",
                },
            },
            "status": {"allocatable": NODE_ALLOCATABLE, "capacity": NODE_ALLOCATABLE},
        })

    def _node_schedulable(self) -> bool:
        """Ready, and nodelifecycle removed the not-ready taint every new Node gets at admission."""
        node = self._get(f"/api/v1/nodes/{NODE_NAME}")
        if not node:
            return False
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))
        taints = [t["key"] for t in node["spec"].get("taints", [])]
        return ready and not any(k.startswith("node.kubernetes.io/") for k in taints)

    # ---------------------------------------------------------------- internals: config
    def _write_pki(self) -> None:
        """CA, apiserver serving cert, client certs per component, service-account signing key (openssl CLI)."""
        p = self.pki
        (p / "openssl.cnf").write_text(
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n"
            "[ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign,digitalSignature\n"
            "subjectKeyIdentifier = hash\n"
            "[server]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage = serverAuth\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
            "subjectAltName = IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
            "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
            "[client]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage = clientAuth\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
        )
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc", "-days", "3650"]

        def openssl(*args: str) -> None:
            res = subprocess.run(["openssl", *args], cwd=p, capture_output=True, text=True)
            if res.returncode:
                raise ControlPlaneError(f"openssl {args[0]} failed: {res.stderr.strip()}")

        openssl("req", "-x509", "-new", "-config", "openssl.cnf", "-extensions", "ca", *ec,
                "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=multisite-operator-test-ca")
        certs = {
            "apiserver": ("server", "/CN=kube-apiserver"),
            "admin": ("client", "/O=system:masters/CN=kubernetes-admin"),
            "kube-controller-manager": ("client", "/CN=system:kube-controller-manager"),
            "kube-scheduler": ("client", "/CN=system:kube-scheduler"),
        }
        for name, (ext, subj) in certs.items():
            openssl("req", "-x509", "-new", "-config", "openssl.cnf", "-extensions", ext, *ec,
                    "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", subj, "-CA", "ca.crt", "-CAkey", "ca.key")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "sa.key")
        openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        for name in ("admin", "kube-controller-manager", "kube-scheduler"):
            self._write_kubeconfig(self.state_dir / f"{name}.kubeconfig", user=name, embed=False)

    def _write_kubeconfig(self, path: Path, user: str = "admin", embed: bool = True) -> None:
        """Kubeconfig for ``user``; the one handed out embeds its certs so it stands alone (and is 0600)."""
        port = self._load_state()["ports"]["apiserver"]

        def field(key: str, file: Path) -> str:
            if embed:
                return f"{key}-data: {base64.b64encode(file.read_bytes()).decode()}"
            return f"{key}: {file}"

        text = (
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: multisite-test\n  cluster:\n    server: https://127.0.0.1:{port}\n"
            f"    {field('certificate-authority', self.pki / 'ca.crt')}\n"
            f"users:\n- name: {user}\n  user:\n"
            f"    {field('client-certificate', self.pki / f'{user}.crt')}\n"
            f"    {field('client-key', self.pki / f'{user}.key')}\n"
            f"contexts:\n- name: multisite-test\n  context:\n    cluster: multisite-test\n    user: {user}\n"
            "current-context: multisite-test\n"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        tmp.replace(path)

    def _kubeconfig_cluster(self) -> dict[str, str]:
        import yaml

        with open(self.kubeconfig) as f:
            cfg = yaml.safe_load(f)
        return cfg["clusters"][0]["cluster"]

    def _etcd_args(self, ports: dict[str, int]) -> list[str]:
        client, peer = f"http://127.0.0.1:{ports['etcd']}", f"http://127.0.0.1:{ports['etcd_peer']}"
        return [
            "--name", "default", "--data-dir", str(self.state_dir / "etcd"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"default={peer}",
            "--unsafe-no-fsync",  # throwaway data: durability costs benchmark time for nothing
            "--log-level", "warn",
        ]

    def _apiserver_args(self, ports: dict[str, int]) -> list[str]:
        p = self.pki
        return [
            "--etcd-servers", f"http://127.0.0.1:{ports['etcd']}",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(ports["apiserver"]),
            "--cert-dir", str(self.state_dir / "apiserver"),
            "--tls-cert-file", str(p / "apiserver.crt"), "--tls-private-key-file", str(p / "apiserver.key"),
            "--client-ca-file", str(p / "ca.crt"),
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(p / "sa.pub"),
            "--service-account-signing-key-file", str(p / "sa.key"),
            "--authorization-mode", "Node,RBAC",
            "--service-cluster-ip-range", SERVICE_CIDR,
            # The `kubernetes` Service cannot point at a loopback address; nothing in this cluster needs it.
            "--endpoint-reconciler-type", "none",
            "--profiling=false",
        ]

    def _component_args(self, name: str) -> list[str]:
        kubeconfig = str(self.state_dir / f"{name}.kubeconfig")
        if name == "kube-controller-manager":
            return [
                "--kubeconfig", kubeconfig,
                "--service-account-private-key-file", str(self.pki / "sa.key"),
                "--root-ca-file", str(self.pki / "ca.crt"),
                "--cluster-signing-cert-file", str(self.pki / "ca.crt"),
                "--cluster-signing-key-file", str(self.pki / "ca.key"),
                "--use-service-account-credentials",
                "--leader-elect=false", "--secure-port", "0",
                # Keep node-lifecycle-controller: it lifts the not-ready taint once kwok marks the Node Ready.
                "--controllers", "*,-node-ipam-controller,-cloud-node-lifecycle-controller,"
                                 "-node-route-controller,-service-lb-controller",
                "--node-monitor-period", "1s",
                # A kwok starved of CPU during a benchmark on 2 cores must not turn the only Node NotReady.
                "--node-monitor-grace-period", "2m",
                "--kube-api-qps", "200", "--kube-api-burst", "400",  # defaults (20/30) throttle benchmarks
            ]
        if name == "kube-scheduler":
            return ["--kubeconfig", kubeconfig, "--leader-elect=false", "--secure-port", "0",
                    "--kube-api-qps", "200", "--kube-api-burst", "400"]
        if name == "kwok":
            return [
                "--kubeconfig", str(self.state_dir / "admin.kubeconfig"),
                "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
                "--config", str(self.state_dir / "kwok-stages.yaml"),
                "--cidr", KWOK_POD_CIDR, "--node-ip", "10.255.0.1",
                "--node-lease-duration-seconds", "40",  # renew the Node's Lease like a kubelet (off by default)
            ]
        raise ValueError(name)


# -------------------------------------------------------------------- CLI
def _usage(cp: ControlPlane) -> str:
    return (
        f"control plane {cp.release} ready at {cp.server}\n"
        f"  export KUBECONFIG={cp.kubeconfig}\n"
        f"  kubectl: {cp.kubectl}\n"
        f"  logs: {cp.logs}/\n"
        + ("  stop with: make cluster-down" if cp.state_dir == DEFAULT_STATE_DIR
           else f"  stop with: {sys.argv[0]} down --state-dir {cp.state_dir}")
    )


def main(argv: list[str] | None = None) -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", type=Path, help=f"default {DEFAULT_STATE_DIR}")
    common.add_argument("--kubeconfig", type=Path,
                        help=f"default {DEFAULT_KUBECONFIG}, or <state-dir>/kubeconfig with --state-dir")
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", parents=[common], help="start in the background (reuses a running one)")
    up.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops it")
    sub.add_parser("down", parents=[common], help="stop it (also with stale or lost pid files)")
    sub.add_parser("status", parents=[common], help="exit 0 if the kubeconfig answers /readyz")
    sub.add_parser("build", help="build the binaries into the cache")
    args = parser.parse_args(argv)

    if args.command == "build":
        build()
        return 0
    if args.state_dir:
        cp = ControlPlane(args.state_dir, args.kubeconfig, detach=True)
    else:
        cp = ControlPlane(DEFAULT_STATE_DIR, args.kubeconfig or DEFAULT_KUBECONFIG, detach=True)
    if args.command == "status":
        ready = cp.is_ready()
        pids = cp.pids()
        print(f"{'ready' if ready else 'not ready'}; kubeconfig {cp.kubeconfig}; processes {pids or 'none'}")
        return 0 if ready else 1
    if args.command == "down":
        cp.stop()
        left = cp.leftover_pids()
        Path(cp.kubeconfig).unlink(missing_ok=True)
        print("control plane stopped" if not left else f"still running: {left}")
        return 0 if not left else 1
    # up
    if cp.is_ready():
        print("already running (reused)\n" + _usage(cp))
        return 0
    Path(cp.kubeconfig).unlink(missing_ok=True)  # never leave a kubeconfig pointing at a dead cluster
    if args.foreground:
        cp.detach = False
    seconds = cp.start()
    print(f"started in {seconds:.1f} s\n" + _usage(cp))
    if args.foreground:
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            cp.stop()
            Path(cp.kubeconfig).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
