"""A local pod's status, from its worker's containers, written to the Pod.

The status is computed by :func:`devcluster.localpods.status.pod_status` from the containers'
views; a container not started yet shows ``PodInitializing`` (while init containers run) or
``ContainerCreating``. It is written through the kubelet's Writer only when it changed,
retrying a conflict with the fresh object.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from devcluster.errors import ApiError
from devcluster.handlers import now_rfc3339
from devcluster.localpods.container import Container
from devcluster.localpods.status import pod_status

if TYPE_CHECKING:
    from devcluster.localpods.runtime import LocalRuntime

__all__ = ["containers_status", "publish_status"]

JSON = dict[str, Any]
ATTEMPTS = 5


def publish_status(
    runtime: LocalRuntime, namespace: str, name: str, uid: str, status_of: Callable[[JSON], JSON]
) -> JSON | None:
    """Write ``status_of(pod)`` to the Pod (unless unchanged); the Pod as written, or None when
    it is gone (or still conflicting after a few attempts)."""
    for _ in range(ATTEMPTS):
        pod = runtime.get_pod(namespace, name)
        if pod is None or pod["metadata"].get("uid") != uid:
            return None
        status = status_of(pod)
        if status == pod.get("status"):
            return pod
        new = copy.deepcopy(pod)
        new["status"] = status
        try:
            return runtime.write_status(new)
        except ApiError as e:
            if e.code == 409:
                continue
            if e.code == 404:
                return None
            raise
    return None


def containers_status(
    pod: JSON,
    inits: Sequence[Container],
    containers: Sequence[Container],
    *,
    pod_ip: str,
    host_ip: str,
) -> JSON:
    """The status ``pod`` has with these init containers and containers."""
    initialized = all(c.finished and (c.view.terminated or {}).get("exitCode") == 0 for c in inits)
    old = pod.get("status") or {}
    now = now_rfc3339()
    for c in [*containers, *inits]:
        if c.view.running_since is None and c.view.terminated is None and not c.view.waiting:
            c.view.waiting = (
                ("PodInitializing", "")
                if not initialized and not c.init
                else ("ContainerCreating", "")
            )
    return pod_status(
        {"spec": pod.get("spec") or {}, "status": old},
        [c.view for c in inits],
        [c.view for c in containers],
        initialized=initialized,
        done=_done(inits, containers),
        pod_ip=pod_ip,
        host_ip=host_ip,
        now=now,
    )


def _done(inits: Sequence[Container], containers: Sequence[Container]) -> bool:
    """No container will run again: an init container failed for good, or every container
    terminated for good."""
    if any(c.finished and c.view.terminated and c.view.terminated["exitCode"] != 0 for c in inits):
        return True
    return bool(containers) and all(c.finished for c in containers)
