"""The small controller runtime the simulated peers share: informers and a delaying work queue.

The peers are ordinary API clients, so they are written the way a controller is: watch events
update a local cache and enqueue keys; one worker per peer reconciles keys one at a time (so a
peer never races itself) and may re-enqueue a key after a delay (issuance delay, retry backoff,
renewal time). Requests go through the devcluster's own :mod:`devcluster.client`, never through
bifrost's.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from devcluster.client import Client, ClientError, Gone, WatchStream, status_error

__all__ = ["Informer", "WatchEvent", "WorkQueue"]

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
Key = tuple[str, str]  # (namespace or "", name)
EventType = Literal["ADDED", "MODIFIED", "DELETED"]
# How one watch stream ended — "ended" normally, "short" (at once, nothing delivered), "expired"
# (410) or "error" —, whether it delivered anything, and the error, if any.
_Outcome = tuple[str, bool, ClientError | None]

#: A stream that ends sooner than this without delivering anything counts as a failure.
MIN_STREAM_SECONDS = 1.0
#: Backoff after consecutive failures: from BACKOFF_BASE seconds, doubling, at most BACKOFF_CAP.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0


@dataclass(frozen=True)
class WatchEvent:
    """One change an informer's handler is told about."""

    type: EventType
    object: dict[str, Any] = field(repr=False)

    @property
    def key(self) -> Key:
        return _key(self.object)


class Informer:
    """Lists and watches one kind in all namespaces, keeps a cache, calls a handler per change.

    It works like client-go's reflector, so that the cache never stays wrong:

    1. **list** and tell the handler ``ADDED`` for every object;
    2. **watch** from the list's resourceVersion; bookmarks advance the resourceVersion silently;
    3. when a stream ends or breaks, **resume** from the last resourceVersion seen;
    4. on **410 Expired** (an answer or an ``ERROR`` event), **list again** and tell the
       difference to the cache: ``ADDED`` for new objects, ``MODIFIED`` for changed ones,
       ``DELETED`` (with the cached object) for vanished ones, ``DELETED`` then ``ADDED`` for an
       object replaced under the same name;
    5. after failed requests, and streams that end at once without delivering anything, **back
       off** exponentially with jitter (never sooner than a Retry-After); a stream that delivers
       resets the backoff.

    The handler runs on the informer's thread after the cache is updated; an exception in it is
    logged and does not stop the watch. :meth:`stop` ends the informer from any thread.
    """

    def __init__(
        self,
        client: Client,
        api_version: str,
        kind: str,
        handler: Callable[[WatchEvent], None],
        *,
        timeout_seconds: int = 300,
    ) -> None:
        """``timeout_seconds`` is asked of the server per stream (plus up to 10 % jitter)."""
        self.api_version = api_version
        self.kind = kind
        self._client = client
        self._handler = handler
        self._timeout_seconds = timeout_seconds
        self._rng = random.Random()
        self._stop = threading.Event()
        self._stream: WatchStream | None = None
        self._stream_lock = threading.Lock()
        self._resource_version = ""  # what the next watch resumes from ("" before the first list)
        self._lock = threading.Lock()
        self._cache: dict[Key, dict[str, Any]] = {}
        self._thread = threading.Thread(target=self._run, name=f"informer-{kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._stream_lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        self._thread.join(timeout=10)

    @property
    def synced(self) -> bool:
        """True once the first list has completed."""
        return bool(self._resource_version)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._cache.get((namespace, name))

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._cache.values())

    # ---- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        need_list = True
        progress_since_list = False
        while not self._stop.is_set():
            if need_list:
                try:
                    events = self._relist()
                except ClientError as exc:
                    failures += 1
                    log.warning("list %s failed (%s); retrying", self.kind, exc)
                    self._pause(failures, exc)
                    continue
                need_list = False
                progress_since_list = False
                for event in events:
                    self._dispatch(event)
                if self._stop.is_set():
                    return
            outcome, delivered, error = self._watch_once()
            if self._stop.is_set():
                return
            if delivered:
                failures = 0
                progress_since_list = True
            if outcome == "expired":
                need_list = True
                if not progress_since_list:
                    # Expired again before any progress since the last list: listing at once
                    # could loop list/410 against a server that keeps expiring.
                    failures += 1
                    self._pause(failures, None)
            elif outcome in ("error", "short"):
                failures += 1
                self._pause(failures, error)
            # "ended": a stream that lived normally; resume at once.

    def _pause(self, failures: int, error: ClientError | None) -> None:
        """Sleep the backoff for ``failures`` consecutive failures (woken by :meth:`stop`)."""
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(failures - 1, 30))
        # The lower half keeps the delay away from zero, so even unlucky draws cannot spin.
        delay = self._rng.uniform(ceiling / 2, ceiling)
        if error is not None and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        self._stop.wait(delay)

    def _relist(self) -> list[WatchEvent]:
        """List, and return the events that take the cache to what the server holds."""
        items, list_rv = self._client.list(self.api_version, self.kind)
        fresh = {_key(item): item for item in items}
        with self._lock:
            known = dict(self._cache)
        events: list[WatchEvent] = []
        for key, old in known.items():
            new = fresh.get(key)
            if new is None or _uid(new) != _uid(old):
                events.append(WatchEvent("DELETED", old))
        for key, new in fresh.items():
            before = known.get(key)
            if before is None or _uid(new) != _uid(before):
                events.append(WatchEvent("ADDED", new))
            elif _rv(new) != _rv(before):
                events.append(WatchEvent("MODIFIED", new))
        self._resource_version = list_rv
        return events

    def _watch_once(self) -> _Outcome:
        """Follow one watch stream to its end; returns how it ended."""
        timeout = max(1, int(self._timeout_seconds * (1 + 0.1 * self._rng.random())))
        started = time.monotonic()
        delivered = False
        try:
            stream = self._client.watch(
                self.api_version,
                self.kind,
                resource_version=self._resource_version,
                timeout_seconds=timeout,
            )
        except Gone:
            return "expired", False, None
        except ClientError as exc:
            log.warning("watch %s failed (%s); backing off", self.kind, exc)
            return "error", False, exc
        with self._stream_lock:
            if self._stop.is_set():
                stream.close()
                return "ended", False, None
            self._stream = stream
        try:
            for raw in stream:
                etype, obj = raw.get("type"), raw.get("object")
                if not isinstance(obj, dict):
                    continue
                if etype == "ERROR":
                    code = obj.get("code")
                    if code == 410:
                        return "expired", delivered, None
                    log.warning("watch %s got an error event: %s", self.kind, obj.get("message"))
                    status = code if isinstance(code, int) and code else 500
                    return "error", delivered, status_error(status, obj, what=self.kind)
                if etype == "BOOKMARK":
                    if _rv(obj):
                        self._resource_version = _rv(obj)
                    delivered = True  # progress: the server is alive and moving
                    continue
                if etype not in ("ADDED", "MODIFIED", "DELETED"):
                    continue
                if _rv(obj):
                    self._resource_version = _rv(obj)
                delivered = True
                event = self._track(etype, obj)
                if event is not None:
                    self._dispatch(event)
                if self._stop.is_set():
                    return "ended", True, None
        except ClientError as exc:
            if self._stop.is_set():
                return "ended", delivered, None
            log.info("watch %s stream broke (%s); resuming", self.kind, exc)
            return ("ended", True, None) if delivered else ("error", False, exc)
        finally:
            with self._stream_lock:
                self._stream = None
            stream.close()
        if not delivered and time.monotonic() - started < MIN_STREAM_SECONDS:
            return "short", False, None
        return "ended", delivered, None

    def _track(self, etype: str, obj: dict[str, Any]) -> WatchEvent | None:
        """The event a watched change means for the cache (``None``: a repeat, nothing new)."""
        old = self.get(*_key(obj))
        if etype == "DELETED":
            return WatchEvent("DELETED", obj)
        if old is None:
            return WatchEvent("ADDED", obj)
        if _uid(old) != _uid(obj):
            # Replaced while we were not looking; the handler sees it as an update of the key.
            return WatchEvent("MODIFIED", obj)
        if etype == "ADDED" and _rv(old) == _rv(obj):
            return None  # a resumed watch may repeat an ADDED already told
        return WatchEvent("MODIFIED", obj)

    def _dispatch(self, event: WatchEvent) -> None:
        with self._lock:
            if event.type == "DELETED":
                self._cache.pop(event.key, None)
            else:
                self._cache[event.key] = event.object
        try:
            self._handler(event)
        except Exception:  # a peer bug must not end its watch
            log.exception("%s handler failed on %s %s", self.kind, event.type, event.key)


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _rv(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _uid(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


class WorkQueue(Generic[K]):
    """A de-duplicating queue of keys with delayed adds, drained by one worker thread."""

    def __init__(self, name: str, process: Callable[[K], None]) -> None:
        self._process = process
        self._cond = threading.Condition()
        self._ready: dict[K, None] = {}
        self._delayed: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}  # each key's earliest pending delayed add
        self._seq = itertools.count()
        self._stopped = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name=f"workqueue-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=10)

    def add(self, key: K) -> None:
        with self._cond:
            self._ready[key] = None
            self._cond.notify_all()

    def add_after(self, key: K, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        when = time.monotonic() + delay
        with self._cond:
            due = self._due.get(key)
            if due is not None and due <= when:
                return  # an earlier wake-up is already scheduled; one reconcile covers both
            self._due[key] = when
            heapq.heappush(self._delayed, (when, next(self._seq), key))
            self._cond.notify_all()

    def idle(self) -> bool:
        """Nothing ready and nothing being processed (delayed keys may still be pending)."""
        with self._cond:
            return not self._ready and not self._busy

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopped:
                        return
                    now = time.monotonic()
                    while self._delayed and self._delayed[0][0] <= now:
                        when, _, key = heapq.heappop(self._delayed)
                        if self._due.get(key) == when:  # else superseded by an earlier entry
                            del self._due[key]
                            self._ready[key] = None
                    if self._ready:
                        key = next(iter(self._ready))
                        del self._ready[key]
                        self._busy = True
                        break
                    timeout = self._delayed[0][0] - now if self._delayed else None
                    self._cond.wait(timeout)
            try:
                self._process(key)
            except Exception:
                log.exception("processing %r failed", key)
            finally:
                with self._cond:
                    self._busy = False

