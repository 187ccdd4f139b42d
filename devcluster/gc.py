"""Asynchronous garbage collection of ownerReferences (background, foreground, orphan).

Like kube-controller-manager's garbage collector, this runs after the fact on its own thread:
deleting an owner returns at once, and dependents disappear a moment later. Tests must poll for
the effect, exactly as they would against a real cluster. Also drives namespace finalization.

Rules (see devcluster-spec.md, "Garbage collection"):

* a dependent all of whose owners are missing is deleted (background). An owner counts as missing
  when its uid does not exist, or when it lives in another namespace than the dependent (or is
  namespaced while the dependent is cluster-scoped). Dangling references next to a live owner are
  stripped;
* an owner with the ``foregroundDeletion`` finalizer has its dependents deleted and loses the
  finalizer once no dependent with ``blockOwnerDeletion`` is left;
* an owner with the ``orphan`` finalizer has its references stripped from its dependents, then
  loses the finalizer.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from devcluster.handlers import Api
from devcluster.namespaces import finalize_namespaces

__all__ = ["GarbageCollector"]

JSON = dict[str, Any]


class GarbageCollector:
    """Background thread; :meth:`wakeup` after anything that may create garbage."""

    def __init__(self, api: Api, *, resync: float = 1.0) -> None:
        self.api = api
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._resync = resync
        self._thread: threading.Thread | None = None

    def wakeup(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="devcluster-gc", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        pending = False
        while not self._stop.is_set():
            self._wake.wait(0.1 if pending else self._resync)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                pending = self.run_once()
            except Exception:  # pragma: no cover - the GC must never die
                pending = True

    def run_once(self) -> bool:
        """One pass over everything; returns True when work is still pending."""
        api = self.api
        store = api.store
        pending = False
        objs = list(store.iter_all())
        dependents: dict[str, list[tuple[tuple[str, str], JSON]]] = {}
        for key, obj in objs:
            for ref in obj["metadata"].get("ownerReferences") or []:
                uid = ref.get("uid")
                if uid:
                    dependents.setdefault(uid, []).append((key, obj))
        # owners being deleted in foreground / orphan mode
        for key, obj in objs:
            meta = obj["metadata"]
            fins = meta.get("finalizers") or []
            if not meta.get("deletionTimestamp"):
                continue
            uid = meta.get("uid", "")
            deps = dependents.get(uid, [])
            if "orphan" in fins:
                for dkey, dep in deps:
                    new = copy.deepcopy(dep)
                    new["metadata"]["ownerReferences"] = [
                        r
                        for r in dep["metadata"].get("ownerReferences") or []
                        if r.get("uid") != uid
                    ]
                    if not new["metadata"]["ownerReferences"]:
                        del new["metadata"]["ownerReferences"]
                    self._write(dkey, dep, new)
                self._remove_finalizer(key, obj, "orphan")
                pending = True
            elif "foregroundDeletion" in fins:
                blocking = False
                for dkey, dep in deps:
                    if (
                        store.get(
                            dkey, dep["metadata"].get("namespace") or "", dep["metadata"]["name"]
                        )
                        is None
                    ):
                        continue
                    refs = [
                        r
                        for r in dep["metadata"].get("ownerReferences") or []
                        if r.get("uid") == uid
                    ]
                    if any(r.get("blockOwnerDeletion") for r in refs):
                        blocking = True
                    if not dep["metadata"].get("deletionTimestamp"):
                        rt = api.registry.by_key(dkey)
                        if rt is not None:
                            api.internal_delete(
                                rt,
                                dep["metadata"].get("namespace") or "",
                                dep["metadata"]["name"],
                                "Foreground",
                            )
                        pending = True
                if blocking:
                    pending = True
                else:
                    self._remove_finalizer(key, obj, "foregroundDeletion")
        # dependents whose owners are gone
        for key, snap in objs:
            if not snap["metadata"].get("ownerReferences"):
                continue
            cur = store.get(key, snap["metadata"].get("namespace") or "", snap["metadata"]["name"])
            if cur is None:
                continue
            obj = cur
            refs = obj["metadata"].get("ownerReferences") or []
            if not refs or obj["metadata"].get("deletionTimestamp"):
                continue
            dep_ns = obj["metadata"].get("namespace") or ""
            missing = [r for r in refs if self._owner_missing(r, dep_ns)]
            if not missing:
                continue
            rt = api.registry.by_key(key)
            if rt is None:
                continue
            if len(missing) == len(refs):
                api.internal_delete(rt, dep_ns, obj["metadata"]["name"])
            else:
                gone = {r.get("uid") for r in missing}
                new = copy.deepcopy(obj)
                new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") not in gone]
                self._write(key, obj, new)
            pending = True
        if finalize_namespaces(api):
            pending = True
        return pending

    def _owner_missing(self, ref: JSON, dep_ns: str) -> bool:
        store = self.api.store
        uid = ref.get("uid")
        if not uid:
            return True
        owner = store.by_uid(uid)
        if owner is None:
            return True
        owner_ns = owner["metadata"].get("namespace") or ""
        return bool(owner_ns and owner_ns != dep_ns)

    def _write(self, key: tuple[str, str], old: JSON, new: JSON) -> None:
        rt = self.api.registry.by_key(key)
        if rt is not None:
            self.api.internal_write(rt, old, new)

    def _remove_finalizer(self, key: tuple[str, str], obj: JSON, fin: str) -> None:
        new = copy.deepcopy(obj)
        new["metadata"]["finalizers"] = [
            f for f in obj["metadata"].get("finalizers") or [] if f != fin
        ]
        self._write(key, obj, new)
