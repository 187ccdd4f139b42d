"""The disruption controller: keeps every PodDisruptionBudget's ``status`` up to date.

On a change of a PDB, of a pod (its labels, readiness, deletion) or of a workload controller
(its scale), the PDBs concerned are recomputed with :func:`devcluster.disruption_budget.compute`
and their status written as kube-controller-manager's ``disruption`` controller writes it:
``currentHealthy``, ``desiredHealthy``, ``expectedPods``, ``disruptionsAllowed``,
``observedGeneration`` and the ``DisruptionAllowed`` condition (``SufficientPods`` /
``InsufficientPods``). ``disruptedPods`` entries (evictions in flight) are dropped once their
pod is being deleted or gone, or after two minutes.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Iterable
from typing import Any

from devcluster.controllers.pods import POD, parse_time
from devcluster.controllers.runtime import Controller, Key, Mapper, StoreKey, key_of
from devcluster.disruption_budget import (
    DELETION_TIMEOUT,
    budget_status,
    compute,
    selects,
    store_scale_lookup,
)
from devcluster.handlers import now_rfc3339
from devcluster.storage import Event

__all__ = ["PDB", "DisruptionController"]

JSON = dict[str, Any]

PDB: StoreKey = ("policy", "poddisruptionbudgets")

#: Kinds whose scale is a PDB's expected pod count: any change re-examines the namespace's PDBs.
_SCALED: tuple[StoreKey, ...] = (
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("", "replicationcontrollers"),
)


class DisruptionController(Controller):
    """Writes the status of every PodDisruptionBudget."""

    name = "disruption"

    def routes(self) -> dict[StoreKey, Mapper]:
        out: dict[StoreKey, Mapper] = {PDB: self._pdb_keys, POD: self._pod_keys}
        for key in _SCALED:
            out[key] = self._namespace_keys
        return out

    def initial_keys(self) -> Iterable[Key]:
        return [key_of(o) for o in self.store.list_objects(PDB)[1]]

    def _pdb_keys(self, ev: Event) -> Iterable[Key]:
        return [] if ev.type == "DELETED" else [key_of(ev.obj)]

    def _pod_keys(self, ev: Event) -> Iterable[Key]:
        ns = ev.obj["metadata"].get("namespace") or ""
        pods = [p for p in (ev.obj, ev.old) if p is not None]
        return [
            key_of(pdb)
            for pdb in self.store.list_objects(PDB, ns)[1]
            if any(selects(pdb, p) for p in pods)
        ]

    def _namespace_keys(self, ev: Event) -> Iterable[Key]:
        ns = ev.obj["metadata"].get("namespace") or ""
        return [key_of(pdb) for pdb in self.store.list_objects(PDB, ns)[1]]

    def sync(self, key: Key) -> None:
        ns, name = key
        stored = self.store.get(PDB, ns, name)
        if stored is None or stored["metadata"].get("deletionTimestamp"):
            return
        pdb = copy.deepcopy(stored)
        now = datetime.datetime.now(datetime.UTC)
        pods = self.store.list_objects(POD, ns)[1]
        old = dict(pdb.get("status") or {})
        disrupted = _live_disruptions(old.get("disruptedPods") or {}, pods, now)
        if disrupted:
            old["disruptedPods"] = disrupted
        else:
            old.pop("disruptedPods", None)
        pdb["status"] = old
        budget = compute(pdb, pods, store_scale_lookup(self.store.get), now)
        status = budget_status(old, budget, pdb["metadata"].get("generation"), now_rfc3339())
        if status != stored.get("status"):
            pdb["status"] = status
            self.writer.update_status(PDB, pdb)
        if disrupted:  # look again when the oldest eviction in flight expires
            first = min(parse_time(t) or now for t in disrupted.values())
            wait = (first + DELETION_TIMEOUT - now).total_seconds()
            self.queue.add_after(key, max(0.0, wait) + 0.05)


def _live_disruptions(
    disrupted: dict[str, str], pods: list[JSON], now: datetime.datetime
) -> dict[str, str]:
    """``buildDisruptedPodMap``: the entries whose pod still exists, is not being deleted and
    was disrupted less than two minutes ago."""
    by_name = {p["metadata"]["name"]: p for p in pods}
    out: dict[str, str] = {}
    for name, when in disrupted.items():
        pod = by_name.get(name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            continue
        since = parse_time(when)
        if since is None or since + DELETION_TIMEOUT <= now:
            continue
        out[name] = when
    return out
