"""KubeApi retries what a busy or restarting API server answers (409, 429, 5xx, refused connections), and nothing
else: a real HTTP server on loopback answers, so the real client, serializer and error handling run."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import kopf
import pytest

from multisite_operator.kube import ApiError, Connection, KubeApi

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "ns"},
    "spec": {"replicas": 2},
}


class FakeApiServer(ThreadingHTTPServer):
    """Answers each request with the next scripted status; records what it was sent."""

    def __init__(self, statuses: list[int], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.statuses = list(statuses)
        self.requests: list[tuple[str, str, dict]] = []
        self.headers: list[dict[str, str]] = []


class _Handler(BaseHTTPRequestHandler):
    server: FakeApiServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        self.server.requests.append((self.command, self.path, body))
        self.server.headers.append(dict(self.headers))
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        payload = DEPLOYMENT if status == 200 else {
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status,
            "reason": "Conflict" if status == 409 else "Error",
            "message": "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified",
        }
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_PATCH = do_GET = do_DELETE = do_PUT = do_POST = _answer

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass


def _server(statuses: list[int]) -> Iterator[FakeApiServer]:
    server = FakeApiServer(statuses)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def connection(port: int) -> Connection:
    return Connection(kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}", token="t0ken"))


def _api(port: int, attempts: int = 6) -> KubeApi:
    return KubeApi(connection(port), attempts=attempts)


@pytest.fixture
def conflict_then_ok() -> Iterator[FakeApiServer]:
    yield from _server([409, 409, 200])


def test_apply_retries_409_conflict_until_it_succeeds(conflict_then_ok: FakeApiServer):
    api = _api(conflict_then_ok.server_address[1])
    assert api.apply_sync(DEPLOYMENT)["metadata"]["name"] == "web"
    sent = conflict_then_ok.requests
    assert [r[0] for r in sent] == ["PATCH"] * 3
    assert sent[0][1] == "/apis/apps/v1/namespaces/ns/deployments/web?fieldManager=multisite-operator&force=true"
    assert all(r[2] == DEPLOYMENT for r in sent)  # the same apply each time: nothing lost between attempts


@pytest.mark.parametrize("status", [429, 500, 503])
def test_overload_and_server_errors_are_retried(status: int):
    for server in _server([status, 200]):
        assert _api(server.server_address[1]).apply_sync(DEPLOYMENT)
        assert len(server.requests) == 2


@pytest.mark.parametrize("status", [400, 403, 422])
def test_client_errors_are_not_retried(status: int):
    """A rejected or forbidden write will not succeed by repeating it: it surfaces at once."""
    for server in _server([status, 200]):
        with pytest.raises(ApiError) as err:
            _api(server.server_address[1]).apply_sync(DEPLOYMENT)
        assert err.value.status == status and len(server.requests) == 1


def test_persistent_conflict_gives_up_after_the_attempts():
    for server in _server([409] * 10):
        with pytest.raises(ApiError) as err:
            _api(server.server_address[1], attempts=3).apply_sync(DEPLOYMENT)
        assert err.value.status == 409 and len(server.requests) == 3


def test_refused_connection_is_retried_until_the_server_is_back():
    """An API server restart refuses connections for a while; the call waits it out instead of failing."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = _api(port, attempts=8)
    result: dict[str, object] = {}

    def call() -> None:
        try:
            result["value"] = api.apply_sync(DEPLOYMENT)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            result["error"] = exc

    caller = threading.Thread(target=call)
    caller.start()
    # Let it be refused at least once, then start serving on that port.
    threading.Event().wait(0.3)
    assert caller.is_alive(), result
    server = FakeApiServer([200], port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        caller.join(30)
        assert "error" not in result, result.get("error")
        assert result["value"] == DEPLOYMENT
    finally:
        server.shutdown()
        server.server_close()


def test_requests_carry_the_credentials_and_say_what_their_body_is(conflict_then_ok: FakeApiServer):
    api = _api(conflict_then_ok.server_address[1])
    api.apply_sync(DEPLOYMENT)
    api.create_event_sync("ns", {"kind": "Event"})
    sent = conflict_then_ok.headers
    assert {h["Authorization"] for h in sent} == {"Bearer t0ken"}
    assert [h["Content-Type"] for h in sent] == ["application/apply-patch+yaml"] * 3 + ["application/json"]


def test_a_rotated_token_is_read_again_after_a_401():
    """The kubelet rotates a pod's service account token file: the first 401 makes KubeApi load its credentials
    again (kube.credentials reads the file on every call) and repeat the request once."""
    tokens = iter(["expired", "fresh"])
    for server in _server([401, 200]):
        port = server.server_address[1]
        api = KubeApi(Connection(lambda: kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}", token=next(tokens))))
        assert api.get_sync("apps/v1", "Deployment", "ns", "web")["metadata"]["name"] == "web"
        assert [h["Authorization"] for h in server.headers] == ["Bearer expired", "Bearer fresh"]
    for server in _server([401, 401, 200]):
        with pytest.raises(ApiError) as err:  # a second 401 is an answer: these credentials are not allowed
            KubeApi(connection(server.server_address[1])).get_sync("apps/v1", "Deployment", "ns", "web")
        assert err.value.status == 401 and len(server.requests) == 2


def test_credentials_come_from_the_service_account_in_a_pod_else_the_kubeconfig(tmp_path, monkeypatch):
    from multisite_operator import kube

    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("sa-token\n")
    monkeypatch.setattr(kube, "SERVICE_ACCOUNT", str(account))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    info = kube.credentials()
    assert (info.server, info.token, info.ca_path) == ("https://[fd00::1]:6443", "sa-token", None)
    (account / "token").write_text("rotated")
    assert kube.credentials().token == "rotated", "read again on every call: the kubelet rotates it"

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    config = tmp_path / "kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(config))
    context = {"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
               "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443"}}]}
    config.write_text(json.dumps({**context, "users": [{"name": "u", "user": {"token": "kc-token"}}]}))
    assert (kube.credentials().server, kube.credentials().token) == ("https://127.0.0.1:6443", "kc-token")
    exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "aws"}}
    config.write_text(json.dumps({**context, "users": [{"name": "u", "user": exec_user}]}))
    with pytest.raises(kopf.LoginError, match="does not run exec"):
        kube.credentials()
