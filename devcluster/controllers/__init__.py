"""The devcluster's in-process kube-controller-manager, scheduler and kubelets.

:class:`Workloads` registers the Nodes and runs the controllers that make workload objects
behave as on a cluster: Deployment -> ReplicaSet -> Pods (and ReplicationController,
StatefulSet, DaemonSet, Job), the scheduler binding Pods to Nodes, and the kubelet giving them a
status. Each controller listens to the store and works on its own thread (see
:mod:`.runtime`); they write through the :class:`~devcluster.handlers.Api` under the real
managers' names (``kube-controller-manager``, ``kube-scheduler``, ``kubelet``). Garbage
collection of what they create is the job of :mod:`devcluster.gc`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devcluster.controllers.daemonset import DaemonSetController
from devcluster.controllers.deployment import DeploymentController
from devcluster.controllers.disruption import DisruptionController
from devcluster.controllers.job import JobController
from devcluster.controllers.kubelet import Kubelet
from devcluster.controllers.nodes import register_nodes
from devcluster.controllers.replicaset import RC, RS, ReplicaSetController
from devcluster.controllers.runtime import Controller
from devcluster.controllers.scheduler import Scheduler
from devcluster.controllers.statefulset import StatefulSetController
from devcluster.handlers import Api
from devcluster.localpods import LocalPodOptions

if TYPE_CHECKING:
    from devcluster.server import DevCluster

__all__ = ["Workloads"]


class Workloads:
    """Nodes plus every workload controller; :meth:`start` after the store is loaded.

    ``enabled=False`` (``DevCluster(workloads=False)``) starts nothing: no Nodes, workload
    objects are stored and left alone. ``pods_ready=False``: pods run but never become Ready.
    """

    def __init__(
        self,
        api: Api,
        *,
        enabled: bool = True,
        pods_ready: bool = True,
        local_pods: LocalPodOptions | None = None,
    ) -> None:
        self.api = api
        self.enabled = enabled
        self.local_pods = local_pods
        self.kubelet = Kubelet(api, pods_ready=pods_ready, local_pods=local_pods)
        self.controllers: list[Controller] = [
            Scheduler(api),
            self.kubelet,
            ReplicaSetController(api, RS),
            ReplicaSetController(api, RC),
            DeploymentController(api),
            StatefulSetController(api),
            DaemonSetController(api),
            JobController(api),
            DisruptionController(api),
        ]
        self._started = False

    def cluster_started(self, cluster: DevCluster) -> None:
        """The API server listens (its URL, CA and token authority are known): what the local
        kubelet needs to give its Pods an in-cluster config. Called before :meth:`start`."""
        self.kubelet.cluster_started(cluster)

    def start(self) -> None:
        if self._started or not self.enabled:
            return
        self._started = True
        for c in self.controllers:
            c.attach()
        register_nodes(self.api)
        for c in self.controllers:
            c.start()

    def stop(self) -> None:
        for c in self.controllers:
            c.stop()

    @property
    def pods_ready(self) -> bool:
        return self.kubelet.pods_ready

    def set_pods_ready(self, ready: bool) -> None:
        """Pods become (un)ready; running pods follow at once."""
        self.kubelet.set_pods_ready(ready)
