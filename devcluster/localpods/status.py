"""The Pod status a local pod's worker reports, from what its containers are doing (pure).

Phase: ``Pending`` until every container has started once (init containers still running, a
container waiting for its config), ``Succeeded``/``Failed`` when every container terminated
and none will be restarted (Failed if one exited non-zero), else ``Running``. ``Ready`` and
``ContainersReady`` are True when every container runs and is ready. Timestamps of unchanged
conditions are kept, so recomputing an unchanged status gives the same object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devcluster.controllers.podstatus import normalize_image, pod_condition, qos_class

__all__ = ["ContainerView", "exit_reason", "pod_status"]

JSON = dict[str, Any]


def exit_reason(code: int, *, oom_killed: bool = False) -> str:
    """A terminated container's ``reason``: ``OOMKilled`` when the kernel's OOM killer ended it
    (in its memory cgroup), else ``Completed`` (exit 0) or ``Error``, as upstream reports."""
    if oom_killed:
        return "OOMKilled"
    return "Completed" if code == 0 else "Error"


@dataclass
class ContainerView:
    """What the status says of one container."""

    name: str
    image: str
    container_id: str = ""
    running_since: str | None = None  # startedAt of the running run
    waiting: tuple[str, str] | None = None  # (reason, message)
    terminated: JSON | None = None  # the current state when terminated for good
    last_terminated: JSON | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    ever_started: bool = False
    extra: JSON = field(default_factory=dict)

    def as_status(self) -> JSON:
        image = normalize_image(self.image)
        state: JSON
        if self.running_since is not None:
            state = {"running": {"startedAt": self.running_since}}
        elif self.terminated is not None:
            state = {"terminated": dict(self.terminated)}
        else:
            reason, message = self.waiting or ("ContainerCreating", "")
            state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        out: JSON = {
            "name": self.name,
            "state": state,
            "lastState": {"terminated": dict(self.last_terminated)} if self.last_terminated else {},
            "ready": self.ready and self.running_since is not None,
            "restartCount": self.restart_count,
            "image": image,
            "imageID": f"{image.rsplit(':', 1)[0]}@sha256:{'0' * 64}",
            "started": self.started and self.running_since is not None,
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


def pod_status(
    pod: JSON,
    inits: list[ContainerView],
    containers: list[ContainerView],
    *,
    initialized: bool,
    done: bool,
    pod_ip: str,
    host_ip: str,
    now: str,
) -> JSON:
    """The status of ``pod``; ``done``: no container will run again."""
    old = pod.get("status") or {}
    spec = pod.get("spec") or {}
    if done:
        failed = any(
            int((c.terminated or {}).get("exitCode") or 0) != 0 for c in containers
        ) or any(int((c.terminated or {}).get("exitCode") or 0) != 0 for c in inits)
        phase = "Failed" if failed else "Succeeded"
    elif initialized and all(c.ever_started for c in containers):
        phase = "Running"
    else:
        phase = "Pending"
    unready = [c.name for c in containers if not (c.ready and c.running_since)]
    all_ready = not unready and phase == "Running"
    if done:
        reason, msg = "PodCompleted", ""
    else:
        reason, msg = "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]"
    old_conds = {c.get("type"): c for c in old.get("conditions") or []}
    pending_inits = [c.name for c in inits if c.terminated is None or c.running_since]
    conditions = [
        pod_condition("PodReadyToStartContainers", True, old_conds, now, "", ""),
        pod_condition(
            "Initialized",
            initialized,
            old_conds,
            now,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(pending_inits)}]",
        ),
        pod_condition("Ready", all_ready, old_conds, now, reason, msg),
        pod_condition("ContainersReady", all_ready, old_conds, now, reason, msg),
        pod_condition("PodScheduled", True, old_conds, now, "", ""),
    ]
    status: JSON = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": old.get("startTime") or now,
        "containerStatuses": [c.as_status() for c in containers],
        "qosClass": qos_class(spec),
    }
    if inits:
        status["initContainerStatuses"] = [c.as_status() for c in inits]
    return status
