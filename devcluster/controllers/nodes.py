"""The devcluster's two Nodes, registered as their kubelets would register them.

``devcluster-control-plane`` (with the control-plane role label, untainted as in a one-node kind
cluster) and ``devcluster-worker``: labels, pod CIDRs, capacity and allocatable (cpu, memory,
ephemeral-storage, hugepages, pods), the pressure conditions False and ``Ready`` True, node
info (kubelet v1.31.0, containerd), addresses. Nodes that already exist (a state file) are left
as they are; there are no heartbeats.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any

from devcluster.controllers.runtime import Writer
from devcluster.handlers import Api, now_rfc3339

__all__ = ["NODE", "NODES", "NodeSpec", "register_nodes"]

JSON = dict[str, Any]
NODE = ("", "nodes")

KUBELET_VERSION = "v1.31.0"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    internal_ip: str
    pod_cidr: str
    control_plane: bool = False


NODES = (
    NodeSpec("devcluster-control-plane", "172.18.0.2", "10.244.0.0/24", control_plane=True),
    NodeSpec("devcluster-worker", "172.18.0.3", "10.244.1.0/24"),
)

_RESOURCES = {
    "cpu": "8",
    "ephemeral-storage": "102625208Ki",
    "hugepages-1Gi": "0",
    "hugepages-2Mi": "0",
    "memory": "16363392Ki",
    "pods": "110",
}

_CONDITIONS = (
    (
        "MemoryPressure",
        "False",
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
    ),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def _uuid_of(text: str) -> str:
    h = hashlib.sha256(text.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def node_object(spec: NodeSpec) -> JSON:
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
    }
    if spec.control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": labels,
            "annotations": {
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {
            "podCIDR": spec.pod_cidr,
            "podCIDRs": [spec.pod_cidr],
            "providerID": f"kind://docker/devcluster/{spec.name}",
        },
    }


def node_status(spec: NodeSpec) -> JSON:
    now = now_rfc3339()
    return {
        "addresses": [
            {"type": "InternalIP", "address": spec.internal_ip},
            {"type": "Hostname", "address": spec.name},
        ],
        "allocatable": dict(_RESOURCES),
        "capacity": dict(_RESOURCES),
        "conditions": [
            {
                "type": t,
                "status": s,
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
                "reason": reason,
                "message": message,
            }
            for t, s, reason, message in _CONDITIONS
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "architecture": "amd64",
            "bootID": _uuid_of(f"boot/{spec.name}"),
            "containerRuntimeVersion": "containerd://1.7.18",
            "kernelVersion": "6.8.0-devcluster",
            "kubeProxyVersion": KUBELET_VERSION,
            "kubeletVersion": KUBELET_VERSION,
            "machineID": _uuid_of(f"machine/{spec.name}").replace("-", ""),
            "operatingSystem": "linux",
            "osImage": "Debian GNU/Linux 12 (bookworm)",
            "systemUUID": _uuid_of(f"system/{spec.name}"),
        },
    }


def register_nodes(api: Api) -> None:
    """Create the Nodes that do not exist yet (object, then status, as a kubelet does)."""
    writer = Writer(api, "kubelet")
    for spec in NODES:
        if api.store.get(NODE, "", spec.name) is not None:
            continue
        created = writer.create(NODE, "", node_object(spec))
        with_status = copy.deepcopy(created)
        with_status["status"] = node_status(spec)
        writer.update_status(NODE, with_status)
