"""Thread-safe in-memory object store with one global resourceVersion and a watch history.

Everything a real API server gets from etcd that clients can observe lives here: a single
monotonically increasing resourceVersion (bumped on every write, shared by all kinds), objects
keyed by (group, plural) and (namespace, name), and a bounded history of change events so a
watch can resume from any resourceVersion still in the history (and gets 410 Expired otherwise).

Stored objects are never mutated in place: a write replaces the dict. Readers may therefore
serialise what they get without copying, and writers deep-copy before they change anything.
Callers that read-modify-write hold :attr:`Store.lock` (re-entrant) across the whole sequence so
optimistic concurrency is atomic.

The store can persist itself to a JSON file (written atomically, debounced) so that a dev cluster
survives a restart; the watch history is not persisted (resuming watches across a restart get
410, as after an etcd compaction).
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Event", "Expired", "Store", "Watcher"]

Key = tuple[str, str]  # (group, plural)
ObjKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped


class Expired(Exception):
    """The requested resourceVersion is older than the kept history."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(frozen=True)
class Event:
    """One committed change. ``obj`` is the new state (the last state for DELETED)."""

    rv: int
    key: Key
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]
    old: dict[str, Any] | None


@dataclass(eq=False)
class Watcher:
    """A registered watch: committed events for its key are queued to it."""

    key: Key
    namespace: str | None
    events: queue.SimpleQueue[Event | None] = field(default_factory=queue.SimpleQueue)
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        self.events.put(None)


def _ns_name(obj: dict[str, Any]) -> ObjKey:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


class Store:
    """The object store. See the module docstring for the rules."""

    def __init__(self, *, history_size: int = 10_000, state_file: Path | None = None) -> None:
        self.lock = threading.RLock()
        self._rv = 0
        self._objects: dict[Key, dict[ObjKey, dict[str, Any]]] = {}
        # the same objects indexed by namespace, so a namespaced list does not scan everything
        self._by_ns: dict[Key, dict[str, dict[str, dict[str, Any]]]] = {}
        self._uids: dict[str, tuple[Key, ObjKey]] = {}
        self._history: deque[Event] = deque()
        self._history_size = max(1, history_size)
        self._compacted = 0  # events with rv <= this may be missing from the history
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[Event], None]] = []
        self._state_file = state_file
        self._dirty = threading.Event()
        self._saver: threading.Thread | None = None
        self._stopping = threading.Event()

    # ---------------------------------------------------------------- reads

    @property
    def resource_version(self) -> int:
        return self._rv

    @property
    def compacted_rv(self) -> int:
        return self._compacted

    def get(self, key: Key, namespace: str, name: str) -> dict[str, Any] | None:
        bucket = self._objects.get(key)
        return None if bucket is None else bucket.get((namespace, name))

    def list_objects(
        self, key: Key, namespace: str | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """(current resourceVersion, objects sorted by namespace/name)."""
        with self.lock:
            if namespace is None:
                bucket = self._objects.get(key) or {}
                items = [bucket[k] for k in sorted(bucket)]
            else:
                names = (self._by_ns.get(key) or {}).get(namespace) or {}
                items = [names[n] for n in sorted(names)]
            return self._rv, items

    def snapshot(
        self, key: Key, namespace: str | None, rv: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """The objects as they were at resourceVersion ``rv`` (undoing later history).

        Raises :class:`Expired` when the history no longer reaches back to ``rv``.
        """
        with self.lock:
            if rv < self._compacted:
                raise Expired(rv, self._compacted + 1)
            if rv >= self._rv:
                return self.list_objects(key, namespace)
            state: dict[ObjKey, dict[str, Any]] = {}
            for obj in self.list_objects(key, namespace)[1]:
                state[_ns_name(obj)] = obj
            for ev in reversed(self._history):
                if ev.rv <= rv:
                    break
                if ev.key != key:
                    continue
                nk = _ns_name(ev.obj)
                if namespace is not None and nk[0] != namespace:
                    continue
                if ev.type == "ADDED" or ev.old is None:
                    state.pop(nk, None)
                else:
                    state[nk] = ev.old
            return rv, [state[k] for k in sorted(state)]

    def keys(self) -> list[Key]:
        with self.lock:
            return list(self._objects)

    def by_uid(self, uid: str) -> dict[str, Any] | None:
        with self.lock:
            loc = self._uids.get(uid)
            if loc is None:
                return None
            return self._objects.get(loc[0], {}).get(loc[1])

    def key_of_uid(self, uid: str) -> Key | None:
        loc = self._uids.get(uid)
        return None if loc is None else loc[0]

    def iter_all(self) -> Iterator[tuple[Key, dict[str, Any]]]:
        """Snapshot of every object (for GC and namespace deletion)."""
        with self.lock:
            snap = [(k, o) for k, bucket in self._objects.items() for o in bucket.values()]
        yield from snap

    def count_in_namespace(self, namespace: str) -> int:
        with self.lock:
            return sum(len(by_ns.get(namespace) or ()) for by_ns in self._by_ns.values())

    # ---------------------------------------------------------------- writes

    def next_rv(self) -> int:
        """The resourceVersion the next commit will get (call with the lock held)."""
        return self._rv + 1

    def commit(
        self, key: Key, type_: str, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Write ``obj`` (or delete it for DELETED): bump the rv, record and fan out the event.

        ``obj`` becomes owned by the store; its resourceVersion is set here.
        """
        with self.lock:
            self._rv += 1
            rv = self._rv
            obj["metadata"]["resourceVersion"] = str(rv)
            nk = _ns_name(obj)
            bucket = self._objects.setdefault(key, {})
            ns_bucket = self._by_ns.setdefault(key, {}).setdefault(nk[0], {})
            uid = obj["metadata"].get("uid")
            if type_ == "DELETED":
                bucket.pop(nk, None)
                ns_bucket.pop(nk[1], None)
                if uid:
                    self._uids.pop(uid, None)
            else:
                bucket[nk] = obj
                ns_bucket[nk[1]] = obj
                if uid:
                    self._uids[uid] = (key, nk)
            ev = Event(rv, key, type_, obj, old)
            self._history.append(ev)
            if len(self._history) > self._history_size:
                dropped = self._history.popleft()
                self._compacted = dropped.rv
            for w in self._watchers:
                if w.key == key and (w.namespace is None or w.namespace == nk[0]):
                    w.events.put(ev)
            listeners = list(self._listeners)
        self._dirty.set()
        for fn in listeners:
            fn(ev)
        return obj

    def replace_silently(self, key: Key, obj: dict[str, Any]) -> None:
        """Swap a stored object for an equivalent one (same resourceVersion, no event)."""
        with self.lock:
            nk = _ns_name(obj)
            if nk in self._objects.get(key, {}):
                self._objects[key][nk] = obj
                self._by_ns[key][nk[0]][nk[1]] = obj
        self._dirty.set()

    def add_listener(self, fn: Callable[[Event], None]) -> None:
        with self.lock:
            self._listeners.append(fn)

    # ---------------------------------------------------------------- watches

    def watch(
        self, key: Key, namespace: str | None, since: int | None
    ) -> tuple[Watcher, list[Event], int]:
        """Register a watcher; returns it, the backlog after ``since`` and the current rv.

        ``since=None`` means "from now". Raises :class:`Expired` when ``since`` is older than the
        kept history.
        """
        with self.lock:
            backlog: list[Event] = []
            if since is not None:
                if since < self._compacted:
                    raise Expired(since, self._compacted + 1)
                for ev in self._history:
                    if (
                        ev.rv > since
                        and ev.key == key
                        and (
                            namespace is None
                            or (ev.obj["metadata"].get("namespace") or "") == namespace
                        )
                    ):
                        backlog.append(ev)
            w = Watcher(key, namespace)
            self._watchers.add(w)
            return w, backlog, self._rv

    def unwatch(self, w: Watcher) -> None:
        with self.lock:
            self._watchers.discard(w)

    def drop_watches(self) -> None:
        with self.lock:
            ws = list(self._watchers)
            self._watchers.clear()
        for w in ws:
            w.close()

    def compact(self) -> None:
        """Forget the history: every resourceVersion before now becomes too old."""
        with self.lock:
            self._history.clear()
            self._compacted = self._rv

    def check_rv_not_expired(self, rv: int) -> None:
        with self.lock:
            if rv < self._compacted:
                raise Expired(rv, self._compacted + 1)

    # ---------------------------------------------------------------- persistence

    def load(self) -> list[tuple[Key, dict[str, Any]]]:
        """Load the state file (if any); returns the loaded objects."""
        if self._state_file is None or not self._state_file.exists():
            return []
        data = json.loads(self._state_file.read_text())
        out: list[tuple[Key, dict[str, Any]]] = []
        with self.lock:
            self._rv = int(data.get("resourceVersion", 0))
            self._compacted = self._rv
            for entry in data.get("objects", []):
                key = (entry["group"], entry["plural"])
                obj = entry["object"]
                nk = _ns_name(obj)
                self._objects.setdefault(key, {})[nk] = obj
                self._by_ns.setdefault(key, {}).setdefault(nk[0], {})[nk[1]] = obj
                uid = obj["metadata"].get("uid")
                if uid:
                    self._uids[uid] = (key, nk)
                out.append((key, obj))
        return out

    def save(self) -> None:
        if self._state_file is None:
            return
        with self.lock:
            objects = [
                {"group": k[0], "plural": k[1], "object": o}
                for k, bucket in self._objects.items()
                for o in bucket.values()
            ]
            text = json.dumps({"resourceVersion": self._rv, "objects": objects})
        tmp = self._state_file.with_suffix(self._state_file.suffix + ".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        os.replace(tmp, self._state_file)

    def start_persistence(self, interval: float = 0.5) -> None:
        if self._state_file is None or self._saver is not None:
            return

        def loop() -> None:
            while not self._stopping.is_set():
                if self._dirty.wait(interval) and not self._stopping.is_set():
                    self._dirty.clear()
                    self.save()
                    self._stopping.wait(interval)

        self._saver = threading.Thread(target=loop, name="devcluster-persist", daemon=True)
        self._saver.start()

    def stop_persistence(self) -> None:
        self._stopping.set()
        if self._saver is not None:
            self._saver.join(timeout=5)
            self._saver = None
        if self._state_file is not None:
            self.save()
