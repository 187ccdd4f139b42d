"""The ReplicaSet controller, which also runs core ReplicationControllers (as the real
``replicaset`` and ``replicationcontroller`` controllers share one implementation).

For each set: claim the pods its selector matches, create pods from the template
(``generateName: <set>-``) or delete the least valuable ones until ``spec.replicas`` pods are
active, then write ``status`` (replicas, fullyLabeledReplicas, readyReplicas,
availableReplicas, observedGeneration). A set with ``minReadySeconds`` is looked at again when
its ready pods become available.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from devcluster.controllers import pods as podutil
from devcluster.controllers.claims import claim
from devcluster.controllers.labels import selector_matches
from devcluster.controllers.pods import POD
from devcluster.controllers.runtime import Controller, Key, Mapper, StoreKey, key_of
from devcluster.handlers import Api
from devcluster.storage import Event

__all__ = ["ReplicaSetController"]

JSON = dict[str, Any]

RS = ("apps", "replicasets")
RC = ("", "replicationcontrollers")

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


class ReplicaSetController(Controller):
    """Keeps ``spec.replicas`` pods of every ReplicaSet (or ReplicationController)."""

    def __init__(self, api: Api, kind: StoreKey = RS) -> None:
        self.kind = kind
        self.owner_kind = "ReplicaSet" if kind == RS else "ReplicationController"
        self.name = "replicaset" if kind == RS else "replicationcontroller"
        self.component = f"{self.name}-controller"  # the Events' source
        super().__init__(api)

    # ---------------------------------------------------------------- wiring

    def routes(self) -> dict[StoreKey, Mapper]:
        return {self.kind: lambda ev: [key_of(ev.obj)], POD: self._pod_keys}

    def initial_keys(self) -> Iterable[Key]:
        return [key_of(o) for o in self.store.list_objects(self.kind)[1]]

    def _pod_keys(self, ev: Event) -> Iterable[Key]:
        out: set[Key] = set()
        for pod in (ev.obj, ev.old):
            if pod is None:
                continue
            ns = pod["metadata"].get("namespace") or ""
            ref = podutil.controller_of(pod)
            if ref is not None:
                if ref.get("kind") == self.owner_kind:
                    out.add((ns, ref.get("name", "")))
            elif ev.type != "DELETED":
                labels = pod["metadata"].get("labels") or {}
                for owner in self.store.list_objects(self.kind, ns)[1]:
                    if self._selects(owner, labels):
                        out.add(key_of(owner))
        return out

    # ---------------------------------------------------------------- selection

    def _selector(self, owner: JSON) -> JSON | None:
        spec = owner.get("spec") or {}
        if self.kind == RS:
            sel = spec.get("selector")
            if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
                return None  # an empty selector selects nothing here
            return dict(sel)
        labels = spec.get("selector") or ((spec.get("template") or {}).get("metadata") or {}).get(
            "labels"
        )
        return {"matchLabels": dict(labels)} if labels else None

    def _selects(self, owner: JSON, labels: dict[str, str]) -> bool:
        return selector_matches(self._selector(owner), labels)

    # ---------------------------------------------------------------- sync

    def sync(self, key: Key) -> None:
        ns, name = key
        stored = self.store.get(self.kind, ns, name)
        if stored is None:
            return
        owner = copy.deepcopy(stored)
        selector = self._selector(owner)
        spec = owner.get("spec") or {}
        want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        min_ready = int(spec.get("minReadySeconds") or 0)
        pods = self._claimed(owner, selector)
        deleting = bool(owner["metadata"].get("deletionTimestamp"))
        if not deleting and selector is not None:
            live = [p for p in pods if podutil.active(p)]
            diff = len(live) - want
            if diff < 0:
                template = spec.get("template") or {}
                for _ in range(-diff):
                    pod = self.writer.create(POD, ns, podutil.pod_from_template(template, owner))
                    self.writer.event(
                        owner, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                        self.component,
                    )
            elif diff > 0:
                for pod in self._to_delete(live, diff):
                    meta = pod["metadata"]
                    self.writer.delete(POD, ns, meta["name"], uid=meta.get("uid"))
                    self.writer.event(
                        owner, "SuccessfulDelete", f"Deleted pod: {meta['name']}", self.component
                    )
            pods = self._claimed(owner, selector)
        self._write_status(owner, pods, min_ready)

    def _claimed(self, owner: JSON, selector: JSON | None) -> list[JSON]:
        ns = owner["metadata"].get("namespace") or ""
        candidates = self.store.list_objects(POD, ns)[1]
        return claim(
            self.writer,
            POD,
            owner,
            candidates,
            lambda p: selector_matches(selector, p["metadata"].get("labels")),
        )

    def _to_delete(self, pods: list[JSON], count: int) -> list[JSON]:
        """The ``count`` pods a real ReplicaSet deletes first: unscheduled before scheduled,
        pending before running, not ready before ready, newer before older."""
        ranked = sorted(
            pods,
            key=lambda p: p["metadata"].get("creationTimestamp") or "",
            reverse=True,
        )
        ranked.sort(
            key=lambda p: (
                bool((p.get("spec") or {}).get("nodeName")),
                _PHASE_RANK.get((p.get("status") or {}).get("phase") or "Pending", 0),
                podutil.ready(p),
            )
        )
        return ranked[:count]

    def _write_status(self, owner: JSON, pods: list[JSON], min_ready: int) -> None:
        now = podutil.now_utc()
        live = [p for p in pods if podutil.active(p)]
        template_labels = (
            ((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}
        ).get("labels") or {}
        fully = sum(
            1
            for p in live
            if all(
                (p["metadata"].get("labels") or {}).get(k) == v for k, v in template_labels.items()
            )
        )
        ready = [p for p in live if podutil.ready(p)]
        avail = [p for p in ready if podutil.available(p, min_ready, now)]
        status: JSON = {
            k: v
            for k, v in (owner.get("status") or {}).items()
            if k not in ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas")
        }
        status["replicas"] = len(live)
        if fully:
            status["fullyLabeledReplicas"] = fully
        if ready:
            status["readyReplicas"] = len(ready)
        if avail:
            status["availableReplicas"] = len(avail)
        if owner["metadata"].get("generation"):
            status["observedGeneration"] = owner["metadata"]["generation"]
        if status != owner.get("status"):
            new = copy.deepcopy(owner)
            new["status"] = status
            self.writer.update_status(self.kind, new)
        if min_ready > 0 and len(avail) < len(ready):
            wait = min(podutil.seconds_until_available(p, min_ready, now) for p in ready)
            self.queue.add_after(key_of(owner), wait + 0.05)
