"""A watch that never loses a change: list, watch, resume, relist.

A raw Kubernetes watch ends all the time — server timeouts, load balancers, API server restarts —
and may answer 410 Expired when the resourceVersion it would resume from has been compacted away.
A controller that misses one event can leave a Gateway unreconciled forever, so bifrost's
:class:`Watcher` does what client-go's reflector does:

1. **list** (paginated) and emit ``ADDED`` for every object, remembering each object's
   resourceVersion and uid;
2. **watch** from the list resourceVersion, emitting ``ADDED``/``MODIFIED``/``DELETED`` and
   tracking the last resourceVersion seen (``BOOKMARK`` events advance it without being emitted);
3. when a stream ends or breaks, **resume** from the last resourceVersion;
4. on **410 Expired** (an HTTP 410 or an ``ERROR`` event with code 410), **relist** and emit the
   difference against what the consumer was last told — ``ADDED`` for new objects, ``MODIFIED``
   for changed ones, ``DELETED`` (with the last known object) for vanished ones, and
   ``DELETED`` + ``ADDED`` when an object was replaced by one with a new uid — so the consumer's
   view converges on the server's even though individual intermediate events were lost;
5. on errors (5xx, 429, connection failures, streams that end at once without progress), **back
   off** exponentially with full jitter, honouring Retry-After; the backoff resets once a stream
   delivers events, so there is no busy loop even against a server that drops every stream.
   A 403 (a missing ``list``/``watch`` permission) is retried the same way, so granting the
   permission recovers the informer without a restart. Each failure is one WARNING line until
   it changes or the request answers again (then one INFO line), not one per retry.

API: iterate a :class:`Watcher` (``for event in watcher: ...``) in one thread and call
:meth:`Watcher.stop` from any other to end the iteration; or call :meth:`Watcher.run` with a
callback. Each item is a :class:`WatchEvent` with ``type`` in ``ADDED | MODIFIED | DELETED`` and
the object as a ``dict``. Sleeping, the clock and the jitter source are injectable for tests.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from bifrost.kube.client import KubeClient, WatchStream, metadata_view
from bifrost.kube.errors import Gone, KubeError, Retryable, map_error
from bifrost.kube.failure_log import FailureLog

__all__ = ["Backoff", "WatchEvent", "Watcher"]

log = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Key = tuple[str, str]  # (namespace or "", name)
# How one watch stream ended: "ended" normally, "short" (at once, nothing delivered), "expired"
# (410), "error"; whether it delivered anything; the error, if any.
_Outcome = tuple[str, bool, KubeError | None]


@dataclass(frozen=True)
class WatchEvent:
    """One change the consumer should see. ``synthetic`` marks events made up by a relist diff."""

    type: EventType
    object: dict[str, Any] = field(repr=False)
    synthetic: bool = False

    @property
    def key(self) -> Key:
        meta = self.object.get("metadata") or {}
        return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: ``uniform(base*2**(n-1)/2, min(cap, base*2**(n-1)))``.

    The lower half keeps the delay away from zero, so even unlucky draws cannot spin.
    """

    base: float = 0.5
    cap: float = 30.0

    def delay(self, failures: int, rng: random.Random) -> float:
        if failures <= 0:
            return 0.0
        ceiling = min(self.cap, self.base * (2 ** min(failures - 1, 30)))
        return rng.uniform(ceiling / 2, ceiling)


class _Stopped(Exception):
    pass


class Watcher:
    """Watch one kind (optionally one namespace and selectors) and emit every change eventually.

    Thread model: one thread iterates; :meth:`stop` may be called from any thread and ends the
    iteration promptly (it aborts an open stream and interrupts a backoff sleep, unless a custom
    ``sleep`` was injected). A Watcher is single-use.
    """

    def __init__(
        self,
        client: KubeClient,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        min_stream_seconds: float = 1.0,
        metadata_only: bool = False,
    ) -> None:
        """``timeout_seconds`` is asked of the server per stream (jittered by up to 10 %).

        ``metadata_only``: list and watch ``PartialObjectMetadata`` — every object emitted (and
        remembered) is its :func:`~bifrost.kube.client.metadata_view`, so a Secret's data never
        reaches the consumer even from a server that ignores the metadata-only ``Accept``.

        A stream that ends within ``min_stream_seconds`` without delivering anything counts as a
        failure (and is backed off), so a server that closes every stream at once is not hammered.
        """
        self._client = client
        self.api_version = api_version
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.metadata_only = metadata_only
        self.timeout_seconds = timeout_seconds
        self.backoff = backoff or Backoff()
        self._stop = threading.Event()
        self._sleep = sleep or self._interruptible_sleep
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self.min_stream_seconds = min_stream_seconds
        self._stream: WatchStream | None = None
        self._stream_lock = threading.Lock()
        self._known: dict[Key, dict[str, Any]] = {}
        self._started = False
        self._failures = FailureLog(log)
        #: The resourceVersion the next watch resumes from ("" before the first list).
        self.resource_version = ""
        #: Counters for observability and tests: lists, watches, relists, errors, sleeps.
        self.stats: dict[str, int] = {
            "lists": 0,
            "watches": 0,
            "relists": 0,
            "errors": 0,
            "backoffs": 0,
            "events": 0,
        }
        #: Every backoff delay slept, in order (for tests asserting Retry-After is honoured).
        self.delays: list[float] = []

    # ---- control ------------------------------------------------------------------------

    def stop(self) -> None:
        """End the iteration from any thread."""
        self._stop.set()
        with self._stream_lock:
            stream = self._stream
        if stream is not None:
            stream.close()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def known(self) -> dict[Key, dict[str, Any]]:
        """The objects as the consumer was last told (a copy of the keys; objects shared)."""
        return dict(self._known)

    def run(self, callback: Callable[[WatchEvent], None]) -> None:
        """Call ``callback`` for each event until :meth:`stop`; exceptions from it propagate."""
        for event in self:
            callback(event)

    def _interruptible_sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _pause(self, seconds: float) -> None:
        if seconds <= 0 or self._stop.is_set():
            return
        self.stats["backoffs"] += 1
        self.delays.append(seconds)
        self._sleep(seconds)
        if self._stop.is_set():
            raise _Stopped

    # ---- the loop -----------------------------------------------------------------------

    def __iter__(self) -> Iterator[WatchEvent]:
        if self._started:
            raise RuntimeError("a Watcher can only be iterated once")
        self._started = True
        try:
            yield from self._loop()
        except _Stopped:
            return
        finally:
            with self._stream_lock:
                stream, self._stream = self._stream, None
            if stream is not None:
                stream.close()

    def _failure_delay(self, failures: int, error: KubeError | None) -> float:
        delay = self.backoff.delay(failures, self._rng)
        if isinstance(error, Retryable):
            # Never earlier than the error says (Retry-After for 429/5xx).
            delay = max(delay, error.delay)
        return delay

    def _loop(self) -> Iterator[WatchEvent]:
        failures = 0
        need_list = True
        progress_since_list = False
        while not self._stop.is_set():
            if need_list:
                try:
                    events = self._relist()
                except KubeError as exc:
                    failures += 1
                    self.stats["errors"] += 1
                    self._report_failure("list", exc, "retrying")
                    self._pause(self._failure_delay(failures, exc))
                    continue
                self._report_recovery("list")
                need_list = False
                progress_since_list = False
                yield from events
                if self._stop.is_set():
                    return
            outcome, delivered, error = yield from self._watch_once()
            if self._stop.is_set():
                return
            if delivered:
                failures = 0
                progress_since_list = True
            if outcome == "expired":
                need_list = True
                self.stats["relists"] += 1
                if not progress_since_list:
                    # Expired again before any progress since the last list: relisting at once
                    # could loop list/410 against a server that keeps expiring.
                    failures += 1
                    self._pause(self._failure_delay(failures, None))
            elif outcome == "error":
                failures += 1
                self.stats["errors"] += 1
                self._pause(self._failure_delay(failures, error))
            elif outcome == "short":
                failures += 1
                self._pause(self._failure_delay(failures, None))
            # "ended": a stream that lived normally; resume at once.

    def _report_failure(self, request: str, exc: KubeError, then: str) -> None:
        """One WARNING per change of failure (a 403 retried with back-off for an hour is one
        line, not one per retry); the repeats are DEBUG."""
        self._failures.failed(f"{request} {self.kind} failed ({exc}); {then}")

    def _report_recovery(self, request: str) -> None:
        """After a failure was reported: one INFO line when the request answers again."""
        self._failures.recovered(f"{request} {self.kind} works again")

    def _metadata_kw(self) -> dict[str, Any]:
        return {"metadata_only": True} if self.metadata_only else {}

    def _relist(self) -> list[WatchEvent]:
        """List and diff against what the consumer knows; returns the events to emit."""
        self.stats["lists"] += 1
        items, list_rv = self._client.list(
            self.api_version,
            self.kind,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            **self._metadata_kw(),
        )
        fresh: dict[Key, dict[str, Any]] = {}
        for item in items:
            meta = item.get("metadata") or {}
            fresh[(str(meta.get("namespace") or ""), str(meta.get("name") or ""))] = item
        events: list[WatchEvent] = []
        synthetic = bool(self.resource_version)
        for key, old in self._known.items():
            new = fresh.get(key)
            if new is None or _uid(new) != _uid(old):
                events.append(WatchEvent("DELETED", old, synthetic=synthetic))
        for key, new in fresh.items():
            before = self._known.get(key)
            if before is None or _uid(new) != _uid(before):
                events.append(WatchEvent("ADDED", new, synthetic=synthetic))
            elif _rv(new) != _rv(before):
                events.append(WatchEvent("MODIFIED", new, synthetic=synthetic))
        self._known = fresh
        self.resource_version = list_rv
        self.stats["events"] += len(events)
        return events

    def _watch_once(self) -> Generator[WatchEvent, None, _Outcome]:
        """One watch stream; returns (outcome, delivered anything, error) to ``yield from``."""
        timeout = max(1, int(self.timeout_seconds * (1 + 0.1 * self._rng.random())))
        started = self._monotonic()
        delivered = 0
        self.stats["watches"] += 1
        try:
            stream = self._client.watch_stream(
                self.api_version,
                self.kind,
                self.namespace,
                resource_version=self.resource_version,
                label_selector=self.label_selector,
                field_selector=self.field_selector,
                timeout_seconds=timeout,
                allow_bookmarks=True,
                **self._metadata_kw(),
            )
        except Gone:
            return "expired", False, None
        except KubeError as exc:
            self._report_failure("watch", exc, "backing off")
            return "error", False, exc
        self._report_recovery("watch")
        with self._stream_lock:
            if self._stop.is_set():
                stream.close()
                return "ended", False, None
            self._stream = stream
        try:
            for raw in stream:
                etype = raw.get("type")
                obj = raw.get("object")
                if not isinstance(obj, dict):
                    continue
                if etype == "ERROR":
                    code = obj.get("code")
                    if code == 410:
                        return "expired", delivered > 0, None
                    mapped = map_error(_StatusError(obj))
                    log.warning("watch %s got an error event: %s", self.kind, obj.get("message"))
                    return "error", delivered > 0, mapped
                rv = _rv(obj)
                if etype == "BOOKMARK":
                    if rv:
                        self.resource_version = rv
                    delivered += 1  # progress: the server is alive and moving
                    continue
                if etype not in ("ADDED", "MODIFIED", "DELETED"):
                    continue
                if self.metadata_only:
                    obj = metadata_view(obj)
                if rv:
                    self.resource_version = rv
                delivered += 1
                event = self._track(etype, obj)
                if event is not None:
                    self.stats["events"] += 1
                    yield event
                if self._stop.is_set():
                    return "ended", True, None
        except KubeError as exc:
            if self._stop.is_set():
                return "ended", delivered > 0, None
            log.info("watch %s stream broke (%s); resuming", self.kind, exc)
            if delivered:
                return "ended", True, None
            return "error", False, exc
        finally:
            with self._stream_lock:
                self._stream = None
            stream.close()
        if delivered == 0 and self._monotonic() - started < self.min_stream_seconds:
            return "short", False, None
        return "ended", delivered > 0, None

    def _track(self, etype: str, obj: dict[str, Any]) -> WatchEvent | None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        old = self._known.get(key)
        if etype == "DELETED":
            self._known.pop(key, None)
            return WatchEvent("DELETED", obj)
        self._known[key] = obj
        if old is None:
            return WatchEvent("ADDED", obj)
        if _uid(old) != _uid(obj):
            # Replaced while we were not looking; the consumer sees it as an update of the key.
            return WatchEvent("MODIFIED", obj)
        if etype == "ADDED":
            # A resumed or re-sent watch may repeat an ADDED for an object already emitted.
            return WatchEvent("MODIFIED", obj) if _rv(old) != _rv(obj) else None
        return WatchEvent("MODIFIED", obj)


class _StatusError(Exception):
    """Adapts a Status object from an ERROR event to :func:`map_error`."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(status.get("message"))
        code = status.get("code")
        self.status = code if isinstance(code, int) and code else 500
        self.reason = status.get("reason") or ""
        self.body = json.dumps(status)
        self.headers: dict[str, str] = {}


def _rv(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("resourceVersion") or "")


def _uid(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or "")
