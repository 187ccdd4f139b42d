"""A local pod's log, end to end: the program's stdout and stderr (in the bubblewrap sandbox
where it works) reach the run's log file as CRI entries of their own stream, and ``pods/log``
answers what the program printed, with timestamps and ``sinceSeconds`` / ``sinceTime``."""

from __future__ import annotations

import http.client
import re
import sys
import time

import pytest
from kubernetes import client  # type: ignore[import-untyped]
from local_pods_kit import pod_body, status_of
from support.waiting import wait_for

from devcluster.localpods.logs import format_time, parse_entries
from devcluster.server import DevCluster

pytestmark = pytest.mark.slow

PROGRAM = (
    "import os\n"
    "os.write(1, b'to stdout\\n')\n"
    "os.write(2, b'to stderr\\n')\n"
    "os.write(1, b'no newline')\n"
)
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"


def test_a_local_pods_log_keeps_its_streams_and_times(
    core: client.CoreV1Api, cluster: DevCluster, namespace: str
) -> None:
    body = pod_body("printer", probes={}, spec={"restartPolicy": "Never"})
    body["spec"]["containers"][0]["command"] = [sys.executable, "-c", PROGRAM]
    started = time.time_ns()
    core.create_namespaced_pod(namespace, body)
    wait_for(
        lambda: status_of(core, namespace, "printer").get("phase") == "Succeeded",
        what=lambda: f"the pod to succeed: {status_of(core, namespace, 'printer')}",
        timeout=20,
    )

    source = cluster.api.pod_logs
    assert source is not None
    entries, _ = parse_entries(source.read(namespace, "printer", "app", previous=False) or b"")
    assert sorted((e.stream, e.partial, e.content) for e in entries) == [
        ("stderr", False, b"to stderr\n"),
        ("stdout", False, b"to stdout\n"),
        ("stdout", True, b"no newline"),  # the stream ended without a newline
    ]
    assert all(started <= e.time_ns <= time.time_ns() for e in entries)

    text = core.read_namespaced_pod_log("printer", namespace)
    # what the program printed, in the file's order: the two streams are read apart, so an
    # unterminated stdout line may be followed by the stderr one (joined, as upstream)
    assert text == "".join(e.content.decode() for e in entries)
    assert sorted(text) == sorted("to stdout\nto stderr\nno newline")
    stamped = core.read_namespaced_pod_log("printer", namespace, timestamps=True)
    assert [re.sub(f"^{STAMP} ", "", line) for line in stamped.splitlines(keepends=True)] == (
        text.splitlines(keepends=True)
    )
    assert core.read_namespaced_pod_log("printer", namespace, since_seconds=3600) == text
    future = format_time(time.time_ns() + 3600 * 1_000_000_000)
    conn = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=10)
    try:
        conn.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods/printer/log?sinceTime={future}",
            headers={"Authorization": f"Bearer {cluster.admin_token}"},
        )
        answer = conn.getresponse()
        assert (answer.status, answer.read()) == (200, b"")
    finally:
        conn.close()
