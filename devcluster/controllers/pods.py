"""What the workload controllers need to know about Pods and owners: controller references,
active/ready/available pods, time stamps, and a Pod built from a pod template (what client-go's
``GetPodFromTemplate`` gives a controller to create).
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

__all__ = [
    "POD",
    "active",
    "available",
    "condition",
    "controller_of",
    "controller_ref",
    "now_utc",
    "owned_by",
    "parse_time",
    "pod_from_template",
    "ready",
    "seconds_until_available",
]

JSON = dict[str, Any]
POD = ("", "pods")


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(
            tzinfo=datetime.UTC
        )
    except ValueError:
        return None


def controller_of(obj: JSON) -> JSON | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def owned_by(obj: JSON, owner_uid: str) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == owner_uid


def controller_ref(owner: JSON) -> JSON:
    """``metav1.NewControllerRef(owner)``."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def condition(obj: JSON, type_: str) -> JSON | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return None


def active(pod: JSON) -> bool:
    """Neither terminal (Succeeded/Failed) nor being deleted (``FilterActivePods``)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def ready(pod: JSON) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def available(pod: JSON, min_ready_seconds: int, now: datetime.datetime) -> bool:
    """Ready for at least ``min_ready_seconds`` (``IsPodAvailable``)."""
    if not ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    c = condition(pod, "Ready") or {}
    since = parse_time(c.get("lastTransitionTime"))
    return since is not None and since + datetime.timedelta(seconds=min_ready_seconds) <= now


def seconds_until_available(pod: JSON, min_ready_seconds: int, now: datetime.datetime) -> float:
    """How long a ready pod still has to wait to count as available (0 if it does)."""
    c = condition(pod, "Ready") or {}
    since = parse_time(c.get("lastTransitionTime"))
    if since is None:
        return 0.0
    due = since + datetime.timedelta(seconds=min_ready_seconds)
    return max(0.0, (due - now).total_seconds())


def pod_from_template(
    template: JSON,
    owner: JSON,
    *,
    generate_name: str | None = None,
    name: str | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> JSON:
    """A Pod for ``template`` controlled by ``owner``: the template's labels, annotations,
    finalizers and spec; ``generateName`` ``<owner>-`` unless a name is given."""
    tmeta = template.get("metadata") or {}
    meta: JSON = {}
    pod_labels = dict(tmeta.get("labels") or {})
    pod_labels.update(labels or {})
    if pod_labels:
        meta["labels"] = pod_labels
    pod_annotations = dict(tmeta.get("annotations") or {})
    pod_annotations.update(annotations or {})
    if pod_annotations:
        meta["annotations"] = pod_annotations
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = generate_name or f"{owner['metadata']['name']}-"
    meta["ownerReferences"] = [controller_ref(owner)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
