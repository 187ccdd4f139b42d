"""What a PodDisruptionBudget allows, computed from the budget and the pods: the one computation
the disruption controller (:mod:`devcluster.controllers.disruption`) writes into the PDB's status
and the eviction subresource (:mod:`devcluster.eviction`) decides with.

It follows kube-controller-manager's disruption controller (``getExpectedPodCount``,
``countHealthyPods``, ``updatePdbStatus``):

* **Selected pods**: the pods of the PDB's namespace its ``spec.selector`` matches (policy/v1:
  a missing selector selects nothing, ``{}`` every pod).
* **Healthy**: Ready condition True, not being deleted (no ``deletionTimestamp``), and not in
  ``status.disruptedPods`` (an eviction in flight) for less than two minutes.
* **Expected pods**: with an integer ``minAvailable``, the number of selected pods; with a
  percentage ``minAvailable`` or any ``maxUnavailable``, the scale of the pods' controllers
  (a Deployment's, ReplicaSet's, StatefulSet's or ReplicationController's ``spec.replicas``,
  each controller counted once). Pods without a controller count for nothing (upstream records
  an ``UnmanagedPods`` warning); a pod whose controller is another kind (upstream asks its
  ``scale`` subresource) counts as one pod here.
* **Desired healthy**: ``minAvailable`` (a percentage of expected pods, rounded up), or expected
  pods minus ``maxUnavailable`` (a percentage rounded up), never below 0; neither set: 0.
* **Disruptions allowed**: healthy minus desired, 0 when negative or when no pod is expected.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from devcluster.controllers.intstr import scaled_value
from devcluster.controllers.labels import selector_matches
from devcluster.controllers.pods import controller_of, parse_time, ready

__all__ = [
    "DELETION_TIMEOUT",
    "Budget",
    "ScaleLookup",
    "allowed_condition",
    "budget_status",
    "compute",
    "controller_scale",
    "healthy",
    "selects",
    "store_scale_lookup",
]

JSON = dict[str, Any]

DELETION_TIMEOUT = datetime.timedelta(minutes=2)
"""How long an entry of ``status.disruptedPods`` keeps its pod out of the healthy count."""

ScaleLookup = Callable[[JSON, str], "tuple[str, int] | None"]
"""(controllerRef, namespace) -> (uid of the controller that sets the scale, its replicas), or
None when that controller is not found."""


@dataclass(frozen=True)
class Budget:
    """A PDB's numbers at one moment (``status`` fields of the same names)."""

    expected_pods: int
    desired_healthy: int
    current_healthy: int
    disruptions_allowed: int


def selects(pdb: JSON, pod: JSON) -> bool:
    """Whether the PDB covers this pod (same namespace, selector matches its labels)."""
    if (pod["metadata"].get("namespace") or "") != (pdb["metadata"].get("namespace") or ""):
        return False
    selector = (pdb.get("spec") or {}).get("selector")
    return selector_matches(selector, pod["metadata"].get("labels"))


def healthy(pod: JSON, disrupted: dict[str, str], now: datetime.datetime) -> bool:
    """Counts towards ``currentHealthy``: Ready, not being deleted, not just evicted."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    since = parse_time(disrupted.get(pod["metadata"]["name"]))
    if since is not None and since + DELETION_TIMEOUT > now:
        return False
    return ready(pod)


def controller_scale(pods: Iterable[JSON], lookup: ScaleLookup) -> int:
    """The summed scale of the selected pods' controllers (``getExpectedScale``)."""
    scales: dict[str, int] = {}
    for pod in pods:
        ref = controller_of(pod)
        if ref is None:
            continue  # unmanaged: counts for nothing
        uid = str(ref.get("uid") or "")
        if uid in scales:
            continue
        found = lookup(ref, pod["metadata"].get("namespace") or "")
        if found is None:
            scales[uid or pod["metadata"]["name"]] = 1
            continue
        scales[found[0]] = found[1]
    return sum(scales.values())


def compute(
    pdb: JSON,
    pods: Iterable[JSON],
    lookup: ScaleLookup,
    now: datetime.datetime | None = None,
) -> Budget:
    """The budget of ``pdb`` over ``pods`` (all pods of its namespace, or any superset: the
    ones it does not select are skipped)."""
    now = now or datetime.datetime.now(datetime.UTC)
    selected = [p for p in pods if selects(pdb, p)]
    spec = pdb.get("spec") or {}
    disrupted = dict((pdb.get("status") or {}).get("disruptedPods") or {})
    min_available = spec.get("minAvailable")
    max_unavailable = spec.get("maxUnavailable")
    if max_unavailable is not None:
        expected = controller_scale(selected, lookup)
        desired = max(0, expected - scaled_value(max_unavailable, expected, True))
    elif isinstance(min_available, int):
        expected = len(selected)
        desired = min_available
    elif min_available is not None:
        expected = controller_scale(selected, lookup)
        desired = scaled_value(min_available, expected, True)
    else:
        expected, desired = 0, 0
    current = sum(1 for p in selected if healthy(p, disrupted, now))
    allowed = current - desired
    if expected <= 0 or allowed <= 0:
        allowed = 0
    return Budget(expected, desired, current, allowed)


Getter = Callable[[tuple[str, str], str, str], "JSON | None"]
"""(store key, namespace, name) -> the stored object (``Store.get``)."""

_SCALED = {
    "ReplicaSet": ("apps", "replicasets"),
    "StatefulSet": ("apps", "statefulsets"),
    "ReplicationController": ("", "replicationcontrollers"),
    "Deployment": ("apps", "deployments"),
}


def store_scale_lookup(get: Getter) -> ScaleLookup:
    """The disruption controller's finders over stored objects: a ReplicaSet owned by a
    Deployment gives the Deployment's scale, else a controller gives its own ``spec.replicas``
    (1 when unset)."""

    def lookup(ref: JSON, namespace: str) -> tuple[str, int] | None:
        key = _SCALED.get(str(ref.get("kind") or ""))
        if key is None:
            return None
        obj = get(key, namespace, str(ref.get("name") or ""))
        if obj is None or (ref.get("uid") and obj["metadata"].get("uid") != ref.get("uid")):
            return None
        if key == ("apps", "replicasets"):
            parent = controller_of(obj)
            if parent is not None and parent.get("kind") == "Deployment":
                found = lookup(parent, namespace)
                if found is not None:
                    return found
        replicas = (obj.get("spec") or {}).get("replicas")
        return str(obj["metadata"].get("uid") or ""), 1 if replicas is None else int(replicas)

    return lookup


def budget_status(old: JSON, budget: Budget, generation: int | None, now: str) -> JSON:
    """The PDB ``status`` the disruption controller writes (``updatePdbStatus``): the budget's
    numbers, ``observedGeneration``, ``disruptedPods`` as given in ``old`` and the
    ``DisruptionAllowed`` condition (its ``lastTransitionTime`` moves only when it flips)."""
    status: JSON = {
        "currentHealthy": budget.current_healthy,
        "desiredHealthy": budget.desired_healthy,
        "expectedPods": budget.expected_pods,
        "disruptionsAllowed": budget.disruptions_allowed,
    }
    if old.get("disruptedPods"):
        status["disruptedPods"] = dict(old["disruptedPods"])
    if generation is not None:
        status["observedGeneration"] = generation
    status["conditions"] = allowed_condition(
        list(old.get("conditions") or []), budget.disruptions_allowed, generation, now
    )
    return status


def allowed_condition(
    conditions: list[JSON], allowed: int, generation: int | None, now: str
) -> list[JSON]:
    """``conditions`` with ``DisruptionAllowed`` set as ``UpdateDisruptionAllowedCondition``
    does: True/SufficientPods when a disruption is allowed, else False/InsufficientPods."""
    status, reason = ("True", "SufficientPods") if allowed > 0 else ("False", "InsufficientPods")
    cond: JSON = {"type": "DisruptionAllowed", "status": status, "reason": reason, "message": ""}
    if generation is not None:
        cond["observedGeneration"] = generation
    out = [dict(c) for c in conditions]
    for i, c in enumerate(out):
        if c.get("type") == "DisruptionAllowed":
            same = c.get("status") == status and c.get("lastTransitionTime")
            cond["lastTransitionTime"] = c["lastTransitionTime"] if same else now
            out[i] = cond
            return out
    cond["lastTransitionTime"] = now
    out.append(cond)
    return out
