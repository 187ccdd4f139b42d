"""The ``status`` a kubelet reports for a Pod it runs, computed from the spec and the previous
status (so recomputing it changes nothing): phase, conditions, IPs, start time, container and
init container statuses, QoS class.

Containers start at once and stay running; a pod that runs to completion finishes on the next
sync with exit code 0. Whether running containers are ready is the caller's choice (the
devcluster's ``pods_ready``). A container whose image changes in the spec is restarted with the
new image, as a kubelet does.
"""

from __future__ import annotations

import hashlib
from typing import Any

from devcluster.handlers import now_rfc3339

__all__ = ["PodPlacement", "normalize_image", "pod_condition", "pod_status", "qos_class"]

JSON = dict[str, Any]


class PodPlacement:
    """Where a pod runs: its IP and its node's IP."""

    def __init__(self, pod_ip: str, host_ip: str) -> None:
        self.pod_ip = pod_ip
        self.host_ip = host_ip


def normalize_image(image: str) -> str:
    """``nginx:1.25`` -> ``docker.io/library/nginx:1.25`` (what containerd reports)."""
    name, at, digest = image.partition("@")
    first, slash, _ = name.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        name = f"docker.io/{name}" if slash else f"docker.io/library/{name}"
    if not at and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}@{digest}" if at else name


def _image_id(image: str) -> str:
    repo = image.partition("@")[0]
    last = repo.rsplit("/", 1)
    if ":" in last[-1]:
        repo = repo[: repo.rfind(":")]
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _container_id(uid: str, name: str, restarts: int) -> str:
    return "containerd://" + hashlib.sha256(f"{uid}/{name}/{restarts}".encode()).hexdigest()


def qos_class(spec: JSON) -> str:
    """Guaranteed (every container limits cpu and memory, requests equal to them),
    BestEffort (no container requests or limits anything), else Burstable."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = bool(containers)
    for c in containers:
        res = c.get("resources") or {}
        limits = res.get("limits") or {}
        requests = res.get("requests") or {}
        if any(k in limits or k in requests for k in ("cpu", "memory")):
            any_set = True
        for k in ("cpu", "memory"):
            if k not in limits or str(requests.get(k, limits[k])) != str(limits[k]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def pod_condition(
    type_: str, ok: bool, old: dict[str, JSON], now: str, reason: str, msg: str
) -> JSON:
    """One Pod condition; its ``lastTransitionTime`` kept while its status does not change."""
    status = "True" if ok else "False"
    prev = old.get(type_)
    c: JSON = {"type": type_, "status": status, "lastProbeTime": None}
    if prev is not None and prev.get("status") == status and prev.get("lastTransitionTime"):
        c["lastTransitionTime"] = prev["lastTransitionTime"]
    else:
        c["lastTransitionTime"] = now
    if not ok and reason:
        c["reason"] = reason
        c["message"] = msg
    return c


def _container_status(
    c: JSON, prev: JSON | None, uid: str, *, running: bool, ready: bool, now: str
) -> JSON:
    image = normalize_image(str(c.get("image") or ""))
    restarts = int(prev.get("restartCount") or 0) if prev else 0
    last_state: JSON = dict(prev.get("lastState") or {}) if prev else {}
    prev_state = (prev or {}).get("state") or {}
    started_at = (prev_state.get("running") or {}).get("startedAt")
    if prev is not None and prev.get("image") != image and "running" in prev_state:
        # a new image: the container is restarted with it
        last_state = {
            "terminated": {
                "exitCode": 0,
                "reason": "Completed",
                "startedAt": started_at,
                "finishedAt": now,
                "containerID": prev.get("containerID"),
            }
        }
        restarts += 1
        started_at = None
    started_at = started_at or now
    cid = _container_id(uid, str(c.get("name")), restarts)
    state: JSON
    if running:
        state = {"running": {"startedAt": started_at}}
    else:
        terminated = (prev_state.get("terminated") or {}) if prev_state else {}
        state = {
            "terminated": terminated
            or {
                "exitCode": 0,
                "reason": "Completed",
                "startedAt": started_at,
                "finishedAt": now,
                "containerID": cid,
            }
        }
    return {
        "name": c.get("name"),
        "state": state,
        "lastState": last_state,
        "ready": ready and running,
        "restartCount": restarts,
        "image": image,
        "imageID": _image_id(image),
        "containerID": cid,
        "started": running,
    }


def _init_status(c: JSON, prev: JSON | None, uid: str, now: str) -> JSON:
    if prev is not None and "terminated" in (prev.get("state") or {}):
        return prev
    image = normalize_image(str(c.get("image") or ""))
    cid = _container_id(uid, str(c.get("name")), 0)
    return {
        "name": c.get("name"),
        "state": {
            "terminated": {
                "exitCode": 0,
                "reason": "Completed",
                "startedAt": now,
                "finishedAt": now,
                "containerID": cid,
            }
        },
        "lastState": {},
        "ready": True,
        "restartCount": 0,
        "image": image,
        "imageID": _image_id(image),
        "containerID": cid,
        "started": False,
    }


def pod_status(pod: JSON, placement: PodPlacement, *, ready: bool, finish: bool) -> JSON:
    """The status of ``pod`` running at ``placement``; ``finish``: its containers exit 0 now
    (phase Succeeded). A terminal status is returned unchanged."""
    old = pod.get("status") or {}
    if old.get("phase") in ("Succeeded", "Failed"):
        return dict(old)
    now = now_rfc3339()
    uid = str(pod["metadata"].get("uid") or "")
    spec = pod.get("spec") or {}
    running = not finish
    prev = {c.get("name"): c for c in old.get("containerStatuses") or []}
    containers = [
        _container_status(c, prev.get(c.get("name")), uid, running=running, ready=ready, now=now)
        for c in spec.get("containers") or []
    ]
    prev_init = {c.get("name"): c for c in old.get("initContainerStatuses") or []}
    inits = [
        _init_status(c, prev_init.get(c.get("name")), uid, now)
        for c in spec.get("initContainers") or []
    ]
    all_ready = running and ready
    unready = [str(c["name"]) for c in containers if not c["ready"]]
    reason, msg = (
        ("PodCompleted", "")
        if finish
        else (
            "ContainersNotReady",
            f"containers with unready status: [{' '.join(unready)}]",
        )
    )
    old_conds = {c.get("type"): c for c in old.get("conditions") or []}
    conditions = [
        pod_condition("PodReadyToStartContainers", True, old_conds, now, "", ""),
        pod_condition("Initialized", True, old_conds, now, "", ""),
        pod_condition("Ready", all_ready, old_conds, now, reason, msg),
        pod_condition("ContainersReady", all_ready, old_conds, now, reason, msg),
        pod_condition("PodScheduled", True, old_conds, now, "", ""),
    ]
    if finish:
        for c in conditions:
            if c["type"] in ("Ready", "ContainersReady"):
                c["reason"] = "PodCompleted"
                c.pop("message", None)
    status: JSON = {
        "phase": "Succeeded" if finish else "Running",
        "conditions": conditions,
        "hostIP": placement.host_ip,
        "hostIPs": [{"ip": placement.host_ip}],
        "podIP": placement.pod_ip,
        "podIPs": [{"ip": placement.pod_ip}],
        "startTime": old.get("startTime") or now,
        "containerStatuses": containers,
        "qosClass": qos_class(spec),
    }
    if inits:
        status["initContainerStatuses"] = inits
    return status
