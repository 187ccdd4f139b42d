"""The in-process controller runtime: a delaying work queue, and a controller base that turns
committed store changes into queued keys and reconciles them on one worker thread.

This is how kube-controller-manager's controllers are built, minus the informer caches: a
controller reads the :class:`~devcluster.storage.Store` directly (it is the same process) and
writes through :class:`~devcluster.handlers.Api` under its own manager name, so
resourceVersions, watch events, managedFields and optimistic concurrency are exactly what a
client would see from a real controller. Nothing polls: a store listener maps each change to
the keys it concerns, and a key that must be looked at again later (minReadySeconds, a progress
deadline, a retry) is re-queued with a delay.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from devcluster.errors import ApiError
from devcluster.handlers import Api, Target, now_rfc3339
from devcluster.registry import ResourceType
from devcluster.storage import Event

__all__ = ["Controller", "Key", "Mapper", "StoreKey", "WorkQueue", "Writer", "key_of"]

EVENTS: StoreKey = ("", "events")

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)
StoreKey = tuple[str, str]  # (group, plural)
Mapper = Callable[[Event], Iterable[Key]]

#: Retry delays after a failed sync: conflicts are retried at once-ish, errors back off.
CONFLICT_DELAY = 0.02
BACKOFF_BASE = 0.05
BACKOFF_CAP = 5.0
#: How many (object, reason, message) Events a writer remembers to count repeats on.
_EVENT_CACHE = 4096


class WorkQueue:
    """Keys to reconcile, each at most once in the queue; ``add_after`` delays a key."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ready: deque[Key] = deque()
        self._queued: set[Key] = set()
        self._delayed: list[tuple[float, int, Key]] = []
        self._due: dict[Key, float] = {}  # the earliest delayed time of each delayed key
        self._seq = itertools.count()
        self._closed = False

    def add(self, key: Key) -> None:
        with self._cond:
            if self._closed or key in self._queued:
                return
            self._queued.add(key)
            self._ready.append(key)
            self._cond.notify()

    def add_after(self, key: Key, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._closed:
                return
            due = time.monotonic() + delay
            if self._due.get(key, float("inf")) <= due:
                return
            self._due[key] = due
            heapq.heappush(self._delayed, (due, next(self._seq), key))
            self._cond.notify()

    def get(self) -> Key | None:
        """The next key (blocking); None once the queue is closed."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    due, _, key = heapq.heappop(self._delayed)
                    if self._due.get(key) == due:
                        del self._due[key]
                    if key not in self._queued:
                        self._queued.add(key)
                        self._ready.append(key)
                if self._ready:
                    key = self._ready.popleft()
                    self._queued.discard(key)
                    return key
                timeout = self._delayed[0][0] - now if self._delayed else None
                self._cond.wait(timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Writer:
    """Writes through the :class:`Api` as one manager (``kube-controller-manager``,
    ``kubelet``, ``kube-scheduler``)."""

    def __init__(self, api: Api, manager: str) -> None:
        self.api = api
        self.manager = manager
        # the last Event written per (object, type, reason, message, component): a repeat
        # counts up on it, as client-go's event correlator does (a failing probe every second
        # is one Event with a growing count, not one Event a second)
        self._events: dict[tuple[str, ...], tuple[str, str]] = {}
        self._events_lock = threading.Lock()

    def rt(self, key: StoreKey) -> ResourceType:
        rt = self.api.registry.by_key(key)
        if rt is None:
            raise LookupError(f"{key} is not served")
        return rt

    def _query(self) -> dict[str, str]:
        return {"fieldManager": self.manager}

    def create(self, key: StoreKey, namespace: str, body: JSON) -> JSON:
        rt = self.rt(key)
        t = Target(rt, rt.storage_version, namespace or None)
        return self.api.create(t, body, self._query())

    def update(self, key: StoreKey, obj: JSON, subresource: str | None = None) -> JSON:
        """PUT ``obj`` (it carries the resourceVersion it was read at: 409 if stale)."""
        rt = self.rt(key)
        meta = obj["metadata"]
        t = Target(rt, rt.storage_version, meta.get("namespace") or None, meta["name"], subresource)
        return self.api.update(t, obj, self._query())

    def update_status(self, key: StoreKey, obj: JSON) -> JSON:
        return self.update(key, obj, "status")

    def event(
        self, involved: JSON, reason: str, message: str, component: str, type_: str = "Normal"
    ) -> None:
        """Record a core/v1 Event about ``involved`` as ``component`` (``deployment-controller``,
        ``default-scheduler``, ``kubelet`` ...), the way ``kubectl describe`` and ``kubectl get
        events`` show a real controller's. Best effort: an Event that cannot be written (its
        namespace is being deleted) is dropped, as client-go's recorder drops it."""
        meta = involved["metadata"]
        namespace = meta.get("namespace") or "default"
        now = now_rfc3339()
        ref = {
            "apiVersion": involved.get("apiVersion", ""),
            "kind": involved.get("kind", ""),
            "namespace": meta.get("namespace"),
            "name": meta["name"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        body: JSON = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": namespace},
            "involvedObject": {k: v for k, v in ref.items() if v},
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": "",
        }
        key = (str(meta.get("uid") or meta["name"]), namespace, type_, reason, message, component)
        try:
            if self._count_up(key, now):
                return
            created = self.create(EVENTS, namespace, body)
            with self._events_lock:
                if len(self._events) >= _EVENT_CACHE:
                    self._events.clear()
                self._events[key] = (namespace, created["metadata"]["name"])
        except ApiError as e:
            log.debug("event %s on %s dropped: %s", reason, meta["name"], e)

    def _count_up(self, key: tuple[str, ...], now: str) -> bool:
        """Count a repeat on the Event written for ``key`` before; False if there is none
        (never written, or deleted since: then a new one is written)."""
        with self._events_lock:
            known = self._events.get(key)
        if known is None:
            return False
        current = self.api.store.get(EVENTS, known[0], known[1])
        if current is None:
            return False
        new = copy.deepcopy(current)
        new["count"] = int(new.get("count") or 1) + 1
        new["lastTimestamp"] = now
        try:
            self.update(EVENTS, new)
        except ApiError as e:
            if e.code not in (404, 409):
                raise
            return False
        return True

    def delete(
        self,
        key: StoreKey,
        namespace: str,
        name: str,
        *,
        uid: str | None = None,
        grace_period: int | None = None,
        propagation: str | None = None,
    ) -> None:
        """DELETE; a missing object is fine (someone else deleted it first)."""
        rt = self.rt(key)
        opts: JSON = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if uid:
            opts["preconditions"] = {"uid": uid}
        if grace_period is not None:
            opts["gracePeriodSeconds"] = grace_period
        if propagation:
            opts["propagationPolicy"] = propagation
        t = Target(rt, rt.storage_version, namespace or None, name)
        try:
            self.api.delete(t, json.dumps(opts).encode(), {})
        except ApiError as e:
            if e.code != 404:
                raise


class Controller:
    """One reconciler: :meth:`routes` says which store changes enqueue which keys,
    :meth:`sync` reconciles one key. Subclasses set :attr:`name` and :attr:`manager`."""

    name = "controller"
    manager = "kube-controller-manager"

    def __init__(self, api: Api) -> None:
        self.api = api
        self.store = api.store
        self.writer = Writer(api, self.manager)
        self.queue = WorkQueue()
        self._routes: dict[StoreKey, Mapper] = {}
        self._failures: dict[Key, int] = {}
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    # ---------------------------------------------------------------- to override

    def routes(self) -> dict[StoreKey, Mapper]:
        """Store key -> function from one change to the keys it enqueues."""
        return {}

    def initial_keys(self) -> Iterable[Key]:
        """Keys to reconcile when the controller starts (what an informer's first list gives)."""
        return ()

    def sync(self, key: Key) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- plumbing

    def attach(self) -> None:
        """Listen to the store (before anything is started, so no change is missed)."""
        self._routes = self.routes()
        self.store.add_listener(self._on_event)

    def start(self) -> None:
        for key in self.initial_keys():
            self.queue.add(key)
        self._thread = threading.Thread(target=self._run, name=f"devcluster-{self.name}")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self.queue.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _on_event(self, ev: Event) -> None:
        if self._stopped.is_set():
            return
        mapper = self._routes.get(ev.key)
        if mapper is None:
            return
        try:
            for key in mapper(ev):
                self.queue.add(key)
        except Exception:  # pragma: no cover - a mapper bug must not fail the writer's request
            log.exception("%s: mapping %s event failed", self.name, ev.key)

    def _run(self) -> None:
        while True:
            key = self.queue.get()
            if key is None:
                return
            try:
                self.sync(key)
            except ApiError as e:
                if e.code == 409:
                    self.queue.add_after(key, CONFLICT_DELAY)
                else:
                    self._retry(key, e)
            except Exception as e:  # the controller must never die
                self._retry(key, e)
            else:
                self._failures.pop(key, None)
            finally:
                self.api.take_warnings()

    def _retry(self, key: Key, error: Exception) -> None:
        if self._stopped.is_set():
            return
        n = self._failures.get(key, 0) + 1
        self._failures[key] = n
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(n - 1, 10))
        log.warning("%s: sync %s/%s failed (%r); retrying in %.2fs", self.name, *key, error, delay)
        self.queue.add_after(key, delay)


def key_of(obj: JSON) -> Key:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])
