"""``kubectl port-forward`` to a local pod, end to end over ``pods/portforward``: HTTP through
the forwarded port (over the WebSocket-tunneled SPDY kubectl tries first, and over the plain
SPDY upgrade it falls back to), two connections at once, a port nothing listens on (kubectl
reports the pod's error and exits), a simulated pod, and RBAC (``create`` on
``pods/portforward`` is needed)."""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client  # type: ignore[import-untyped]
from local_pods_kit import pod_body, token_allowed, wait_ready
from support.port_forward import PortForward
from support.waiting import wait_for

from devcluster.server import DevCluster

pytestmark = pytest.mark.slow

KUBECTL = str(Path(sys.executable).parent / "kubectl")


@pytest.fixture()
def web_pod(core: client.CoreV1Api, namespace: str) -> str:
    body = pod_body("web", env=[{"name": "GREETING", "value": "hello through the tunnel"}])
    core.create_namespaced_pod(namespace, body)
    wait_ready(core, namespace, "web")
    return "web"


@pytest.fixture(params=["websocket", "spdy"])
def transport(request: pytest.FixtureRequest) -> str:
    """kubectl's first choice, and its fallback (forced: no WebSocket attempt)."""
    return str(request.param)


@pytest.fixture()
def forward() -> Iterator[list[PortForward]]:
    """Starts ``kubectl port-forward`` runs (``forward[0]`` ...) and kills them at the end."""
    started: list[PortForward] = []
    yield started
    for pf in started:
        pf.stop()


def _start(
    started: list[PortForward],
    cluster: DevCluster,
    pods_root: Path,
    namespace: str,
    *args: str,
    transport: str = "websocket",
    token: str | None = None,
) -> PortForward:
    kubeconfig = cluster.write_kubeconfig(pods_root / "kubeconfig")
    env = dict(os.environ)
    env["KUBECTL_PORT_FORWARD_WEBSOCKETS"] = "true" if transport == "websocket" else "false"
    extra = [f"--token={token}"] if token else []
    argv = [KUBECTL, "--kubeconfig", str(kubeconfig), *extra, "-n", namespace, "port-forward"]
    pf = PortForward([*argv, *args], env)
    started.append(pf)
    return pf


def _get(port: int, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        return int(answer.status), answer.read().decode()


def _raw_answer(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_http_through_the_forwarded_port_reaches_the_pod(
    cluster: DevCluster,
    pods_root: Path,
    namespace: str,
    web_pod: str,
    forward: list[PortForward],
    transport: str,
) -> None:
    pf = _start(
        forward, cluster, pods_root, namespace, f"pod/{web_pod}", ":8080", transport=transport
    )
    port = pf.local_port()
    assert _get(port, "/healthz") == (200, "ok")
    status, env = _get(port, "/env")
    assert status == 200
    assert '"GREETING": "hello through the tunnel"' in env
    assert pf.exited() is None, pf.output()  # still forwarding after the connections ended
    assert _get(port, "/healthz") == (200, "ok")


def test_two_connections_at_once(
    cluster: DevCluster,
    pods_root: Path,
    namespace: str,
    web_pod: str,
    forward: list[PortForward],
) -> None:
    pf = _start(forward, cluster, pods_root, namespace, f"pod/{web_pod}", ":8080")
    port = pf.local_port()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as first,
        socket.create_connection(("127.0.0.1", port), timeout=10) as second,
    ):
        first.sendall(b"GET /env HTTP/1.0\r\n")  # half a request: this connection stays open
        second.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        answer = _raw_answer(second)
        assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"ok"), answer
        first.sendall(b"\r\n")
        answer = _raw_answer(first)
        assert answer.startswith(b"HTTP/1.0 200") and b"GREETING" in answer, answer


def test_a_port_nothing_listens_on_is_reported_and_kubectl_exits(
    cluster: DevCluster,
    core: client.CoreV1Api,
    pods_root: Path,
    namespace: str,
    web_pod: str,
    forward: list[PortForward],
) -> None:
    pf = _start(forward, cluster, pods_root, namespace, f"pod/{web_pod}", ":9999")
    port = pf.local_port()  # kubectl listens before anything reaches the pod
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        assert conn.recv(100) == b""  # closed without an answer
    wait_for(lambda: pf.exited() is not None, what=pf.output, timeout=30)
    assert pf.process.returncode == 1, pf.output()
    uid = core.read_namespaced_pod(web_pod, namespace).metadata.uid
    stderr = pf.stderr.decode()
    assert f"error forwarding port 9999 to pod {uid}, uid : " in stderr, stderr
    assert "connection refused" in stderr, stderr
    assert "lost connection to pod" in stderr, stderr


def test_a_simulated_pod_has_nothing_to_forward_to(
    cluster: DevCluster,
    core: client.CoreV1Api,
    pods_root: Path,
    namespace: str,
    forward: list[PortForward],
) -> None:
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "simulated"},
            "spec": {"containers": [{"name": "web", "image": "nginx:1"}]},
        },
    )
    wait_for(
        lambda: core.read_namespaced_pod("simulated", namespace).status.phase == "Running",
        what="the simulated pod running",
    )
    pf = _start(forward, cluster, pods_root, namespace, "pod/simulated", ":80")
    wait_for(lambda: pf.exited() is not None, what=pf.output, timeout=30)
    assert pf.process.returncode == 1
    assert f"the devcluster does not run pod {namespace}/simulated" in pf.stderr.decode()


def test_port_forward_needs_create_on_pods_portforward(
    cluster: DevCluster,
    core: client.CoreV1Api,
    pods_root: Path,
    namespace: str,
    web_pod: str,
    forward: list[PortForward],
) -> None:
    token = token_allowed(core, namespace, "viewer", [
        {"apiGroups": [""], "resources": ["pods", "pods/portforward"], "verbs": ["get"]}])
    pf = _start(forward, cluster, pods_root, namespace, f"pod/{web_pod}", ":8080", token=token)
    wait_for(lambda: pf.exited() is not None, what=pf.output, timeout=30)
    assert pf.process.returncode == 1
    assert 'cannot create resource "pods/portforward"' in pf.stderr.decode(), pf.output()
