"""Nodes, the scheduler and the simulated kubelet: ``kubectl get nodes`` lists two Ready nodes,
pods are bound round-robin and get the full status a kubelet reports, and deleting a running
pod completes."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from kubernetes import client
from support.waiting import wait_for
from workloads_support import kubectl, needs_kubectl

NODES = {"devcluster-control-plane", "devcluster-worker"}


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    containers = spec.pop("containers", [{"name": "main", "image": "nginx:1.25"}])
    return {"metadata": {"name": name}, "spec": {"containers": containers, **spec}}


def _running(core: client.CoreV1Api, ns: str, name: str) -> Any:
    def get() -> Any:
        pod = core.read_namespaced_pod(name, ns)
        return pod if pod.status and pod.status.phase == "Running" else None

    return wait_for(get, what=f"pod {name} Running")


@needs_kubectl
def test_kubectl_get_nodes_lists_two_ready_nodes(kubeconfig_path, api_client) -> None:
    out = kubectl(kubeconfig_path, "get", "nodes", "-o", "json").stdout
    nodes = {n["metadata"]["name"]: n for n in json.loads(out)["items"]}
    assert set(nodes) >= NODES
    for name in NODES:
        node = nodes[name]
        conditions = {c["type"]: c for c in node["status"]["conditions"]}
        assert conditions["Ready"]["status"] == "True"
        assert conditions["Ready"]["reason"] == "KubeletReady"
        for pressure in ("MemoryPressure", "DiskPressure", "PIDPressure"):
            assert conditions[pressure]["status"] == "False"
        assert node["status"]["capacity"]["pods"] == "110"
        assert node["status"]["allocatable"]["cpu"] == "8"
        assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.31.0"
        types = {a["type"] for a in node["status"]["addresses"]}
        assert types == {"InternalIP", "Hostname"}
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == name
    assert (
        "node-role.kubernetes.io/control-plane"
        in nodes["devcluster-control-plane"]["metadata"]["labels"]
    )
    table = kubectl(kubeconfig_path, "get", "nodes").stdout
    assert {line.split()[0] for line in table.splitlines()[1:]} >= NODES
    # the typed client reads them without model errors
    listed = client.CoreV1Api(api_client).list_node().items
    assert {n.metadata.name for n in listed} >= NODES


def test_a_pod_gets_the_status_a_kubelet_reports(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(
        namespace,
        _pod(
            "p",
            initContainers=[{"name": "init", "image": "busybox"}],
            containers=[
                {"name": "web", "image": "nginx:1.25"},
                {"name": "side", "image": "ghcr.io/example/side@sha256:" + "a" * 64},
            ],
        ),
    )
    pod = _running(core, namespace, "p")
    node = core.read_node(pod.spec.node_name)
    st = pod.status
    assert pod.spec.node_name in NODES
    assert {c.type: c.status for c in st.conditions} == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    internal = next(a.address for a in node.status.addresses if a.type == "InternalIP")
    assert st.host_ip == internal and [i.ip for i in st.host_ips] == [internal]
    assert ipaddress.ip_address(st.pod_ip) in ipaddress.ip_network(node.spec.pod_cidr)
    assert [i.ip for i in st.pod_ips] == [st.pod_ip]
    assert st.start_time is not None
    assert st.qos_class == "BestEffort"
    web, side = st.container_statuses
    assert (web.name, web.ready, web.started, web.restart_count) == ("web", True, True, 0)
    assert web.state.running.started_at is not None
    assert web.image == "docker.io/library/nginx:1.25"
    assert web.image_id.startswith("docker.io/library/nginx@sha256:")
    assert web.container_id.startswith("containerd://")
    assert side.image == "ghcr.io/example/side@sha256:" + "a" * 64
    (init,) = st.init_container_statuses
    assert init.state.terminated.reason == "Completed" and init.state.terminated.exit_code == 0


def test_pods_get_unique_ips_and_are_spread_over_the_nodes(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    for i in range(6):
        core.create_namespaced_pod(namespace, _pod(f"p{i}"))
    pods = [_running(core, namespace, f"p{i}") for i in range(6)]
    ips = [p.status.pod_ip for p in pods]
    assert len(set(ips)) == 6
    assert {p.spec.node_name for p in pods} == NODES


def test_node_selector_and_affinity_place_or_hold_pods(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(
        namespace, _pod("pinned", nodeSelector={"kubernetes.io/hostname": "devcluster-worker"})
    )
    core.create_namespaced_pod(namespace, _pod("nowhere", nodeSelector={"disk": "ssd"}))
    assert _running(core, namespace, "pinned").spec.node_name == "devcluster-worker"

    def unschedulable() -> Any:
        pod = core.read_namespaced_pod("nowhere", namespace)
        for c in (pod.status.conditions or []) if pod.status else []:
            if c.type == "PodScheduled" and c.status == "False":
                return pod, c
        return None

    pod, cond = wait_for(unschedulable, what="PodScheduled False")
    assert cond.reason == "Unschedulable"
    assert cond.message == (
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
    )
    assert pod.spec.node_name is None and pod.status.phase == "Pending"


def test_changing_a_container_image_restarts_the_container(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(namespace, _pod("p"))
    first = _running(core, namespace, "p").status.container_statuses[0]
    core.patch_namespaced_pod(
        "p", namespace, {"spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}
    )

    def restarted() -> Any:
        cs = core.read_namespaced_pod("p", namespace).status.container_statuses[0]
        return cs if cs.image == "docker.io/library/nginx:1.26" else None

    cs = wait_for(restarted, what="the container restarted with the new image")
    assert cs.restart_count == 1
    assert cs.container_id != first.container_id
    assert cs.last_state.terminated.container_id == first.container_id


def test_deleting_a_running_pod_completes(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(namespace, _pod("p"))
    _running(core, namespace, "p")
    answer = core.delete_namespaced_pod("p", namespace)
    # the API server answers with the pod being deleted gracefully; the kubelet finishes it
    assert answer.metadata.deletion_timestamp is not None
    wait_for(lambda: not core.list_namespaced_pod(namespace).items, what="the pod gone")
