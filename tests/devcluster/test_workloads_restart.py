"""Restarting a devcluster from its state file: the Nodes are not registered twice, running pods
keep their IPs, and the controllers carry on (a scale-up after the restart gets a fresh IP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client, config
from support.waiting import wait_for

from devcluster import DevCluster


def _available(apps: client.AppsV1Api, replicas: int) -> Any:
    def get() -> Any:
        d = apps.read_namespaced_deployment("web", "default")
        st = d.status
        ok = st.observed_generation == d.metadata.generation and st.replicas == replicas
        return d if ok and st.available_replicas == replicas else None

    return wait_for(get, what=f"{replicas} available replicas")


def _ips(core: client.CoreV1Api) -> dict[str, str]:
    return {p.metadata.name: p.status.pod_ip for p in core.list_namespaced_pod("default").items}


def test_restart_from_the_state_file_keeps_nodes_pods_and_ips(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = DevCluster(state_file=state)
    first.start()
    try:
        api = config.new_client_from_config(
            config_file=str(first.write_kubeconfig(tmp_path / "one"))
        )
        with api:
            apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
            apps.create_namespaced_deployment(
                "default",
                {
                    "metadata": {"name": "web"},
                    "spec": {
                        "replicas": 2,
                        "selector": {"matchLabels": {"app": "web"}},
                        "template": {
                            "metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "main", "image": "nginx"}]},
                        },
                    },
                },
            )
            _available(apps, 2)
            before = _ips(core)
    finally:
        first.stop()

    second = DevCluster(state_file=state)
    second.start()
    try:
        api = config.new_client_from_config(
            config_file=str(second.write_kubeconfig(tmp_path / "two"))
        )
        with api:
            apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
            nodes = [n.metadata.name for n in core.list_node().items]
            assert sorted(nodes) == ["devcluster-control-plane", "devcluster-worker"]
            assert _ips(core) == before
            apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 3}})
            _available(apps, 3)
            after = _ips(core)
            assert len(after) == 3 and len(set(after.values())) == 3
            assert {k: v for k, v in after.items() if k in before} == before
    finally:
        second.stop()
