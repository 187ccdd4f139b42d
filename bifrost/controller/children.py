"""Children's informers: a label-selected watch per kind bifrost's children have, and their cache.

bifrost reads its children back (readiness, drift) and waits for them (an issued certificate, a
ready load balancer). Polling them with GETs cost 6 GETs per Gateway while provisioning and
thousands on every resync; instead each kind in the store's inventory
(``OperationStore.child_kinds``) gets one watch, selected by bifrost's gateway-uid label, so
only objects bifrost made are listed and cached. :meth:`ChildInformers.ensure` starts a watch
for a kind that appears in the inventory and stops the one of a kind no child has any more; the
controller calls it as operations end.

Every event on a child (created, changed, deleted) is reported to ``on_change`` with the
Gateway uid from its label and its :func:`~bifrost.engine.step.wait_key`: the controller
re-observes that Gateway (drift) and wakes the operation waiting on exactly that object.

Kinds the main informers already watch (Gateway, Service, …:
:data:`bifrost.controller.informers.WATCHED`) are not watched twice: their objects are read
from the main cache, and :meth:`ChildInformers.main_event` gets their events. Secrets are the
exception: the main informers hold every Secret as metadata only (tenant Secrets never sit in
bifrost's memory), while the Secrets bifrost renders as children — their data came from its own
templates — are watched here with their data, by the same label selector, so reading one back
costs no GET.

A label-selected cache can only say what exists *with the label*: a miss does not prove that no
object of that name exists (a tenant's unlabelled ConfigMap that a child would collide with, a
certificate's Secret that cert-manager made). So each kind also gets a metadata-only watch of
every object (names, labels, resourceVersions — never data; the main informers already hold all
Secrets so), and :meth:`ChildInformers.lookup` answers three ways: the cached child, "exists but
is not one of bifrost's children" (read it with a GET), or "does not exist".

The objects are also indexed by Gateway uid (:meth:`ChildInformers.owned`), which answers
"what of this Gateway exists" — adoption's question — without a list.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from bifrost.api.objects import Obj, meta
from bifrost.controller.informers import WATCHED, Cache
from bifrost.engine.step import wait_key
from bifrost.kube import KubeClient, Watcher, WatchEvent
from bifrost.steps.ownership import GATEWAY_UID_LABEL

__all__ = ["ChildInformers", "group_of"]

log = logging.getLogger(__name__)

GroupKind = tuple[str, str]
#: Told (gateway uid, wait key) for every event on a child.
OnChange = Callable[[str, str], None]


def group_of(api_version: str) -> str:
    """``apps/v1`` → ``apps``; ``v1`` → ``""`` (the core group)."""
    return api_version.rpartition("/")[0]


_MAIN: dict[GroupKind, str] = {(group_of(s.api_version), s.kind): s.kind for s in WATCHED
                               if not s.metadata_only}


_SECRET: GroupKind = ("", "Secret")


def _uid_label(obj: Obj) -> str:
    return str((meta(obj).get("labels") or {}).get(GATEWAY_UID_LABEL) or "")


class ChildInformers:
    """Label-selected watches of the children's kinds and the objects they saw (see the module
    docstring). Thread-safe."""

    def __init__(self, kube: KubeClient, cache: Cache, on_change: OnChange, *,
                 timeout_seconds: int = 300,
                 main_synced: Callable[[], bool] = lambda: True) -> None:
        """``main_synced`` says whether the main informers (whose kinds are read from
        ``cache``) have synced."""
        self._kube = kube
        self._main_synced = main_synced
        self.cache = cache
        self._on_change = on_change
        self._timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        self._watchers: dict[GroupKind, Watcher] = {}
        self._threads: dict[GroupKind, threading.Thread] = {}
        self._objects: dict[GroupKind, dict[tuple[str, str], Obj]] = {}
        #: the kind's every object, metadata only (existence), and its watch
        self._exists_watchers: dict[GroupKind, Watcher] = {}
        self._exists: dict[GroupKind, dict[tuple[str, str], str]] = {}  # key → resourceVersion
        #: (group, kind) → gateway uid → keys of its objects
        self._by_uid: dict[GroupKind, dict[str, set[tuple[str, str]]]] = {}
        self._stopped = False

    # ---- which kinds ----------------------------------------------------------------------

    def ensure(self, kinds: Iterable[tuple[str, str]]) -> None:
        """Watch exactly the ``(apiVersion, kind)`` pairs given (those of the main informers
        excepted): start the missing watches, stop the ones no longer wanted."""
        wanted: dict[GroupKind, str] = {}
        for api_version, kind in kinds:
            gk = (group_of(api_version), kind)
            if gk not in _MAIN:
                wanted.setdefault(gk, api_version)
        with self._lock:
            if self._stopped:
                return
            for gk in [gk for gk in self._watchers if gk not in wanted]:
                self._watchers.pop(gk).stop()
                self._threads.pop(gk, None)
                self._objects.pop(gk, None)
                self._by_uid.pop(gk, None)
                existence = self._exists_watchers.pop(gk, None)
                if existence is not None:
                    existence.stop()
                self._exists.pop(gk, None)
            for gk, api_version in wanted.items():
                if gk in self._watchers:
                    continue
                watcher = Watcher(self._kube, api_version, gk[1], label_selector=GATEWAY_UID_LABEL,
                                  timeout_seconds=self._timeout_seconds)
                self._watchers[gk] = watcher
                self._objects[gk] = {}
                self._by_uid[gk] = {}
                thread = threading.Thread(target=self._run, args=(gk, watcher),
                                          name=f"children-{gk[1]}", daemon=True)
                self._threads[gk] = thread
                thread.start()
                if gk == _SECRET:
                    continue  # every Secret's metadata is in the main cache
                existence = Watcher(self._kube, api_version, gk[1], metadata_only=True,
                                    timeout_seconds=self._timeout_seconds)
                self._exists_watchers[gk] = existence
                self._exists[gk] = {}
                threading.Thread(target=self._run_exists, args=(gk, existence),
                                 name=f"exists-{gk[1]}", daemon=True).start()

    def kinds(self) -> set[GroupKind]:
        with self._lock:
            return set(self._watchers)

    def synced(self, api_version: str, kind: str) -> bool:
        """The kind's objects are cached (listed once and watched since): a miss means gone."""
        gk = (group_of(api_version), kind)
        if gk in _MAIN:
            return self._main_synced()
        with self._lock:
            watcher = self._watchers.get(gk)
            existence = self._exists_watchers.get(gk)
        if gk == _SECRET:
            return watcher is not None and watcher.stats["watches"] >= 1 and self._main_synced()
        return (watcher is not None and watcher.stats["watches"] >= 1
                and existence is not None and existence.stats["watches"] >= 1)

    # ---- reads ----------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        """The cached child (None: not cached — :meth:`lookup` tells "gone" from "not a
        child")."""
        return self.lookup(api_version, kind, namespace, name)[0]

    def lookup(self, api_version: str, kind: str, namespace: str | None,
               name: str) -> tuple[Obj | None, bool]:
        """(the cached object or None, whether an object of that name exists at all) — for a
        synced kind (:meth:`synced`). A kind of the main informers is answered from their
        cache."""
        gk = (group_of(api_version), kind)
        key = (namespace or "", name)
        main = _MAIN.get(gk)
        if main is not None:
            obj = self.cache.get(main, key[0], name)
            return obj, obj is not None
        with self._lock:
            obj = self._objects.get(gk, {}).get(key)
            if obj is not None:
                return obj, True
            if gk != _SECRET:
                return None, key in self._exists.get(gk, {})
        if self.cache.peek("Secret", key[0], name) is None:
            return None, False
        # another Secret (a certificate's): the main cache reads its data once per version
        secret = self.cache.get("Secret", key[0], name)
        return secret, secret is not None

    def owned(self, api_version: str, kind: str, gateway_uid: str) -> list[Obj] | None:
        """The cached objects of the kind labelled with ``gateway_uid`` (None: the kind is not
        watched here or not synced yet — ask the API)."""
        gk = (group_of(api_version), kind)
        if gk in _MAIN or not self.synced(api_version, kind):
            return None
        with self._lock:
            objects = self._objects.get(gk, {})
            return [objects[k] for k in sorted(self._by_uid.get(gk, {}).get(gateway_uid, ()))
                    if k in objects]

    # ---- events ---------------------------------------------------------------------------

    def _run(self, gk: GroupKind, watcher: Watcher) -> None:
        for event in watcher:
            self._handle(gk, event)

    def _run_exists(self, gk: GroupKind, watcher: Watcher) -> None:
        for event in watcher:
            m = meta(event.object)
            key = (str(m.get("namespace") or ""), str(m.get("name") or ""))
            with self._lock:
                names = self._exists.get(gk)
                if names is None or self._exists_watchers.get(gk) is not watcher:
                    return  # stopped meanwhile
                if event.type == "DELETED":
                    names.pop(key, None)
                else:
                    names[key] = str(m.get("resourceVersion") or "")

    def _handle(self, gk: GroupKind, event: WatchEvent) -> None:
        obj = event.object
        m = meta(obj)
        key = (str(m.get("namespace") or ""), str(m.get("name") or ""))
        with self._lock:
            objects = self._objects.get(gk)
            index = self._by_uid.get(gk)
            if objects is None or index is None or self._watchers.get(gk) is None:
                return  # stopped meanwhile
            before = objects.pop(key, None)
            if before is not None:
                owners = index.get(_uid_label(before), set())
                owners.discard(key)
                if not owners:
                    index.pop(_uid_label(before), None)
            if event.type != "DELETED":
                objects[key] = obj
                index.setdefault(_uid_label(obj), set()).add(key)
        self._report(gk[1], obj)

    def main_event(self, kind: str, obj: Obj) -> None:
        """An event of the main informers: reported when the object is one of bifrost's
        children (it carries the gateway-uid label) of a kind read from the main cache. A
        Secret child is reported by its own label-selected watch, once."""
        if kind in _MAIN.values():
            self._report(kind, obj)

    def _report(self, kind: str, obj: Obj) -> None:
        m = meta(obj)
        uid = (m.get("labels") or {}).get(GATEWAY_UID_LABEL)
        if not uid:
            return
        try:
            self._on_change(str(uid), wait_key(kind, m.get("namespace"), str(m.get("name"))))
        except Exception:  # a failing reaction must not stop the watch
            log.exception("reacting to a change of %s %s/%s failed", kind,
                          m.get("namespace"), m.get("name"))

    def sizes(self) -> dict[str, int]:
        """How many labelled children of each kind are cached (for metrics)."""
        with self._lock:
            return {kind: len(objs) for (_, kind), objs in self._objects.items()}

    def watch_stats(self) -> dict[str, dict[str, int]]:
        """Each kind's watcher counters, its labelled and existence watches summed (metrics)."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            watchers = [*self._watchers.items(), *self._exists_watchers.items()]
        for (_, kind), watcher in watchers:
            into = out.setdefault(kind, {})
            for name, value in watcher.stats.items():
                into[name] = into.get(name, 0) + value
        return out

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._stopped = True
            watchers = [*self._watchers.values(), *self._exists_watchers.values()]
            threads = list(self._threads.values())
            self._exists_watchers.clear()
            self._watchers.clear()
            self._threads.clear()
        for watcher in watchers:
            watcher.stop()
        for thread in threads:
            thread.join(timeout)
