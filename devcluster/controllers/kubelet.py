"""The simulated kubelet of every Ready Node: it "runs" the Pods bound to the node.

A bound Pod gets a full status (see :mod:`.podstatus`) with a pod IP unique among live pods,
taken from the node's ``spec.podCIDR``, and the node's InternalIP as host IP. Pods are Ready by
default; with ``pods_ready`` off their containers run but never become ready (a Deployment then
never becomes Available). Pods of a Job whose ``restartPolicy`` is not ``Always`` run to
completion (phase Succeeded) right after they start.

A Pod being deleted gracefully (``deletionTimestamp`` set, no finalizer left to wait for) is
deleted for good at once (:meth:`~devcluster.handlers.Api.finish_pod_deletion`, grace period 0),
as the kubelet does once its containers have stopped. The kubelet rewrites a status someone
else changed, as the real one does on its next sync.

With :class:`~devcluster.localpods.LocalPodOptions`, a Pod whose every container's image is
mapped to a local command is handed to the local runtime (:mod:`devcluster.localpods.runtime`),
which runs it as processes and writes its status through this kubelet's Writer; every other
Pod keeps the simulated path above.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from devcluster.controllers.nodes import NODE, NODES
from devcluster.controllers.pods import POD, controller_of
from devcluster.controllers.podstatus import PodPlacement, pod_status
from devcluster.controllers.runtime import Controller, Key, Mapper, StoreKey, key_of
from devcluster.controllers.scheduler import node_ready
from devcluster.handlers import Api
from devcluster.localpods import LocalPodOptions
from devcluster.storage import Event

if TYPE_CHECKING:
    from devcluster.localpods.runtime import LocalRuntime
    from devcluster.server import DevCluster

__all__ = ["Kubelet"]

JSON = dict[str, Any]

_FALLBACK_CIDR = "10.244.128.0/17"


def _internal_ip(node: JSON) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return str(a.get("address"))
    return "172.18.0.100"


def _node_number(name: str) -> int:
    """1 for the control-plane node, 2 for the worker (the local pods' 127.<n>.0.0/16)."""
    for i, spec in enumerate(NODES):
        if spec.name == name:
            return i + 1
    return len(NODES) + 1


class Kubelet(Controller):
    """The kubelets of all Ready Nodes, on one worker."""

    name = "kubelet"
    manager = "kubelet"

    def __init__(
        self, api: Api, *, pods_ready: bool = True, local_pods: LocalPodOptions | None = None
    ) -> None:
        super().__init__(api)
        self.pods_ready = pods_ready
        self.local: LocalRuntime | None = None
        if local_pods is not None:
            # imported here: the runtime imports controller modules (this package's __init__)
            from devcluster.localpods.runtime import LocalRuntime

            self.local = LocalRuntime(api, self.writer, local_pods)
            self.local.set_pods_ready(pods_ready)
        self._ips: dict[Key, tuple[str, str]] = {}  # pod -> (uid, ip)
        self._used: set[str] = set()

    def routes(self) -> dict[StoreKey, Mapper]:
        return {POD: self._pod_keys, NODE: self._node_keys}

    def initial_keys(self) -> Iterable[Key]:
        out: list[Key] = []
        for pod in self.store.list_objects(POD)[1]:
            ip = (pod.get("status") or {}).get("podIP")
            if ip:
                self._ips[key_of(pod)] = (str(pod["metadata"].get("uid")), str(ip))
                self._used.add(str(ip))
            if (pod.get("spec") or {}).get("nodeName"):
                out.append(key_of(pod))
        return out

    def stop(self) -> None:
        """Stop the worker, then every local process (the node shuts down)."""
        super().stop()
        if self.local is not None:
            self.local.stop()

    def cluster_started(self, cluster: DevCluster) -> None:
        if self.local is not None:
            self.local.cluster_started(cluster)

    def _pod_keys(self, ev: Event) -> Iterable[Key]:
        return [key_of(ev.obj)]

    def _node_keys(self, ev: Event) -> Iterable[Key]:
        """A node that becomes Ready starts the pods bound to it."""
        if ev.type == "DELETED":
            return ()
        was_ready = ev.old is not None and node_ready(ev.old)
        if was_ready or not node_ready(ev.obj):
            return ()
        name = ev.obj["metadata"]["name"]
        return [
            key_of(p)
            for p in self.store.list_objects(POD)[1]
            if (p.get("spec") or {}).get("nodeName") == name
        ]

    def set_pods_ready(self, ready: bool) -> None:
        """Switch readiness for every pod (running pods are updated)."""
        self.pods_ready = ready
        if self.local is not None:
            self.local.set_pods_ready(ready)
            self.local.wake_all()
        for pod in self.store.list_objects(POD)[1]:
            self.queue.add(key_of(pod))

    # ---------------------------------------------------------------- sync

    def sync(self, key: Key) -> None:
        pod = self.store.get(POD, *key)
        if pod is None:
            self._release(key)
            if self.local is not None:
                self.local.wake(*key)
            return
        node_name = (pod.get("spec") or {}).get("nodeName")
        node = self.store.get(NODE, "", node_name) if node_name else None
        if node is None or not node_ready(node):
            return
        if self.local is not None and self.local.sync(
            pod, _node_number(str(node_name)), _internal_ip(node)
        ):
            return
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            if not meta.get("finalizers"):
                self.api.finish_pod_deletion(key[0], key[1], uid=meta.get("uid"))
            return
        placement = PodPlacement(self._ip(key, pod, node), _internal_ip(node))
        phase = (pod.get("status") or {}).get("phase")
        finish = phase == "Running" and self._runs_to_completion(pod)
        status = pod_status(pod, placement, ready=self.pods_ready, finish=finish)
        if status == pod.get("status"):
            return
        new = copy.deepcopy(pod)
        new["status"] = status
        written = self.writer.update_status(POD, new)
        if phase != "Running" and status.get("phase") == "Running":
            self._started_events(written)

    def _started_events(self, pod: JSON) -> None:
        """What a kubelet reports when it starts a pod's containers (images are always
        "present": nothing is pulled)."""
        for c in (pod.get("spec") or {}).get("containers") or []:
            name, image = c.get("name", ""), c.get("image", "")
            self.writer.event(
                pod, "Pulled", f'Container image "{image}" already present on machine', "kubelet"
            )
            self.writer.event(pod, "Created", f"Created container: {name}", "kubelet")
            self.writer.event(pod, "Started", f"Started container {name}", "kubelet")

    @staticmethod
    def _runs_to_completion(pod: JSON) -> bool:
        ref = controller_of(pod)
        policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        return ref is not None and ref.get("kind") == "Job" and policy != "Always"

    # ---------------------------------------------------------------- pod IPs

    def _ip(self, key: Key, pod: JSON, node: JSON) -> str:
        uid = str(pod["metadata"].get("uid"))
        have = self._ips.get(key)
        if have is not None and have[0] == uid:
            return have[1]
        if have is not None:
            self._release(key)
        current = (pod.get("status") or {}).get("podIP")
        if current and current not in self._used:
            ip = str(current)
        else:
            ip = self._allocate((node.get("spec") or {}).get("podCIDR") or _FALLBACK_CIDR)
        self._ips[key] = (uid, ip)
        self._used.add(ip)
        return ip

    def _allocate(self, cidr: str) -> str:
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            network = ipaddress.ip_network(_FALLBACK_CIDR)
        hosts = network.hosts()
        next(hosts, None)  # the first address is the node's bridge
        for host in hosts:
            text = str(host)
            if text not in self._used:
                return text
        raise RuntimeError(f"pod CIDR {cidr} is exhausted")

    def _release(self, key: Key) -> None:
        have = self._ips.pop(key, None)
        if have is not None:
            self._used.discard(have[1])
