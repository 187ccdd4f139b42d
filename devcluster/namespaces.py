"""Namespace lifecycle: a Terminating namespace has its contents deleted, then goes away.

Runs from the garbage collector's background thread, like the namespace controller of
kube-controller-manager: deleting a namespace only marks it (``phase: Terminating``); the
contents are deleted through the ordinary delete path (so their finalizers are honoured), and the
namespace is removed once nothing is left in it.
"""

from __future__ import annotations

import copy

from devcluster.handlers import Api

__all__ = ["finalize_namespaces"]


def finalize_namespaces(api: Api) -> bool:
    """One pass; returns True when some namespace is still waiting for its contents to go."""
    pending = False
    ns_key = ("", "namespaces")
    _, namespaces = api.store.list_objects(ns_key)
    for ns in namespaces:
        if not ns["metadata"].get("deletionTimestamp"):
            continue
        name = ns["metadata"]["name"]
        for key, obj in api.store.iter_all():
            if key == ns_key or (obj["metadata"].get("namespace") or "") != name:
                continue
            if obj["metadata"].get("deletionTimestamp"):
                continue
            rt = api.registry.by_key(key)
            if rt is not None:
                api.internal_delete(rt, name, obj["metadata"]["name"])
        with api.store.lock:
            if api.store.count_in_namespace(name):
                pending = True
                continue
            cur = api.store.get(ns_key, "", name)
            if cur is None or cur["metadata"].get("finalizers"):
                continue
            last = copy.deepcopy(cur)
            last.setdefault("spec", {})["finalizers"] = []
            api.store.commit(ns_key, "DELETED", last, cur)
    return pending
