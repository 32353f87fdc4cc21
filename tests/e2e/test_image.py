"""The operator image, built by `make image` (a prerequisite of `make test`) and run as an engine runs it.

Why: parsing the Dockerfile (tests/unit/test_dockerfile.py) never showed that it builds; the first real build failed
on a user name Debian already uses. Here podman runs the built image the way the README installs it: read-only root
filesystem, every capability dropped, no privilege escalation, uid 10001, only the kubeconfig mounted (a copy
readable by that user alone), `--network host` whose host is a private network namespace with the control plane's
port forwarded into it (tests/image/netns.py), no image pull. The example must reach Ready and Populated, the image's
own HEALTHCHECK must answer healthy, `/metrics` must answer, and SIGTERM must stop it cleanly and quickly.

The image is built outside pytest (building needs the package registries; this test needs no outside network). If it
is absent the test fails saying how to build it; MULTISITE_SKIP_IMAGE_TEST=1 skips it explicitly (CI never sets it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import wait_for
from image.netns import PrivateNetwork

from harness.cluster import ROOT
from harness.project import apply_example_secrets, create_project, example_project, wait_condition

IMAGE = os.environ.get("MULTISITE_IMAGE", "localhost/multisite-operator:dev")
CONTAINERS_CONF = ROOT / "tests" / "image" / "containers.conf"
UID = 10001
# Longer than the operator needs on an idle machine (~0.3 s) but inside podman's own 10 s stop timeout.
STOP_WITHIN_S = 8.0


def podman(*args: str, prefix: list[str] | None = None, timeout: float = 60, check: bool = True
           ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    done = subprocess.run([*(prefix or []), "podman", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)
    if check:
        assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def image_config() -> dict:
    """The built image's config; fails (not skips) when podman or the image is missing."""
    if os.environ.get("MULTISITE_SKIP_IMAGE_TEST") == "1":
        pytest.skip("MULTISITE_SKIP_IMAGE_TEST=1")
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run `make image` (a prerequisite of `make test`), which installs it")
    found = podman("image", "inspect", IMAGE, check=False)
    if found.returncode != 0:
        pytest.fail(f"the image {IMAGE} is absent: build it with `make image` (a prerequisite of `make test`)")
    return json.loads(found.stdout)[0]["Config"]


@pytest.fixture
def network(cluster) -> Iterator[PrivateNetwork]:
    net = PrivateNetwork()
    try:
        net.forward(int(cluster.server.rsplit(":", 1)[1]))
        yield net
    finally:
        net.close()


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def http_get(net: PrivateNetwork, port: int, path: str) -> tuple[int, str]:
    """A plain HTTP/1.0 GET to 127.0.0.1:port inside the container's network namespace."""
    with net.connect(port) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), body


def test_the_image_runs_the_example_to_ready_confined_and_stops_cleanly(
        image_config, cluster, crd, namespace, api_client, network, tmp_path):
    # The kubeconfig as a platform engineer would hand it over: a copy only uid 10001 may read.
    kubeconfig = tmp_path / "kubeconfig"
    shutil.copyfile(cluster.kubeconfig, kubeconfig)
    os.chown(kubeconfig, UID, UID)
    kubeconfig.chmod(0o400)
    name = f"multisite-image-test-{uuid.uuid4().hex[:8]}"
    # The image's own defaults (liveness :8080, metrics :9090, JSON logs), narrowed to this test's namespace.
    command = [*image_config["Cmd"], "--namespace", namespace]
    podman("run", "--detach", "--name", name, "--pull=never", "--network", "host",
           "--read-only", "--cap-drop=ALL", "--security-opt", "no-new-privileges",
           "--volume", f"{kubeconfig}:/etc/multisite-operator/kubeconfig:ro",
           "--env", "KUBECONFIG=/etc/multisite-operator/kubeconfig",
           IMAGE, *command, prefix=network.nsenter())
    try:
        state = json.loads(podman("inspect", name).stdout)[0]
        pid = state["State"]["Pid"]
        assert state["Config"]["User"] == f"{UID}:{UID}" and state["HostConfig"]["ReadonlyRootfs"] is True
        status = proc_status(pid)  # the kernel's view of the operator process, not podman's
        assert status["Uid"].split() == [str(UID)] * 4 and status["Gid"].split() == [str(UID)] * 4, status["Uid"]
        assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0, "all capabilities dropped"
        assert status["NoNewPrivs"] == "1"
        written = podman("exec", name, "touch", "/usr/local/x", check=False, prefix=network.nsenter())
        assert written.returncode != 0 and "Read-only file system" in written.stderr

        # The image's HEALTHCHECK (python -> 127.0.0.1:8080/healthz) answers healthy once the operator is up.
        def healthy() -> bool:
            # In the namespace too: with host networking `podman exec` joins the caller's network, not the container's.
            done = podman("healthcheck", "run", name, check=False, timeout=30, prefix=network.nsenter())
            return done.returncode == 0 or print(f"healthcheck: {done.returncode} {done.stdout} {done.stderr[-500:]}")

        wait_for(healthy, timeout=90, interval=0.5, message="podman healthcheck run")

        apply_example_secrets(api_client, namespace)
        create_project(api_client, namespace, example_project())
        wait_condition(api_client, namespace, "example", "Ready", "True", timeout=120)
        wait_condition(api_client, namespace, "example", "Populated", "True", timeout=120)

        code, metrics = http_get(network, 9090, "/metrics")
        assert code == 200
        changed = re.search(r'^multisite_reconciles_total\{result="changed"\} (\S+)$', metrics, re.M)
        assert changed and float(changed[1]) >= 1, "the reconciles that created the example are counted"
        assert re.search(r"^multisite_projects (\S+)$", metrics, re.M)[1] == "1.0"

        start = time.monotonic()
        podman("kill", "--signal", "TERM", name)
        exit_code = int(podman("wait", name, timeout=30).stdout.strip())
        stopped_in = time.monotonic() - start
        print(f"image: SIGTERM to exit {stopped_in:.2f} s, exit code {exit_code}")
        assert exit_code == 0, f"exit code {exit_code} after SIGTERM"
        assert stopped_in < STOP_WITHIN_S, f"SIGTERM took {stopped_in:.1f} s"

        logged = podman("logs", name)
        logs = logged.stdout + logged.stderr
        lines = [line for line in logs.splitlines() if line.strip()]
        assert lines, "the operator logged nothing"
        for line in lines:
            json.loads(line)  # --log-format json: one object per line, nothing else on stdout/stderr
        assert not any("Traceback" in line for line in lines), "no traceback (failures are logged in `exc`)"
    finally:
        logged = podman("logs", name, check=False)  # printed: pytest shows it when the test fails
        print(f"--- container log ---\n{logged.stdout[-4000:]}{logged.stderr[-4000:]}")
        podman("rm", "--force", "--time", "0", name, check=False)
