"""The scheduler: binds every unscheduled Pod to a Node, round-robin over the Ready,
schedulable Nodes whose labels its ``nodeSelector`` and required node affinity match and whose
taints it tolerates. A Pod no Node fits gets ``PodScheduled=False`` (reason Unschedulable) and
is tried again when a Node changes. Pods naming another ``schedulerName`` are left alone.

The binding is written as an update of ``spec.nodeName`` by ``kube-scheduler``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from devcluster.controllers.labels import node_matches, tolerates
from devcluster.controllers.nodes import NODE
from devcluster.controllers.pods import POD, condition
from devcluster.controllers.runtime import Controller, Key, Mapper, StoreKey, key_of
from devcluster.handlers import Api, now_rfc3339
from devcluster.storage import Event

__all__ = ["Scheduler"]

JSON = dict[str, Any]


def _unscheduled(pod: JSON) -> bool:
    spec = pod.get("spec") or {}
    return (
        not spec.get("nodeName")
        and not pod["metadata"].get("deletionTimestamp")
        and (spec.get("schedulerName") or "default-scheduler") == "default-scheduler"
        and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    )


_NOT_READY = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
_UNSCHEDULABLE = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def _tainted(node: JSON, taint: JSON) -> JSON:
    """Only ``taint`` on the node (to check one condition's toleration)."""
    return {"metadata": node["metadata"], "spec": {"taints": [taint]}}


def node_ready(node: JSON) -> bool:
    c = condition(node, "Ready")
    return c is not None and c.get("status") == "True"


class Scheduler(Controller):
    """``default-scheduler``, reduced to filtering and round-robin."""

    name = "scheduler"
    manager = "kube-scheduler"

    def __init__(self, api: Api) -> None:
        super().__init__(api)
        self._next = 0

    def routes(self) -> dict[StoreKey, Mapper]:
        return {POD: self._pod_keys, NODE: self._node_keys}

    def initial_keys(self) -> Iterable[Key]:
        return [key_of(p) for p in self.store.list_objects(POD)[1] if _unscheduled(p)]

    def _pod_keys(self, ev: Event) -> Iterable[Key]:
        if ev.type == "DELETED" or not _unscheduled(ev.obj):
            return ()
        return [key_of(ev.obj)]

    def _node_keys(self, ev: Event) -> Iterable[Key]:
        if ev.type == "DELETED":
            return ()
        return self.initial_keys()

    def sync(self, key: Key) -> None:
        pod = self.store.get(POD, *key)
        if pod is None or not _unscheduled(pod):
            return
        spec = pod.get("spec") or {}
        nodes = self.store.list_objects(NODE)[1]
        fit: list[JSON] = []
        reasons: dict[str, int] = {}
        for node in nodes:
            reason = self._misfit(spec, node)
            if reason is None:
                fit.append(node)
            else:
                reasons[reason] = reasons.get(reason, 0) + 1
        if not fit:
            self._unschedulable(pod, len(nodes), reasons)
            return
        node = fit[self._next % len(fit)]
        self._next += 1
        new = copy.deepcopy(pod)
        new["spec"]["nodeName"] = node["metadata"]["name"]
        bound = self.writer.update(POD, new)
        meta = bound["metadata"]
        self.writer.event(
            bound,
            "Scheduled",
            f"Successfully assigned {meta.get('namespace')}/{meta['name']} to "
            f"{node['metadata']['name']}",
            "default-scheduler",
        )

    @staticmethod
    def _misfit(spec: JSON, node: JSON) -> str | None:
        """Why the pod cannot go to this node (None: it can). A node that is not Ready or is
        cordoned counts as tainted, as the node lifecycle controller taints it."""
        if not node_ready(node) and not tolerates(spec, _tainted(node, _NOT_READY)):
            return "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
        if (node.get("spec") or {}).get("unschedulable") and not tolerates(
            spec, _tainted(node, _UNSCHEDULABLE)
        ):
            return "node(s) were unschedulable"
        if not node_matches(spec, node):
            return "node(s) didn't match Pod's node affinity/selector"
        if not tolerates(spec, node):
            return "node(s) had untolerated taint(s)"
        return None

    def _unschedulable(self, pod: JSON, total: int, reasons: dict[str, int]) -> None:
        detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
        message = f"0/{total} nodes are available" + (f": {detail}." if detail else ".")
        cur = condition(pod, "PodScheduled")
        if cur is not None and cur.get("status") == "False" and cur.get("message") == message:
            return
        new = copy.deepcopy(pod)
        status = new.setdefault("status", {})
        status.setdefault("phase", "Pending")
        status["conditions"] = [
            c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"
        ] + [
            {
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": None,
                "lastTransitionTime": now_rfc3339(),
                "reason": "Unschedulable",
                "message": message,
            }
        ]
        self.writer.update_status(POD, new)
