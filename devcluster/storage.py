"""Thread-safe in-memory object store with one global resourceVersion and a watch history.

Everything a real API server gets from etcd that clients can observe lives here: a single
monotonically increasing resourceVersion (bumped on every write, shared by all kinds), objects
keyed by (group, plural) and (namespace, name), and a bounded history of change events so a
watch can resume from any resourceVersion still in the history (and gets 410 Expired otherwise).

Stored objects are never mutated in place: a write replaces the dict. Readers may therefore
serialise what they get without copying, and writers deep-copy before they change anything.
Callers that read-modify-write hold :attr:`Store.lock` (re-entrant) across the whole sequence so
optimistic concurrency is atomic.

With a state file the store is durable (see :mod:`devcluster.journal`): every commit is appended
to a journal and fsynced before the writer releases :attr:`Store.lock` (so before the request is
answered; concurrent writers share one fsync), and a background thread folds the journal into an
atomically replaced snapshot. The snapshot keeps the watch-history window, so after a restart a
watch resumed from a recent resourceVersion is served (410 only beyond the window, as after an
etcd compaction), and resourceVersions continue from where they were. Watchers of this process
may see an event a moment before it is durable.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from devcluster import journal
from devcluster.journal import Journal, Record

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


class StoreLock:
    """The store's re-entrant lock. When a thread releases it for the last time, the commits
    it made while holding it are made durable (``on_release``) before it goes on, so a handler
    answers only after its write is on disk, without holding the lock during the fsync."""

    def __init__(self, on_release: Callable[[], None]) -> None:
        self._lock = threading.RLock()
        self._depth = threading.local()
        self._on_release = on_release

    def __enter__(self) -> StoreLock:
        self._lock.acquire()
        self._depth.n = getattr(self._depth, "n", 0) + 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth.n -= 1
        outermost = self._depth.n == 0
        self._lock.release()
        if outermost:
            self._on_release()


def _ns_name(obj: dict[str, Any]) -> ObjKey:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


class Store:
    """The object store. See the module docstring for the rules."""

    def __init__(self, *, history_size: int = 10_000, state_file: Path | None = None) -> None:
        self.lock = StoreLock(self._make_durable)
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
        self._journal: Journal | None = None
        self._unsynced = threading.local()  # this thread's last journal sequence number
        self._snapshot_due = threading.Event()
        self._snapshot_lock = threading.Lock()
        self._compactor: threading.Thread | None = None
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
            if type_ == "DELETED":
                self._drop(key, nk, obj)
            else:
                self._put(key, nk, obj)
            ev = Event(rv, key, type_, obj, old)
            self._history.append(ev)
            if len(self._history) > self._history_size:
                dropped = self._history.popleft()
                self._compacted = dropped.rv
            for w in self._watchers:
                if w.key == key and (w.namespace is None or w.namespace == nk[0]):
                    w.events.put(ev)
            listeners = list(self._listeners)
            self._journal_append(Record(rv, type_, key, obj))
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
                self._journal_append(Record(self._rv, journal.REPLACE, key, obj))

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
            self._journal_append(Record(self._rv, journal.COMPACT))

    def check_rv_not_expired(self, rv: int) -> None:
        with self.lock:
            if rv < self._compacted:
                raise Expired(rv, self._compacted + 1)

    # ---------------------------------------------------------------- persistence

    def _journal_append(self, rec: Record) -> None:
        """Queue a record (store lock held); it is fsynced when this thread releases the lock."""
        if self._journal is None:
            return
        self._unsynced.seq = self._journal.append(rec)
        if self._journal.records_since_rotation >= self._snapshot_every:
            self._snapshot_due.set()

    def _make_durable(self) -> None:
        seq = getattr(self._unsynced, "seq", 0)
        if seq and self._journal is not None:
            self._unsynced.seq = 0
            self._journal.sync(seq)

    @property
    def _snapshot_every(self) -> int:
        return max(1000, self._history_size)

    def _put(self, key: Key, nk: ObjKey, obj: dict[str, Any]) -> dict[str, Any] | None:
        bucket = self._objects.setdefault(key, {})
        old = bucket.get(nk)
        bucket[nk] = obj
        self._by_ns.setdefault(key, {}).setdefault(nk[0], {})[nk[1]] = obj
        uid = obj["metadata"].get("uid")
        if uid:
            self._uids[uid] = (key, nk)
        return old

    def _drop(self, key: Key, nk: ObjKey, obj: dict[str, Any]) -> None:
        self._objects.get(key, {}).pop(nk, None)
        self._by_ns.get(key, {}).get(nk[0], {}).pop(nk[1], None)
        uid = obj["metadata"].get("uid")
        if uid:
            self._uids.pop(uid, None)

    def _replay(self, rec: Record) -> bool:
        """Apply one journal/snapshot record during load; False at a gap (corrupt history)."""
        if rec.type == journal.COMPACT:
            if rec.rv > self._rv:
                return False
            if rec.rv == self._rv:
                self._history.clear()
                self._compacted = self._rv
            return True
        if rec.type == journal.REPLACE:
            if rec.rv > self._rv:
                return False
            if rec.rv == self._rv and rec.obj is not None:
                nk = _ns_name(rec.obj)
                if nk in self._objects.get(rec.key, {}):
                    self._put(rec.key, nk, rec.obj)
            return True
        if rec.rv <= self._rv:
            return True  # already in the snapshot
        if rec.rv != self._rv + 1 or rec.obj is None:
            return False
        obj = rec.obj
        nk = _ns_name(obj)
        old = self._objects.get(rec.key, {}).get(nk)
        if rec.type == "DELETED":
            self._drop(rec.key, nk, obj)
        else:
            self._put(rec.key, nk, obj)
        self._rv = rec.rv
        self._history.append(Event(rec.rv, rec.key, rec.type, obj, old))
        if len(self._history) > self._history_size:
            self._compacted = self._history.popleft().rv
        return True

    def load(self) -> list[tuple[Key, dict[str, Any]]]:
        """Load the snapshot and replay the journal (if any), then start journaling.

        Returns the loaded objects. A torn or corrupt journal tail is dropped (with everything
        after it); the state is then folded into a fresh snapshot and the old journals removed.
        """
        if self._state_file is None:
            return []
        state_file = self._state_file
        snap = journal.read_snapshot(state_file) or {}
        generation = int(snap.get("journal", 0))
        with self.lock:
            base = snap.get("baseResourceVersion")
            self._rv = int(base if base is not None else snap.get("resourceVersion", 0))
            self._compacted = self._rv
            for entry in snap.get("objects", []):
                obj = entry["object"]
                self._put((entry["group"], entry["plural"]), _ns_name(obj), obj)
            intact = True
            for data in snap.get("events", []):
                intact = self._replay(Record.from_json(data))
                if not intact:
                    raise ValueError(f"{state_file}: the snapshot's history has a gap")
            newest = generation
            for gen, path in journal.journal_files(state_file):
                newest = max(newest, gen)
                if gen < generation or not intact:
                    continue
                data = path.read_bytes()
                records, good = journal.decode_records(data)
                for rec in records:
                    if not self._replay(rec):
                        intact = False
                        break
                intact = intact and good == len(data)
            out = [(k, o) for k, bucket in self._objects.items() for o in bucket.values()]
        self._journal = Journal(state_file, newest + 1)
        self.save()
        return out

    def _state_at(self, rv: int) -> dict[Key, dict[ObjKey, dict[str, Any]]]:
        """Every object as it was at ``rv`` (lock held; rv must be within the history)."""
        state = {k: dict(bucket) for k, bucket in self._objects.items()}
        for ev in reversed(self._history):
            if ev.rv <= rv:
                break
            bucket = state.setdefault(ev.key, {})
            nk = _ns_name(ev.obj)
            if ev.type == "ADDED" or ev.old is None:
                bucket.pop(nk, None)
            else:
                bucket[nk] = ev.old
        return state

    def save(self) -> None:
        """Write a snapshot now (objects at the start of the history window, and the window),
        continue the journal in a new generation, and remove the journals it replaces."""
        if self._state_file is None or self._journal is None:
            return
        with self._snapshot_lock:
            with self.lock:
                base_rv = self._compacted
                base = self._state_at(base_rv)
                events = list(self._history)
                rv = self._rv
                generation = self._journal.rotate()
            payload = {
                "format": 2,
                "resourceVersion": rv,
                "baseResourceVersion": base_rv,
                "journal": generation,
                "objects": [
                    {"group": k[0], "plural": k[1], "object": o}
                    for k, bucket in base.items()
                    for o in bucket.values()
                ],
                "events": [Record(e.rv, e.type, e.key, e.obj).to_json() for e in events],
            }
            journal.write_snapshot(self._state_file, payload)
            for gen, path in journal.journal_files(self._state_file):
                if gen < generation:
                    path.unlink(missing_ok=True)

    def start_persistence(self) -> None:
        """Fold the journal into a snapshot in the background whenever it has grown enough."""
        if self._journal is None or self._compactor is not None:
            return
        self._stopping.clear()

        def loop() -> None:
            while not self._stopping.is_set():
                if self._snapshot_due.wait(1.0) and not self._stopping.is_set():
                    self._snapshot_due.clear()
                    self.save()

        self._compactor = threading.Thread(target=loop, name="devcluster-persist", daemon=True)
        self._compactor.start()

    def stop_persistence(self) -> None:
        """Stop the background snapshots; flush the journal and write a final snapshot."""
        self._stopping.set()
        self._snapshot_due.set()
        if self._compactor is not None:
            self._compactor.join(timeout=10)
            self._compactor = None
        self._snapshot_due.clear()
        if self._journal is not None:
            self._journal.flush()
            self.save()
            self._journal.close()
