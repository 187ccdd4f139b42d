"""``pods/log`` on the devcluster: kubectl logs and the official client read what a
:class:`~devcluster.handlers.PodLogSource` holds, with upstream's container rules, ``--previous``,
``--tail``, ``limitBytes``, ``follow``, ``timestamps``, ``sinceSeconds`` and ``sinceTime`` on
the CRI-format log a container runtime writes; a simulated pod's log is empty.

The pods whose logs come from the in-test source are bound to a node no simulated kubelet runs
(``spec.nodeName: elsewhere``), so the container statuses the test writes stay as written, as a
real kubelet's would.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dc_support import KUBECTL, admin_headers, body_of, kubectl, needs_kubectl
from kubernetes import client
from support.waiting import wait_for

from devcluster import DevCluster
from devcluster.localpods.logs import encode_entry, format_time

pytestmark = needs_kubectl

TEN_LINES = b"".join(b"line %d\n" % i for i in range(1, 11))


def cri(data: bytes, stream: str = "stdout") -> bytes:
    """``data`` as a container runtime writes it: an entry per line, stamped now."""
    now = time.time_ns()
    return b"".join(
        encode_entry(now, stream, not line.endswith(b"\n"), line.removesuffix(b"\n"))
        for line in data.splitlines(keepends=True)
    )


class _Logs:
    """An in-test log source: ``(namespace, pod, container, previous) -> bytes`` in the CRI
    format; ``put`` and ``append`` take what the program printed and stamp it now, ``write``
    takes entries."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data: dict[tuple[str, str, str, bool], bytes] = {}

    def put(self, ns: str, pod: str, container: str, data: bytes, previous: bool = False) -> None:
        with self.lock:
            self.data[(ns, pod, container, previous)] = cri(data)

    def append(self, ns: str, pod: str, container: str, data: bytes) -> None:
        self.write(ns, pod, container, cri(data))

    def write(self, ns: str, pod: str, container: str, entries: bytes) -> None:
        with self.lock:
            key = (ns, pod, container, False)
            self.data[key] = self.data.get(key, b"") + entries

    def read(self, namespace: str, name: str, container: str, *, previous: bool) -> bytes | None:
        with self.lock:
            return self.data.get((namespace, name, container, previous))


@pytest.fixture
def logs(devcluster: DevCluster) -> Iterator[_Logs]:
    source = _Logs()
    before = devcluster.api.pod_logs
    devcluster.api.pod_logs = source
    try:
        yield source
    finally:
        devcluster.api.pod_logs = before


def _running(name: str, *, restarted: bool = False) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": name,
        "image": "busybox:1.36",
        "imageID": "",
        "ready": True,
        "started": True,
        "restartCount": 1 if restarted else 0,
        "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
    }
    if restarted:
        status["lastState"] = {
            "terminated": {
                "exitCode": 1,
                "reason": "Error",
                "startedAt": "2026-01-01T00:00:00Z",
                "finishedAt": "2026-01-01T00:00:01Z",
                "containerID": "containerd://prev",
            }
        }
    return status


def _pod_elsewhere(
    api: client.ApiClient, ns: str, name: str, containers: list[str], *, restarted: bool = False
) -> None:
    """A Running pod bound to a node the devcluster does not run, with the given statuses."""
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": name},
            "spec": {
                "nodeName": "elsewhere",
                "containers": [{"name": c, "image": "busybox:1.36"} for c in containers],
            },
        },
    )
    pod = core.read_namespaced_pod(name, ns)
    pod.status = client.V1PodStatus(
        phase="Running",
        container_statuses=[_running(c, restarted=restarted) for c in containers],
    )
    core.replace_namespaced_pod_status(name, ns, pod)


def _stop_container(api: client.ApiClient, ns: str, name: str) -> None:
    core = client.CoreV1Api(api)
    pod = core.read_namespaced_pod(name, ns)
    raw = api.sanitize_for_serialization(pod)
    (status,) = raw["status"]["containerStatuses"]
    status["state"] = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    status["ready"] = False
    raw["status"]["phase"] = "Succeeded"
    core.replace_namespaced_pod_status(name, ns, raw)


def test_kubectl_logs_reads_the_container_tail_and_previous_run(
    kubeconfig_path: Path, namespace: str, api_client: client.ApiClient, logs: _Logs
) -> None:
    _pod_elsewhere(api_client, namespace, "app", ["main", "side"], restarted=True)
    logs.put(namespace, "app", "main", TEN_LINES)
    logs.put(namespace, "app", "side", b"side car\n")
    logs.put(namespace, "app", "main", b"crashed\n", previous=True)

    # kubectl picks the first container itself when none is named (and says so)
    proc = kubectl(kubeconfig_path, "-n", namespace, "logs", "app")
    assert proc.stdout.encode() == TEN_LINES
    assert 'Defaulted container "main" out of: main, side' in proc.stderr

    out = kubectl(kubeconfig_path, "-n", namespace, "logs", "app", "-c", "main", "--tail", "5")
    assert out.stdout.encode() == b"line 6\nline 7\nline 8\nline 9\nline 10\n"
    out = kubectl(kubeconfig_path, "-n", namespace, "logs", "app", "-c", "side")
    assert out.stdout == "side car\n"
    out = kubectl(kubeconfig_path, "-n", namespace, "logs", "app", "-c", "main", "--previous")
    assert out.stdout == "crashed\n"
    out = kubectl(
        kubeconfig_path, "-n", namespace, "logs", "app", "-c", "main", "--limit-bytes", "12"
    )
    assert out.stdout == "line 1\nline "

    bad = kubectl(kubeconfig_path, "-n", namespace, "logs", "app", "-c", "nope", check=False)
    assert bad.returncode != 0
    assert "container nope is not valid for pod app" in bad.stderr


def test_the_official_client_gets_upstreams_answers(
    namespace: str, api_client: client.ApiClient, logs: _Logs
) -> None:
    core = client.CoreV1Api(api_client)
    _pod_elsewhere(api_client, namespace, "two", ["a", "b"])
    _pod_elsewhere(api_client, namespace, "one", ["main"])
    logs.put(namespace, "one", "main", TEN_LINES)

    assert core.read_namespaced_pod_log("one", namespace) == TEN_LINES.decode()
    assert core.read_namespaced_pod_log("one", namespace, tail_lines=2) == "line 9\nline 10\n"
    assert core.read_namespaced_pod_log("one", namespace, tail_lines=0) == ""
    assert core.read_namespaced_pod_log("one", namespace, limit_bytes=4) == "line"
    # every line was written just now
    assert core.read_namespaced_pod_log("one", namespace, timestamps=True, since_seconds=5)

    cases = [
        (
            {"name": "two"},
            400,
            "a container name must be specified for pod two, choose one of: [a b]",
        ),
        ({"name": "two", "container": "c"}, 400, "container c is not valid for pod two"),
        (
            {"name": "one", "previous": True},
            400,
            'previous terminated container "main" in pod "one" not found',
        ),
        ({"name": "gone"}, 404, 'pods "gone" not found'),
    ]
    for kwargs, code, message in cases:
        with pytest.raises(client.ApiException) as e:
            core.read_namespaced_pod_log(namespace=namespace, **kwargs)
        assert (e.value.status, body_of(e.value)["message"]) == (code, message), kwargs


def test_a_simulated_pod_prints_nothing(
    kubeconfig_path: Path, namespace: str, api_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(
        namespace,
        {"metadata": {"name": "sim"}, "spec": {"containers": [{"name": "main", "image": "nginx"}]}},
    )
    wait_for(
        lambda: core.read_namespaced_pod("sim", namespace).status.phase == "Running",
        what="the simulated pod to run",
    )
    out = kubectl(kubeconfig_path, "-n", namespace, "logs", "sim")
    assert (out.returncode, out.stdout) == (0, "")
    assert core.read_namespaced_pod_log("sim", namespace) == ""


def test_follow_streams_appended_output_until_the_container_stops(
    devcluster: DevCluster, namespace: str, api_client: client.ApiClient, logs: _Logs
) -> None:
    _pod_elsewhere(api_client, namespace, "tailme", ["main"])
    logs.put(namespace, "tailme", "main", b"first\n")
    conn = http.client.HTTPConnection("127.0.0.1", devcluster.port, timeout=10)
    conn.request(
        "GET",
        f"/api/v1/namespaces/{namespace}/pods/tailme/log?follow=true",
        headers=admin_headers(devcluster),
    )
    resp = conn.getresponse()
    assert (resp.status, resp.getheader("Transfer-Encoding")) == (200, "chunked")
    assert resp.read1(100) == b"first\n"
    logs.append(namespace, "tailme", "main", b"second\n")
    assert resp.read1(100) == b"second\n"
    logs.append(namespace, "tailme", "main", b"last words\n")
    _stop_container(api_client, namespace, "tailme")
    assert resp.read() == b"last words\n"  # the stream ends: the container has stopped
    conn.close()


def test_kubectl_logs_follow(
    kubeconfig_path: Path, namespace: str, api_client: client.ApiClient, logs: _Logs
) -> None:
    _pod_elsewhere(api_client, namespace, "tailme", ["main"])
    logs.put(namespace, "tailme", "main", b"hello\n")
    proc = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(kubeconfig_path), "-n", namespace, "logs", "-f", "tailme"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"hello\n"
        logs.append(namespace, "tailme", "main", b"world\n")
        assert proc.stdout.readline() == b"world\n"
        _stop_container(api_client, namespace, "tailme")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


SECOND = 1_000_000_000


def _get(cluster: DevCluster, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=10)
    try:
        conn.request("GET", path, headers=admin_headers(cluster))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_timestamps_and_since_go_by_the_times_the_runtime_wrote(
    devcluster: DevCluster,
    kubeconfig_path: Path,
    namespace: str,
    api_client: client.ApiClient,
    logs: _Logs,
) -> None:
    core = client.CoreV1Api(api_client)
    _pod_elsewhere(api_client, namespace, "clock", ["main"])
    now = time.time_ns() // SECOND * SECOND
    old = now - 3600 * SECOND
    logs.write(
        namespace,
        "clock",
        "main",
        encode_entry(old, "stdout", False, b"an hour ago")
        + encode_entry(old + 1, "stderr", False, b"to stderr")
        + encode_entry(now - 10 * SECOND, "stdout", True, b"recent ")  # a line in two parts
        + encode_entry(now - 9 * SECOND, "stdout", False, b"and joined"),
    )
    stamp_old, stamp_next, stamp_recent = (
        format_time(old),
        format_time(old + 1),
        format_time(now - 10 * SECOND),
    )

    everything = "an hour ago\nto stderr\nrecent and joined\n"
    assert core.read_namespaced_pod_log("clock", namespace) == everything
    stamped = f"{stamp_old} an hour ago\n{stamp_next} to stderr\n{stamp_recent} recent and joined\n"
    assert core.read_namespaced_pod_log("clock", namespace, timestamps=True) == stamped
    assert core.read_namespaced_pod_log("clock", namespace, since_seconds=60) == (
        "recent and joined\n"
    )
    assert core.read_namespaced_pod_log("clock", namespace, since_seconds=7200) == everything
    # the last entry only: the second part of a line, with its own time
    assert core.read_namespaced_pod_log("clock", namespace, tail_lines=1, timestamps=True) == (
        f"{format_time(now - 9 * SECOND)} and joined\n"
    )
    assert (
        core.read_namespaced_pod_log("clock", namespace, timestamps=True, limit_bytes=25)
        == (stamped[:25])
    )

    # sinceTime: at or after, to the nanosecond
    base = f"/api/v1/namespaces/{namespace}/pods/clock/log"
    assert _get(devcluster, f"{base}?sinceTime={stamp_old}") == (200, everything.encode())
    assert _get(devcluster, f"{base}?sinceTime={stamp_next}") == (
        200,
        b"to stderr\nrecent and joined\n",
    )

    out = kubectl(kubeconfig_path, "-n", namespace, "logs", "clock", "--since=1m", "--timestamps")
    assert out.stdout == f"{stamp_recent} recent and joined\n"
    after_old = format_time(old + SECOND)
    out = kubectl(kubeconfig_path, "-n", namespace, "logs", "clock", "--since-time", after_old)
    assert out.stdout == "recent and joined\n"
    out = kubectl(kubeconfig_path, "-n", namespace, "logs", "clock", "--since-time", stamp_old)
    assert out.stdout == everything


def test_bad_log_options_are_refused_as_upstream(
    devcluster: DevCluster, namespace: str, api_client: client.ApiClient, logs: _Logs
) -> None:
    _pod_elsewhere(api_client, namespace, "opts", ["main"])
    logs.put(namespace, "opts", "main", b"hello\n")
    base = f"/api/v1/namespaces/{namespace}/pods/opts/log"
    cases = [
        (
            "sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z",
            422,
            'PodLogOptions "opts" is invalid: : Forbidden: at most one of `sinceTime` or '
            "`sinceSeconds` may be specified",
        ),
        (
            "sinceSeconds=0",
            422,
            'PodLogOptions "opts" is invalid: sinceSeconds: Invalid value: 0: must be greater '
            "than 0",
        ),
        (
            "tailLines=-1&limitBytes=0",
            422,
            'PodLogOptions "opts" is invalid: [tailLines: Invalid value: -1: must be greater '
            "than or equal to 0, limitBytes: Invalid value: 0: must be greater than 0]",
        ),
        (
            "sinceTime=yesterday",
            400,
            "sinceTime: invalid value 'yesterday': must be an RFC3339 time",
        ),
        ("sinceSeconds=soon", 400, "sinceSeconds: invalid value 'soon': must be an integer"),
    ]
    for query, code, message in cases:
        status, body = _get(devcluster, f"{base}?{query}")
        assert (status, json.loads(body)["message"]) == (code, message), query
    # the options are checked before the pod is looked for, as upstream
    status, body = _get(devcluster, f"/api/v1/namespaces/{namespace}/pods/gone/log?sinceSeconds=-3")
    assert (status, json.loads(body)["reason"]) == (422, "Invalid")


def test_follow_with_timestamps_joins_a_line_written_in_parts(
    devcluster: DevCluster, namespace: str, api_client: client.ApiClient, logs: _Logs
) -> None:
    _pod_elsewhere(api_client, namespace, "parts", ["main"])
    t = time.time_ns()
    logs.write(namespace, "parts", "main", encode_entry(t, "stdout", False, b"first"))
    conn = http.client.HTTPConnection("127.0.0.1", devcluster.port, timeout=10)
    conn.request(
        "GET",
        f"/api/v1/namespaces/{namespace}/pods/parts/log?follow=true&timestamps=true",
        headers=admin_headers(devcluster),
    )
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read1(100) == f"{format_time(t)} first\n".encode()
    # an entry the runtime is still writing is not sent until its newline is there
    whole = encode_entry(t + 1, "stderr", True, b"long li")
    logs.write(namespace, "parts", "main", whole[:-4])
    logs.write(namespace, "parts", "main", whole[-4:])
    assert resp.read1(100) == f"{format_time(t + 1)} long li".encode()
    logs.write(namespace, "parts", "main", encode_entry(t + 2, "stderr", False, b"ne"))
    assert resp.read1(100) == b"ne\n"  # the rest of the line: no second timestamp
    _stop_container(api_client, namespace, "parts")
    assert resp.read() == b""
    conn.close()


def test_view_may_read_logs_and_others_may_not(
    kubeconfig_path: Path, namespace: str, api_client: client.ApiClient
) -> None:
    kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "create",
        "rolebinding",
        "viewers",
        "--clusterrole=view",
        "--user=viewer",
    )

    def can_i(user: str, *what: str) -> str:
        proc = kubectl(
            kubeconfig_path, "-n", namespace, "auth", "can-i", *what, "--as", user, check=False
        )
        return proc.stdout.strip()

    assert can_i("viewer", "get", "pods/log") == "yes"
    assert can_i("viewer", "get", "pods", "--subresource=log") == "yes"
    assert can_i("stranger", "get", "pods/log") == "no"
    kubectl(kubeconfig_path, "-n", namespace, "run", "p", "--image=nginx")
    # the scheduler and the simulated kubelet start the Pod a moment later; until its
    # container runs, pods/log answers 400 "is not available" to anyone
    core = client.CoreV1Api(api_client)
    wait_for(
        lambda: core.read_namespaced_pod("p", namespace).status.phase == "Running",
        what="pod p running",
    )
    out = kubectl(kubeconfig_path, "-n", namespace, "--as", "viewer", "logs", "p")
    assert out.stdout == ""
    # a user who may read pods but not their logs is refused the subresource itself
    kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "create",
        "role",
        "pod-reader",
        "--verb=get",
        "--resource=pods",
    )
    kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "create",
        "rolebinding",
        "readers",
        "--role=pod-reader",
        "--user=reader",
    )
    denied = kubectl(kubeconfig_path, "-n", namespace, "--as", "reader", "logs", "p", check=False)
    assert (
        f'pods "p" is forbidden: User "reader" cannot get resource "pods/log" in API group "" '
        f'in the namespace "{namespace}"'
    ) in denied.stderr
