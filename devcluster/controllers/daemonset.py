"""The DaemonSet controller: one pod on every Node the template's node selector, required node
affinity and tolerations admit.

Each pod is pinned to its node by node affinity on ``metadata.name`` (the scheduler binds it)
and gets the tolerations a real DaemonSet pod gets (not-ready, unreachable, pressure,
unschedulable). Surplus pods on a node, pods on nodes that no longer fit and failed pods are
deleted. A template change is rolled out (``RollingUpdate``, ``maxUnavailable`` default 1) by
deleting old pods while the unavailable count allows and recreating them from the new
revision; ``OnDelete`` waits. Pods carry ``controller-revision-hash`` and
``pod-template-generation``. Status: desiredNumberScheduled, currentNumberScheduled,
numberMisscheduled, numberReady, numberAvailable, numberUnavailable, updatedNumberScheduled,
observedGeneration.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from devcluster.controllers import pods as podutil
from devcluster.controllers import revisions
from devcluster.controllers.claims import claim
from devcluster.controllers.intstr import scaled_value
from devcluster.controllers.labels import node_matches, selector_matches, tolerates
from devcluster.controllers.nodes import NODE
from devcluster.controllers.pods import POD
from devcluster.controllers.runtime import Controller, Key, Mapper, StoreKey, key_of
from devcluster.storage import Event

__all__ = ["DaemonSetController"]

JSON = dict[str, Any]
DS = ("apps", "daemonsets")

REVISION_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"

_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def _node_of(pod: JSON) -> str | None:
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in affinity.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and f.get("values"):
                return str(f["values"][0])
    return None


class DaemonSetController(Controller):
    """One pod per fitting Node (see the module docstring)."""

    name = "daemonset"

    def routes(self) -> dict[StoreKey, Mapper]:
        return {DS: lambda ev: [key_of(ev.obj)], POD: self._pod_keys, NODE: self._node_keys}

    def initial_keys(self) -> Iterable[Key]:
        return [key_of(o) for o in self.store.list_objects(DS)[1]]

    def _pod_keys(self, ev: Event) -> Iterable[Key]:
        out: set[Key] = set()
        for pod in (ev.obj, ev.old):
            if pod is None:
                continue
            ref = podutil.controller_of(pod)
            if ref is not None and ref.get("kind") == "DaemonSet":
                out.add((pod["metadata"].get("namespace") or "", ref.get("name", "")))
        return out

    def _node_keys(self, ev: Event) -> Iterable[Key]:
        return self.initial_keys()

    @staticmethod
    def _selector(ds: JSON) -> JSON | None:
        sel = (ds.get("spec") or {}).get("selector")
        if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
            return None
        return dict(sel)

    # ---------------------------------------------------------------- sync

    def sync(self, key: Key) -> None:
        ns, name = key
        stored = self.store.get(DS, ns, name)
        if stored is None:
            return
        ds = copy.deepcopy(stored)
        selector = self._selector(ds)
        if selector is None:
            return
        pods = claim(
            self.writer,
            POD,
            ds,
            self.store.list_objects(POD, ns)[1],
            lambda p: selector_matches(selector, p["metadata"].get("labels")),
        )
        revision = revisions.sync_revision(self.store, self.writer, ds)
        template_spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
        nodes = {
            n["metadata"]["name"]: n
            for n in self.store.list_objects(NODE)[1]
            if node_matches(template_spec, n) and tolerates(self._pod_spec(template_spec), n)
        }
        if not ds["metadata"].get("deletionTimestamp"):
            self._manage(ds, pods, nodes, revision.hash)
            pods = [
                p
                for p in self.store.list_objects(POD, ns)[1]
                if podutil.owned_by(p, ds["metadata"]["uid"])
            ]
        live = {revision.name} | {
            f"{name}-{(p['metadata'].get('labels') or {}).get(REVISION_LABEL)}" for p in pods
        }
        revisions.truncate_history(self.store, self.writer, ds, live)
        self._write_status(ds, pods, nodes, revision.hash)

    @staticmethod
    def _pod_spec(template_spec: JSON) -> JSON:
        spec = copy.deepcopy(template_spec)
        have = spec.get("tolerations") or []
        spec["tolerations"] = have + [t for t in _TOLERATIONS if t not in have]
        return spec

    def _manage(self, ds: JSON, pods: list[JSON], nodes: dict[str, JSON], h: str) -> None:
        ns = ds["metadata"].get("namespace") or ""
        by_node: dict[str, list[JSON]] = {}
        for p in pods:
            if p["metadata"].get("deletionTimestamp"):
                continue
            if (p.get("status") or {}).get("phase") == "Failed":
                self._delete(p)
                continue
            by_node.setdefault(_node_of(p) or "", []).append(p)
        for node_name, on_node in by_node.items():
            if node_name not in nodes:
                for p in on_node:
                    self._delete(p)
            elif len(on_node) > 1:
                on_node.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
                for p in on_node[1:]:
                    self._delete(p)
        for node_name in sorted(nodes):
            if node_name not in by_node:
                self.writer.create(POD, ns, self._new_pod(ds, node_name, h))
        self._roll(ds, by_node, nodes, h)

    def _roll(
        self, ds: JSON, by_node: dict[str, list[JSON]], nodes: dict[str, JSON], h: str
    ) -> None:
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
            return
        desired = len(nodes)
        budget = scaled_value(
            (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1), desired, True
        )
        budget = max(budget, 1)
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        now = podutil.now_utc()
        unavailable = 0
        old_available: list[JSON] = []
        old_unavailable: list[JSON] = []
        for node_name in nodes:
            on_node = by_node.get(node_name) or []
            pod = on_node[0] if on_node else None
            ok = pod is not None and podutil.available(pod, min_ready, now)
            if not ok:
                unavailable += 1
            if pod is not None and (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) != h:
                (old_available if ok else old_unavailable).append(pod)
        for pod in old_unavailable:
            self._delete(pod)
        room = budget - unavailable
        for pod in old_available[: max(0, room)]:
            self._delete(pod)

    def _new_pod(self, ds: JSON, node_name: str, h: str) -> JSON:
        template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
        pod = podutil.pod_from_template(
            template,
            ds,
            labels={
                REVISION_LABEL: h,
                GENERATION_LABEL: str(ds["metadata"].get("generation", 1)),
            },
        )
        spec = self._pod_spec(pod["spec"])
        affinity = spec.setdefault("affinity", {})
        affinity["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchFields": [
                            {"key": "metadata.name", "operator": "In", "values": [node_name]}
                        ]
                    }
                ]
            }
        }
        pod["spec"] = spec
        return pod

    def _delete(self, pod: JSON) -> None:
        meta = pod["metadata"]
        self.writer.delete(POD, meta.get("namespace") or "", meta["name"], uid=meta.get("uid"))

    def _write_status(self, ds: JSON, pods: list[JSON], nodes: dict[str, JSON], h: str) -> None:
        now = podutil.now_utc()
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        scheduled = {_node_of(p) for p in live}
        current = sum(1 for n in nodes if n in scheduled)
        misscheduled = len({n for n in scheduled if n is not None and n not in nodes})
        on_nodes = [p for p in live if _node_of(p) in nodes]
        ready = [p for p in on_nodes if podutil.ready(p)]
        available = [p for p in ready if podutil.available(p, min_ready, now)]
        updated = [
            p for p in on_nodes if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == h
        ]
        status: JSON = {
            "currentNumberScheduled": current,
            "numberMisscheduled": misscheduled,
            "desiredNumberScheduled": len(nodes),
            "numberReady": len(ready),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        if updated:
            status["updatedNumberScheduled"] = len(updated)
        if available:
            status["numberAvailable"] = len(available)
        if len(nodes) - len(available) > 0:
            status["numberUnavailable"] = len(nodes) - len(available)
        for k in ("conditions", "collisionCount"):
            if k in (ds.get("status") or {}):
                status[k] = ds["status"][k]
        if status != ds.get("status"):
            new = copy.deepcopy(ds)
            new["status"] = status
            self.writer.update_status(DS, new)
        if min_ready > 0 and len(available) < len(ready):
            wait = min(podutil.seconds_until_available(p, min_ready, now) for p in ready)
            self.queue.add_after(key_of(ds), wait + 0.05)
