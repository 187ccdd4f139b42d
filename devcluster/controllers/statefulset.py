"""The StatefulSet controller: pods ``<set>-0 .. <set>-(n-1)`` with stable names.

``OrderedReady`` (the default) creates one pod at a time, each once the lower ordinals are
Running and Ready, and removes surplus pods highest ordinal first, one at a time; ``Parallel``
does both at once. A template change is rolled out (``RollingUpdate``, honouring
``partition``) by deleting pods highest ordinal first and recreating them from the new
revision, one at a time, each once the rest are Ready; ``OnDelete`` waits for pods to be
deleted by someone else. Pods carry ``controller-revision-hash`` (the revision name),
``statefulset.kubernetes.io/pod-name`` and ``apps.kubernetes.io/pod-index``; their
``hostname`` is their name and ``subdomain`` the set's ``serviceName``. Revisions are
ControllerRevisions (:mod:`.revisions`). Status: replicas, readyReplicas, availableReplicas,
currentReplicas, updatedReplicas, currentRevision, updateRevision, observedGeneration,
collisionCount.

Not simulated: ``volumeClaimTemplates`` (no PersistentVolumeClaims are created).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from devcluster.controllers import pods as podutil
from devcluster.controllers import revisions
from devcluster.controllers.claims import claim
from devcluster.controllers.labels import selector_matches
from devcluster.controllers.pods import POD
from devcluster.controllers.runtime import Controller, Key, Mapper, StoreKey, key_of
from devcluster.storage import Event

__all__ = ["StatefulSetController"]

JSON = dict[str, Any]
STS = ("apps", "statefulsets")

REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def _ordinal(set_name: str, pod: JSON) -> int | None:
    name = pod["metadata"]["name"]
    prefix = f"{set_name}-"
    if not name.startswith(prefix) or not name[len(prefix) :].isdigit():
        return None
    return int(name[len(prefix) :])


def _running_and_ready(pod: JSON) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and podutil.ready(pod)


class StatefulSetController(Controller):
    """Ordered, stably named pods (see the module docstring)."""

    name = "statefulset"

    def routes(self) -> dict[StoreKey, Mapper]:
        return {STS: lambda ev: [key_of(ev.obj)], POD: self._pod_keys}

    def initial_keys(self) -> Iterable[Key]:
        return [key_of(o) for o in self.store.list_objects(STS)[1]]

    def _pod_keys(self, ev: Event) -> Iterable[Key]:
        out: set[Key] = set()
        for pod in (ev.obj, ev.old):
            if pod is None:
                continue
            ns = pod["metadata"].get("namespace") or ""
            ref = podutil.controller_of(pod)
            if ref is not None:
                if ref.get("kind") == "StatefulSet":
                    out.add((ns, ref.get("name", "")))
            elif ev.type != "DELETED":
                labels = pod["metadata"].get("labels") or {}
                for s in self.store.list_objects(STS, ns)[1]:
                    if selector_matches(self._selector(s), labels):
                        out.add(key_of(s))
        return out

    @staticmethod
    def _selector(s: JSON) -> JSON | None:
        sel = (s.get("spec") or {}).get("selector")
        if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
            return None
        return dict(sel)

    # ---------------------------------------------------------------- sync

    def sync(self, key: Key) -> None:
        ns, name = key
        stored = self.store.get(STS, ns, name)
        if stored is None:
            return
        s = copy.deepcopy(stored)
        selector = self._selector(s)
        if selector is None:
            return
        spec = s.get("spec") or {}
        pods = claim(
            self.writer,
            POD,
            s,
            self.store.list_objects(POD, ns)[1],
            lambda p: selector_matches(selector, p["metadata"].get("labels")),
        )
        update = revisions.sync_revision(self.store, self.writer, s)
        current_name = (s.get("status") or {}).get("currentRevision") or update.name
        if not s["metadata"].get("deletionTimestamp"):
            self._manage(s, pods, update.name, current_name)
            pods = [
                p
                for p in self.store.list_objects(POD, ns)[1]
                if podutil.owned_by(p, s["metadata"]["uid"])
            ]
        live = {update.name, current_name}
        live.update(str((p["metadata"].get("labels") or {}).get(REVISION_LABEL)) for p in pods)
        revisions.truncate_history(self.store, self.writer, s, live)
        self._write_status(
            s, pods, update.name, current_name, int(spec.get("minReadySeconds") or 0)
        )

    def _range(self, s: JSON) -> range:
        spec = s.get("spec") or {}
        start = int(((spec.get("ordinals") or {}).get("start")) or 0)
        replicas = spec.get("replicas")
        n = 1 if replicas is None else int(replicas)
        return range(start, start + n)

    def _manage(self, s: JSON, pods: list[JSON], update_rev: str, current_rev: str) -> None:
        ns = s["metadata"].get("namespace") or ""
        set_name = s["metadata"]["name"]
        spec = s.get("spec") or {}
        ordered = (spec.get("podManagementPolicy") or "OrderedReady") == "OrderedReady"
        wanted = self._range(s)
        by_ordinal: dict[int, JSON] = {}
        condemned: list[JSON] = []
        for p in pods:
            o = _ordinal(set_name, p)
            if o is None:
                continue
            if o in wanted:
                by_ordinal[o] = p
            else:
                condemned.append(p)
        # create or replace the pods in range, lowest first
        for o in wanted:
            pod = by_ordinal.get(o)
            if pod is None:
                self.writer.create(POD, ns, self._new_pod(s, o, update_rev, current_rev))
                if ordered:
                    return
                continue
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Failed", "Succeeded") and not pod["metadata"].get("deletionTimestamp"):
                self._delete(pod)
                if ordered:
                    return
                continue
            if ordered and (
                pod["metadata"].get("deletionTimestamp") or not _running_and_ready(pod)
            ):
                return
        # remove surplus pods, highest ordinal first
        condemned.sort(key=lambda p: _ordinal(set_name, p) or 0, reverse=True)
        for pod in condemned:
            if pod["metadata"].get("deletionTimestamp"):
                if ordered:
                    return
                continue
            self._delete(pod)
            if ordered:
                return
        if condemned:
            return
        # roll the template out, highest ordinal first
        strategy = spec.get("updateStrategy") or {}
        if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        if not all(_running_and_ready(by_ordinal[o]) for o in wanted if o in by_ordinal):
            return
        for o in reversed(wanted):
            if o - wanted.start < partition:
                break
            pod = by_ordinal.get(o)
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                return
            if (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) != update_rev:
                self._delete(pod)
                return

    def _new_pod(self, s: JSON, ordinal: int, update_rev: str, current_rev: str) -> JSON:
        spec = s.get("spec") or {}
        ns = s["metadata"].get("namespace") or ""
        set_name = s["metadata"]["name"]
        partition = int(
            ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0
        )
        revision = update_rev
        template = spec.get("template") or {}
        if ordinal - self._range(s).start < partition and current_rev != update_rev:
            older = revisions.template_of(self.store, ns, current_rev)
            if older is not None:
                template, revision = older, current_rev
        name = f"{set_name}-{ordinal}"
        pod = podutil.pod_from_template(
            template,
            s,
            name=name,
            labels={
                REVISION_LABEL: revision,
                POD_NAME_LABEL: name,
                POD_INDEX_LABEL: str(ordinal),
            },
        )
        pod["spec"]["hostname"] = name
        if spec.get("serviceName"):
            pod["spec"]["subdomain"] = spec["serviceName"]
        return pod

    def _delete(self, pod: JSON) -> None:
        meta = pod["metadata"]
        self.writer.delete(POD, meta.get("namespace") or "", meta["name"], uid=meta.get("uid"))

    def _write_status(
        self, s: JSON, pods: list[JSON], update_rev: str, current_rev: str, min_ready: int
    ) -> None:
        now = podutil.now_utc()
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]

        def rev(p: JSON) -> str | None:
            return (p["metadata"].get("labels") or {}).get(REVISION_LABEL)

        ready = [p for p in live if _running_and_ready(p)]
        status: JSON = {
            k: v
            for k, v in (s.get("status") or {}).items()
            if k not in ("currentReplicas", "updatedReplicas", "readyReplicas")
        }
        status["observedGeneration"] = s["metadata"].get("generation", 1)
        status["replicas"] = len(live)
        if ready:
            status["readyReplicas"] = len(ready)
        status["availableReplicas"] = sum(1 for p in ready if podutil.available(p, min_ready, now))
        current = sum(1 for p in live if rev(p) == current_rev)
        updated = sum(1 for p in live if rev(p) == update_rev)
        status["currentRevision"] = current_rev
        status["updateRevision"] = update_rev
        status.setdefault("collisionCount", 0)
        want = len(self._range(s))
        strategy = (s.get("spec") or {}).get("updateStrategy") or {}
        if (
            (strategy.get("type") or "RollingUpdate") == "RollingUpdate"
            and updated == len(live) == want
            and len(ready) == len(live)
        ):
            status["currentRevision"] = update_rev
            current = updated
        if current:
            status["currentReplicas"] = current
        if updated:
            status["updatedReplicas"] = updated
        if status != s.get("status"):
            new = copy.deepcopy(s)
            new["status"] = status
            self.writer.update_status(STS, new)
        if min_ready > 0 and status["availableReplicas"] < len(ready):
            wait = min(podutil.seconds_until_available(p, min_ready, now) for p in ready)
            self.queue.add_after(key_of(s), wait + 0.05)
