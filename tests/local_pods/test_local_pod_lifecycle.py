"""A local pod's containers over time: readiness and liveness probes, crashes restarted with
back-off (CrashLoopBackOff), the logs of the current and previous run, graceful deletion
(SIGTERM, then SIGKILL after the grace period), and replicas sharing a port on their own IPs."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from kubernetes import client  # type: ignore[import-untyped]
from local_pods_kit import (
    container_status,
    events_of,
    http,
    http_json,
    pod_body,
    processes_mentioning,
    status_of,
    wait_ready,
)
from support.waiting import wait_for

from devcluster.server import DevCluster

pytestmark = pytest.mark.slow

STATE_DIR = [{"name": "state", "emptyDir": {}}]
STATE_MOUNT = [{"name": "state", "mountPath": "/state"}]
STATE_ENV = [{"name": "APP_STATE", "value": "/state"}]


def _deployment(name: str, replicas: int, pod: dict[str, object]) -> dict[str, object]:
    spec = pod["spec"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def test_a_failing_readiness_probe_keeps_the_deployment_unavailable(
    core: client.CoreV1Api, api_client: client.ApiClient, namespace: str
) -> None:
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "flags"}, "data": {"unready": "yes"}}
    )
    pod = pod_body(
        "unready",
        env=STATE_ENV,
        volumes=[{"name": "state", "configMap": {"name": "flags"}}],
        mounts=STATE_MOUNT,
    )
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, _deployment("unready", 1, pod))

    def probed() -> object:
        pods = core.list_namespaced_pod(namespace).items
        if not pods:
            return None
        name = pods[0].metadata.name
        failures = [m for r, m in events_of(core, namespace, name) if r == "Unhealthy"]
        wanted = "Readiness probe failed: HTTP probe failed with statuscode: 500"
        return wanted in failures and name

    name = wait_for(probed, what="a readiness probe answered 500", timeout=20)
    status = status_of(core, namespace, name)
    assert status["phase"] == "Running"
    assert not status["containerStatuses"][0]["ready"]
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert ready["Ready"] == "False" and ready["ContainersReady"] == "False"
    deployment = apps.read_namespaced_deployment("unready", namespace).status
    conditions = {c.type: c.status for c in deployment.conditions or []}
    assert conditions.get("Available") != "True" and not deployment.available_replicas


def test_a_failing_liveness_probe_restarts_the_container(
    core: client.CoreV1Api, namespace: str
) -> None:
    probes = {
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "health"},
            "periodSeconds": 1,
            "failureThreshold": 2,
        },
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1},
    }
    body = pod_body("sick", env=STATE_ENV, volumes=STATE_DIR, mounts=STATE_MOUNT, probes=probes)
    body["spec"]["terminationGracePeriodSeconds"] = 5
    core.create_namespaced_pod(namespace, body)
    ip = wait_ready(core, namespace, "sick")["podIP"]
    assert http(ip, "/touch?path=/state/unhealthy") == (200, "ok")  # kept across restarts
    wait_for(
        lambda: container_status(core, namespace, "sick")["restartCount"] >= 2,
        what="two liveness restarts",
        timeout=30,
    )
    events = events_of(core, namespace, "sick")
    assert ("Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500") in events
    assert ("Killing", "Container app failed liveness probe, will be restarted") in events
    last = container_status(core, namespace, "sick")["lastState"]["terminated"]
    assert last["exitCode"] == 0 and last["reason"] == "Completed"  # it exits 0 on SIGTERM


def test_a_crashing_container_is_restarted_with_back_off(
    core: client.CoreV1Api, cluster: DevCluster, namespace: str
) -> None:
    env = [{"name": "APP_MODE", "value": "crash"}]
    core.create_namespaced_pod(namespace, pod_body("crash", env=env, probes={}))
    uid = core.read_namespaced_pod("crash", namespace).metadata.uid

    def looping() -> dict[str, object] | None:
        cs = container_status(core, namespace, "crash")
        waiting = (cs.get("state") or {}).get("waiting") or {}
        ok = cs.get("restartCount", 0) >= 2 and waiting.get("reason") == "CrashLoopBackOff"
        return cs if ok else None

    cs = wait_for(looping, what="CrashLoopBackOff after two restarts", timeout=20)
    message = cs["state"]["waiting"]["message"]
    pattern = (
        rf"back-off (\d+ms|[\d.]+s) restarting failed container=app pod=crash_{namespace}\({uid}\)"
    )
    assert re.fullmatch(pattern, message), message
    last = cs["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (3, "Error")
    assert status_of(core, namespace, "crash")["phase"] == "Running"
    logs = cluster.api.pod_logs
    assert logs is not None
    previous = logs.read(namespace, "crash", "app", previous=True)
    assert previous is not None and b"app crashing" in previous
    assert logs.read(namespace, "crash", "nope", previous=False) is None
    assert logs.read(namespace, "other", "app", previous=False) is None
    assert (
        "BackOff",
        f"Back-off restarting failed container app in pod crash_{namespace}({uid})",
    ) in (events_of(core, namespace, "crash"))


def test_a_pod_that_never_restarts_fails(core: client.CoreV1Api, namespace: str) -> None:
    env = [{"name": "APP_MODE", "value": "crash"}]
    body = pod_body("once", env=env, probes={}, spec={"restartPolicy": "Never"})
    core.create_namespaced_pod(namespace, body)
    wait_for(lambda: status_of(core, namespace, "once").get("phase") == "Failed",
             what="the pod that never restarts to fail", timeout=20)
    cs = container_status(core, namespace, "once")
    assert cs["restartCount"] == 0 and cs["state"]["terminated"]["exitCode"] == 3


def test_logs_of_the_current_run(
    core: client.CoreV1Api, cluster: DevCluster, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, pod_body("talk"))
    ip = wait_ready(core, namespace, "talk")["podIP"]
    logs = cluster.api.pod_logs
    assert logs is not None
    # the app prints the line before it serves, but a pipe-draining thread of the runtime
    # writes it to the log file: it may land after the readiness probe passed
    listening = f"app listening on {ip}:8080".encode()
    wait_for(lambda: listening in (logs.read(namespace, "talk", "app", previous=False) or b""),
             what=lambda: f"{listening!r} in the log: "
             f"{logs.read(namespace, 'talk', 'app', previous=False)!r}", timeout=10)
    assert logs.read(namespace, "talk", "app", previous=True) == b""


def test_deletion_sends_sigterm_then_sigkill_after_the_grace_period(
    core: client.CoreV1Api, namespace: str, pods_root: Path
) -> None:
    core.create_namespaced_pod(
        namespace, pod_body("polite", spec={"terminationGracePeriodSeconds": 30})
    )
    stubborn = pod_body(
        "stubborn",
        env=[{"name": "APP_MODE", "value": "ignore-term"}],
        spec={"terminationGracePeriodSeconds": 2},
    )
    core.create_namespaced_pod(namespace, stubborn)
    wait_ready(core, namespace, "polite")
    wait_ready(core, namespace, "stubborn")
    uids = {n: core.read_namespaced_pod(n, namespace).metadata.uid for n in ("polite", "stubborn")}

    def gone_after(name: str) -> float:
        started = time.monotonic()
        core.delete_namespaced_pod(name, namespace)
        wait_for(
            lambda: (
                name not in [p.metadata.name for p in core.list_namespaced_pod(namespace).items]
            ),
            what=f"pod {name} gone",
            timeout=25,
        )
        return time.monotonic() - started

    # the bounds leave room for a loaded machine and still tell the cases apart: 30 s is the
    # polite pod's grace (it exits on SIGTERM, long before), 2 s the stubborn one's (SIGKILL)
    assert gone_after("polite") < 15
    assert 2 <= gone_after("stubborn") < 15
    for name, uid in uids.items():
        assert processes_mentioning(f"{namespace}_{name}_{uid}") == []


def test_replicas_listen_on_the_same_port_on_their_own_ip(
    core: client.CoreV1Api, api_client: client.ApiClient, namespace: str
) -> None:
    pod = pod_body(
        "twins",
        env=[{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    )
    client.AppsV1Api(api_client).create_namespaced_deployment(
        namespace, _deployment("twins", 2, pod)
    )

    def both_ready() -> list[tuple[str, str]] | None:
        pods = core.list_namespaced_pod(namespace).items
        ready = [
            (p.metadata.name, p.status.pod_ip)
            for p in pods
            if p.status and p.status.container_statuses and p.status.container_statuses[0].ready
        ]
        return ready if len(ready) == 2 else None

    pods = wait_for(both_ready, what="two ready replicas", timeout=20)
    assert len({ip for _, ip in pods}) == 2
    for name, ip in pods:
        assert http_json(ip, "/env")["POD_NAME"] == name
