"""The local kubelet's runtime: one :class:`~devcluster.localpods.runner.PodWorker` per local
Pod, their loopback pod IPs, the ServiceAccount tokens and CA they get, and their logs (the
``pods/log`` source of the :class:`~devcluster.handlers.Api`).

Pod IPs: node number *n* (1, 2, ...) gives its pods ``127.n.x.y`` (all of 127/8 is loopback on
Linux), so each replica can listen on the same port (see :mod:`.netshim`). The host's network
is shared by every devcluster on the machine, so each runtime starts its addresses at a random
``x`` and skips any address something already listens on (``/proc/net/tcp``): two test runs
side by side do not reach each other's Pods. In-cluster config:
``KUBERNETES_SERVICE_HOST`` is ``127.0.0.1`` (the serving certificate covers it) and the port the
API server's TLS port; tokens are bound to the Pod (they die with it), valid one hour and
rewritten at 80 % of that.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devcluster.auth.tokens import ISSUER, BoundObject
from devcluster.controllers.runtime import Writer
from devcluster.handlers import Api
from devcluster.localpods import LocalPodOptions, cgroups
from devcluster.localpods.environment import ContainerConfigError
from devcluster.localpods.exec import ContainerNotRunning, ExecPlan, plan_exec
from devcluster.localpods.images import local_images
from devcluster.localpods.process import group_members
from devcluster.localpods.runner import TOKEN_SECONDS, PodWorker
from devcluster.localpods.sandbox import find_bwrap

if TYPE_CHECKING:
    from devcluster.server import DevCluster

__all__ = ["LocalRuntime"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
POD = ("", "pods")
SA = ("", "serviceaccounts")


class LocalRuntime:
    """Every local pod of the cluster (both nodes); see the module docstring."""

    def __init__(self, api: Api, writer: Writer, options: LocalPodOptions) -> None:
        self.api = api
        self.writer = writer
        self.options = options
        self.api_host = "127.0.0.1"
        self.api_port = 443
        self.ca_pem = b""
        self._tokens: Any = None
        self._pods_ready = True
        self._lock = threading.Lock()
        self._workers: dict[str, PodWorker] = {}  # uid -> worker
        self._node_numbers: dict[str, int] = {}
        self._used_ips: set[str] = set()
        #: where this runtime's addresses start (random: see the module docstring)
        self._ip_offset = random.randrange(1, 255) * 256
        self._stopped = False

    # ---------------------------------------------------------------- wiring

    def cluster_started(self, cluster: DevCluster) -> None:
        """Learn where the API server listens, its CA and token authority."""
        self.api_port = int(cluster.port)
        self.ca_pem = cluster.auth_service.ca.cert_pem()
        self._tokens = cluster.auth_service.tokens
        self.api.pod_logs = self

    def set_pods_ready(self, ready: bool) -> None:
        self._pods_ready = ready

    def pods_ready(self) -> bool:
        return self._pods_ready

    # ---------------------------------------------------------------- kubelet side

    def handles(self, pod: JSON) -> dict[str, Any] | None:
        """The container -> ImageCommand map when ``pod`` runs locally, else None."""
        return local_images(pod, self.options.images)

    def sync(self, pod: JSON, node_number: int, host_ip: str) -> bool:
        """Called by the kubelet for every change of a local pod: start its worker or wake it.
        Returns False when the pod is not (or no longer) run here by a worker (the kubelet
        then handles a deletion itself)."""
        uid = str(pod["metadata"].get("uid") or "")
        with self._lock:
            if self._stopped:
                return True
            worker = self._workers.get(uid)
            if worker is not None:
                worker.wake()
                return True
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return True
            if pod["metadata"].get("deletionTimestamp"):
                return False
            images = self.handles(pod)
            if images is None:
                return False
            ip = self._allocate(pod, node_number)
            worker = PodWorker(self, pod, images, ip, host_ip)
            self._workers[uid] = worker
        worker.start()
        return True

    def wake_all(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
        for w in workers:
            w.wake()

    def wake(self, namespace: str, name: str) -> None:
        """A pod is gone from the store: its worker notices and stops."""
        with self._lock:
            workers = [
                w for w in self._workers.values() if (w.namespace, w.name) == (namespace, name)
            ]
        for w in workers:
            w.wake()

    def forget(self, worker: PodWorker) -> None:
        with self._lock:
            if self._workers.get(worker.uid) is worker:
                del self._workers[worker.uid]
            self._used_ips.discard(worker.pod_ip)

    def stop(self, timeout: float = 10.0) -> None:
        """The node shuts down: every container gets SIGTERM, a short grace, SIGKILL."""
        with self._lock:
            self._stopped = True
            workers = list(self._workers.values())
        for w in workers:
            w.shutdown()
        for w in workers:
            w.thread.join(timeout)
        for w in workers:  # belt and braces: nothing of a worker that did not finish survives
            for c in w.inits + w.containers:
                if c.process is not None:
                    for pid in group_members(c.process.pid):
                        log.warning(
                            "local pod %s/%s: killing leftover pid %d", w.namespace, w.name, pid
                        )
                    c.process.kill()
        cgroups.remove_parent()  # the node's memory cgroups (each run removed its own)

    # ---------------------------------------------------------------- pod IPs

    def _allocate(self, pod: JSON, node_number: int) -> str:
        current = str((pod.get("status") or {}).get("podIP") or "")
        base = ipaddress.ip_address(f"127.{node_number}.0.0")
        if current.startswith(f"127.{node_number}.") and current not in self._used_ips:
            self._used_ips.add(current)
            return current
        busy = listening_addresses()
        for i in range(65536):
            ip = str(base + (self._ip_offset + i) % 65536)
            if ip.endswith((".0", ".255")) or ip in self._used_ips or ip in busy:
                continue
            self._used_ips.add(ip)
            return ip
        raise RuntimeError(f"no loopback address left for node {node_number}")

    # ---------------------------------------------------------------- for workers

    def get_pod(self, namespace: str, name: str) -> JSON | None:
        return self.api.store.get(POD, namespace, name)

    def lookup(self, plural: str, namespace: str, name: str) -> JSON | None:
        return self.api.store.get(("", plural), namespace, name)

    def write_status(self, pod: JSON) -> JSON:
        try:
            return self.writer.update_status(POD, pod)
        finally:
            self.api.take_warnings()

    def event(self, pod: JSON, reason: str, message: str, type_: str = "Normal") -> None:
        self.writer.event(pod, reason, message, "kubelet", type_)
        self.api.take_warnings()

    def finish_deletion(self, namespace: str, name: str, uid: str) -> None:
        self.api.finish_pod_deletion(namespace, name, uid=uid)
        self.api.take_warnings()

    def bwrap(self) -> str | None:
        if self.options.sandbox == "off":
            return None
        return find_bwrap()

    def _service_account(self, pod: JSON) -> JSON | None:
        ns = str(pod["metadata"].get("namespace") or "")
        name = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
        return self.api.store.get(SA, ns, name)

    def automount(self, pod: JSON) -> bool:
        own = (pod.get("spec") or {}).get("automountServiceAccountToken")
        if own is not None:
            return bool(own)
        sa = self._service_account(pod)
        if sa is not None and sa.get("automountServiceAccountToken") is not None:
            return bool(sa["automountServiceAccountToken"])
        return True

    def token(self, pod: JSON, projection: JSON) -> str:
        """A token of the pod's ServiceAccount bound to the pod."""
        sa = self._service_account(pod)
        if sa is None:
            name = (pod.get("spec") or {}).get("serviceAccountName") or "default"
            raise ContainerConfigError(f'serviceaccount "{name}" not found')
        if self._tokens is None:
            raise ContainerConfigError("the API server's token authority is not known yet")
        meta = pod["metadata"]
        audience = projection.get("audience")
        seconds = int(projection.get("expirationSeconds") or TOKEN_SECONDS)
        token, _ = self._tokens.issue(
            sa,
            audiences=[str(audience)] if audience else [ISSUER],
            expiration_seconds=max(seconds, TOKEN_SECONDS),
            bound=BoundObject("Pod", str(meta["name"]), str(meta.get("uid") or "")),
        )
        return str(token)

    # ---------------------------------------------------------------- logs

    def read(self, namespace: str, name: str, container: str, *, previous: bool) -> bytes | None:
        """The container's log file, in the CRI format :class:`~.process.ContainerProcess`
        writes (``previous``: of the run before the current one; empty when there was none);
        None when no local pod of that name runs here."""
        with self._lock:
            workers = [
                w for w in self._workers.values() if (w.namespace, w.name) == (namespace, name)
            ]
        for w in workers:
            if not w.has_container(container):
                return None
            path = w.log_file(container, previous)
            if path is None:
                return b""
            try:
                return Path(path).read_bytes()
            except FileNotFoundError:
                return b""
        return None

    # ---------------------------------------------------------------- exec

    def exec_plan(
        self, namespace: str, name: str, container: str, command: list[str]
    ) -> ExecPlan | None:
        """How to run ``command`` in ``container``'s current run (``pods/exec``, see
        :mod:`.exec`); None when no local pod of that name runs here. Raises
        :class:`~.exec.ContainerNotRunning` when the container has no running process."""
        with self._lock:
            workers = [
                w for w in self._workers.values() if (w.namespace, w.name) == (namespace, name)
            ]
        for w in workers:
            for c in w.inits + w.containers:
                if c.view.name == container:
                    process = c.process
                    if process is None or process.finished is not None:
                        raise ContainerNotRunning(f"container {container} is not running")
                    return plan_exec(process.pid, process.sandboxed, command)
            raise ContainerNotRunning(f"container {container} is not running")
        return None


def listening_addresses() -> set[str]:
    """The IPv4 addresses some socket of this network namespace listens on (from
    ``/proc/net/tcp``; empty where it cannot be read)."""
    out: set[str] = set()
    try:
        with open("/proc/net/tcp", encoding="ascii") as f:
            next(f, None)  # the header
            for line in f:
                fields = line.split()
                if len(fields) > 3 and fields[3] == "0A":  # TCP_LISTEN
                    address = fields[1].partition(":")[0]
                    out.add(str(ipaddress.IPv4Address(int(address, 16).to_bytes(4, "little"))))
    except (OSError, ValueError):
        return set()
    return out
