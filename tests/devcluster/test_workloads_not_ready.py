"""``DevCluster(pods_ready=False)``: pods run but never become Ready, so a Deployment stays
unavailable (as a ``readyWhen`` over it must see), ``kubectl rollout status`` does not complete,
and a progress deadline runs out; switching readiness on lets it become Available."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from support.waiting import wait_for
from workloads_support import condition, kubectl, needs_kubectl

from devcluster import DevCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevCluster, Path]]:
    dc = DevCluster(pods_ready=False)
    dc.start()
    try:
        yield dc, dc.write_kubeconfig(tmp_path_factory.mktemp("notready") / "config")
    finally:
        dc.stop()
    assert dc.last_error is None, f"devcluster internal error: {dc.last_error!r}"


@pytest.fixture
def apps(cluster: tuple[DevCluster, Path]) -> Iterator[client.AppsV1Api]:
    api = config.new_client_from_config(config_file=str(cluster[1]))
    try:
        yield client.AppsV1Api(api)
    finally:
        api.close()


def _deployment(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "nginx"}]},
            },
            **spec,
        },
    }


def _observed(apps: client.AppsV1Api, name: str, replicas: int) -> Any:
    def get() -> Any:
        d = apps.read_namespaced_deployment(name, "default")
        st = d.status
        ok = st.observed_generation == d.metadata.generation and st.updated_replicas == replicas
        return d if ok and st.replicas == replicas else None

    return wait_for(get, what=f"{name}: {replicas} pods created")


@needs_kubectl
def test_unready_pods_keep_a_deployment_unavailable_until_they_are_ready(
    cluster: tuple[DevCluster, Path], apps: client.AppsV1Api
) -> None:
    dc, kubeconfig = cluster
    apps.create_namespaced_deployment("default", _deployment("web"))
    d = _observed(apps, "web", 2)
    available = condition(d, "Available")
    assert (available.status, available.reason) == ("False", "MinimumReplicasUnavailable")
    assert d.status.ready_replicas is None and d.status.unavailable_replicas == 2
    core = client.CoreV1Api(apps.api_client)

    def running() -> list[Any]:
        # The ReplicaSet counts a Pod once created; the kubelet starts it a moment later.
        pods = core.list_namespaced_pod("default", label_selector="app=web").items
        return pods if len(pods) == 2 and all(p.status.phase == "Running" for p in pods) else []

    for pod in wait_for(running, what="both web Pods running"):
        assert pod.status.container_statuses[0].ready is False
        ready = next(c for c in pod.status.conditions if c.type == "Ready")
        assert (ready.status, ready.reason) == ("False", "ContainersNotReady")
    proc = kubectl(kubeconfig, "rollout", "status", "deployment/web", "--timeout=1s", check=False)
    assert proc.returncode != 0
    assert "0 of 2 updated replicas are available" in proc.stdout

    dc.workloads.set_pods_ready(True)
    try:
        out = kubectl(kubeconfig, "rollout", "status", "deployment/web", "--timeout=20s").stdout
        assert 'deployment "web" successfully rolled out' in out
        d = apps.read_namespaced_deployment("web", "default")
        assert condition(d, "Available").status == "True"
    finally:
        dc.workloads.set_pods_ready(False)


@needs_kubectl
def test_a_stuck_rollout_exceeds_its_progress_deadline(
    cluster: tuple[DevCluster, Path], apps: client.AppsV1Api
) -> None:
    _, kubeconfig = cluster
    apps.create_namespaced_deployment("default", _deployment("stuck", progressDeadlineSeconds=1))
    _observed(apps, "stuck", 2)

    def timed_out() -> Any:
        d = apps.read_namespaced_deployment("stuck", "default")
        c = condition(d, "Progressing")
        return c if c is not None and c.reason == "ProgressDeadlineExceeded" else None

    cond = wait_for(timed_out, what="ProgressDeadlineExceeded", timeout=10)
    assert cond.status == "False"
    assert cond.message.startswith('ReplicaSet "stuck-') and "timed out progressing" in cond.message
    proc = kubectl(kubeconfig, "rollout", "status", "deployment/stuck", check=False)
    assert proc.returncode != 0
    assert 'deployment "stuck" exceeded its progress deadline' in proc.stderr


@needs_kubectl
def test_python_m_devcluster_pods_not_ready_flag(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devcluster",
            "--pods-not-ready",
            "--kubeconfig-out",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "devcluster listening on" in proc.stdout.readline()
        kubectl(kubeconfig, "create", "deployment", "web", "--image=nginx", "--replicas=2")
        api = config.new_client_from_config(config_file=str(kubeconfig))
        with api:
            d = _observed(client.AppsV1Api(api), "web", 2)
        assert condition(d, "Available").status == "False"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
