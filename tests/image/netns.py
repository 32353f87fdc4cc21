"""A private network namespace for a container, with the control plane's API port forwarded into it.

Why: the image test runs the operator with `--network host` as a user would on a laptop, but the host's network is
shared with other programs (ports 8080/9090 may be taken, the image's defaults listen on every interface). So the
container's "host" is a namespace of its own: only `lo`, nothing but loopback reachable, its own 8080 and 9090, and
the API server's port forwarded from the namespace's 127.0.0.1 to the test's (the kubeconfig stays unchanged, TLS
passes through untouched). Works whether pytest runs in the machine's network namespace or in a private one made
with `unshare -n` (it nests). Needs root (CAP_SYS_ADMIN), as podman does.

A socket belongs to the network namespace of the thread that created it, whatever thread uses it later: sockets
inside the namespace are created by a short-lived thread that first joins it with setns(2).
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import subprocess
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000


def _in_namespace(path: str, fn: Callable[[], T]) -> T:
    """Run `fn` on a thread that has joined the network namespace at `path` (the caller's thread stays put)."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns({path})")
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            error.append(exc)
        finally:
            os.close(fd)

    thread = threading.Thread(target=run, name="netns-join")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


class PrivateNetwork:
    """`unshare -n` holding a namespace with `lo` up; `forward(port)` makes 127.0.0.1:port reach the caller's."""

    def __init__(self) -> None:
        self._holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", "ip link set lo up && echo up && exec sleep infinity"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        assert self._holder.stdout is not None
        line = self._holder.stdout.readline().strip()  # returns once `ip` ran (or the holder died)
        if line != "up":
            self.close()
            raise RuntimeError(f"could not make a network namespace: {self._holder.stderr.read() if self._holder.stderr else ''}")
        self.path = f"/proc/{self._holder.pid}/ns/net"
        self._listeners: list[socket.socket] = []
        self._closed = threading.Event()

    def nsenter(self) -> list[str]:
        """A command prefix that runs a program in the namespace."""
        return ["nsenter", f"--net={self.path}"]

    def connect(self, port: int, timeout: float = 5) -> socket.socket:
        """A TCP connection to 127.0.0.1:port inside the namespace."""
        sock = _in_namespace(self.path, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sock.settimeout(timeout)
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            sock.close()
            raise
        return sock

    def forward(self, port: int) -> None:
        """Accept on 127.0.0.1:port inside the namespace and relay each connection to 127.0.0.1:port outside."""

        def listen() -> socket.socket:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen(64)
            return s

        listener = _in_namespace(self.path, listen)
        self._listeners.append(listener)
        threading.Thread(target=self._accept, args=(listener, port), name=f"netns-forward-{port}", daemon=True).start()

    def _accept(self, listener: socket.socket, port: int) -> None:
        while not self._closed.is_set():
            try:
                inner, _ = listener.accept()
            except OSError:
                return  # closed
            try:
                outer = socket.create_connection(("127.0.0.1", port), timeout=10)
            except OSError:
                inner.close()
                continue
            threading.Thread(target=self._relay, args=(inner, outer), daemon=True).start()

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        a.settimeout(None)
        b.settimeout(None)
        peers = {a: b, b: a}
        try:
            while not self._closed.is_set():
                ready, _, _ = select.select(list(peers), [], [], 1)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    peers[src].sendall(data)
        except OSError:
            return
        finally:
            a.close()
            b.close()

    def close(self) -> None:
        self._closed.set()
        for listener in getattr(self, "_listeners", []):
            listener.close()
        if self._holder.poll() is None:
            self._holder.kill()
        self._holder.wait(10)
        for stream in (self._holder.stdout, self._holder.stderr):
            if stream:
                stream.close()
