"""Exec probes on the local kubelet: the command runs in the container's current run (its
files, its user), exit code 0 succeeds, a failure's message is the command's output, and a
command still running after ``timeoutSeconds`` fails as upstream's ``command "…" timed out``."""

from __future__ import annotations

import pytest
from kubernetes import client  # type: ignore[import-untyped]
from local_pods_kit import container_status, events_of, http, pod_body, status_of, wait_ready
from support.waiting import wait_for

pytestmark = pytest.mark.slow

STATE = {
    "env": [{"name": "APP_STATE", "value": "/state"}],
    "volumes": [{"name": "state", "emptyDir": {}}],
    "mounts": [{"name": "state", "mountPath": "/state"}],
}


def _serving(ip: str) -> bool:
    try:
        return http(ip, "/healthz")[0] == 200
    except OSError:  # not listening yet (URLError is an OSError)
        return False


def _ready(core: client.CoreV1Api, namespace: str, name: str) -> bool:
    statuses = status_of(core, namespace, name).get("containerStatuses") or [{}]
    return bool(statuses[0].get("ready"))


def test_exec_probes_run_in_the_container_and_say_what_the_command_printed(
    core: client.CoreV1Api, namespace: str
) -> None:
    # timeoutSeconds 10: starting a command in the sandbox (nsenter, sh) can take longer than
    # the default 1 s on a loaded machine, and a liveness probe that timed out twice would
    # restart the container before the test means it to
    probes = {
        "readinessProbe": {
            "exec": {"command": ["sh", "-c", "if [ -e /state/unready ]; then "
                                             "echo not ready yet; exit 1; fi"]},
            "periodSeconds": 1,
            "timeoutSeconds": 10,
        },
        "livenessProbe": {
            "exec": {"command": ["sh", "-c", "test ! -e /state/unhealthy"]},
            "periodSeconds": 1,
            "failureThreshold": 2,
            "timeoutSeconds": 10,
        },
    }
    body = pod_body("probed", probes=probes, **STATE)
    body["spec"]["terminationGracePeriodSeconds"] = 5
    core.create_namespaced_pod(namespace, body)
    ip = wait_ready(core, namespace, "probed")["podIP"]
    # the exec probe says nothing of the app's port (unlike the kit's HTTP probe): ready may
    # come before the app listens
    wait_for(lambda: _serving(ip), what="the app serving", timeout=20)

    # the readiness command sees the file the app writes into its own volume
    assert http(ip, "/touch?path=/state/unready") == (200, "ok")
    wait_for(lambda: not _ready(core, namespace, "probed"), what="the pod unready", timeout=20)
    wanted = ("Unhealthy", "Readiness probe failed: not ready yet\n")
    wait_for(lambda: wanted in events_of(core, namespace, "probed"), what=f"event {wanted}",
             timeout=10)
    assert container_status(core, namespace, "probed")["restartCount"] == 0

    # a failing liveness command restarts the container (the volume keeps the file: again)
    assert http(ip, "/touch?path=/state/unhealthy") == (200, "ok")
    wait_for(lambda: container_status(core, namespace, "probed")["restartCount"] >= 1,
             what="a liveness restart", timeout=30)
    events = wait_for(
        lambda: (e := events_of(core, namespace, "probed"))
        and ("Killing", "Container app failed liveness probe, will be restarted") in e and e,
        what="the Killing event", timeout=10)
    assert ("Unhealthy", "Liveness probe failed: ") in events  # the command printed nothing


def test_an_exec_probe_that_outlives_its_timeout_fails_and_is_killed(
    core: client.CoreV1Api, namespace: str
) -> None:
    probes = {"readinessProbe": {"exec": {"command": ["sleep", "30"]}, "periodSeconds": 1,
                                 "timeoutSeconds": 1}}
    core.create_namespaced_pod(namespace, pod_body("slow", probes=probes))
    wanted = ("Unhealthy", 'Readiness probe failed: command "sleep 30" timed out')
    wait_for(lambda: wanted in events_of(core, namespace, "slow"), what=f"event {wanted}",
             timeout=20)
    assert status_of(core, namespace, "slow")["phase"] == "Running"
    assert not _ready(core, namespace, "slow")
