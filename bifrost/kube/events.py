"""Kubernetes Events (``events.k8s.io/v1``) for what bifrost does to users' objects.

Events are how ``kubectl describe gateway x`` tells a user why their Gateway is not programmed.
They are best-effort (a failure to post one never fails a reconcile) and must not flood the API
server when a reconcile loop repeats the same thing, so :class:`EventRecorder` keeps a series
cache like client-go's events recorder:

- the first occurrence of an event creates it;
- an identical one (same regarding object, related object, type, reason, action and note) within
  ``series_window`` of the last occurrence is folded into the first as an ``EventSeries``: the first
  repeat patches ``series.count`` at once, later repeats only count in memory and are written at
  most once per ``series_flush_interval`` (and by :meth:`EventRecorder.flush`);
- after ``series_window`` without repeats, the next occurrence starts a new Event.

Fields follow the events.k8s.io/v1 validation: ``eventTime`` (MicroTime), ``reportingController``
``gateway.bifrost.dev/bifrost``, ``reportingInstance`` (this pod), ``action`` and ``reason`` (at
most 128 characters), ``type`` Normal|Warning, ``note`` at most 1 KiB. An Event about a
cluster-scoped object (a GatewayClass) lives in ``default``.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from bifrost.clock import Clock, SystemClock
from bifrost.kube.client import KubeClient
from bifrost.kube.errors import KubeError, NotFound
from bifrost.kube.identity import default_identity
from bifrost.kube.times import format_micro_time

__all__ = [
    "EVENTS_API_VERSION",
    "REPORTING_CONTROLLER",
    "EventRecorder",
    "ObjectRef",
    "truncate_note",
]

log = logging.getLogger(__name__)

EVENTS_API_VERSION = "events.k8s.io/v1"
REPORTING_CONTROLLER = "gateway.bifrost.dev/bifrost"
NOTE_LIMIT_BYTES = 1024
_FIELD_LIMIT = 128

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class ObjectRef:
    """The object an Event is about (``regarding``) or mentions (``related``)."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> ObjectRef:
        meta = obj.get("metadata") or {}
        return cls(
            api_version=str(obj["apiVersion"]),
            kind=str(obj["kind"]),
            name=str(meta["name"]),
            namespace=meta.get("namespace") or None,
            uid=meta.get("uid") or None,
            resource_version=meta.get("resourceVersion") or None,
        )

    def as_dict(self) -> dict[str, str]:
        ref = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}
        if self.namespace:
            ref["namespace"] = self.namespace
        if self.uid:
            ref["uid"] = self.uid
        if self.resource_version:
            ref["resourceVersion"] = self.resource_version
        return ref

    def identity(self) -> tuple[str, str, str, str, str]:
        """What makes two references "the same object" for the series cache (not the rv)."""
        return (self.api_version, self.kind, self.namespace or "", self.name, self.uid or "")


def truncate_note(note: str, limit: int = NOTE_LIMIT_BYTES) -> str:
    """``note`` cut to at most ``limit`` UTF-8 bytes without splitting a character."""
    encoded = note.encode("utf-8")
    if len(encoded) <= limit:
        return note
    return encoded[:limit].decode("utf-8", errors="ignore")


@dataclass
class _Series:
    name: str
    namespace: str
    count: int
    last_observed: datetime
    written_count: int
    last_written: datetime


_Key = tuple[Any, ...]


class EventRecorder:
    """Posts events.k8s.io/v1 Events with series de-duplication. Thread-safe."""

    def __init__(
        self,
        client: KubeClient,
        *,
        reporting_instance: str | None = None,
        reporting_controller: str = REPORTING_CONTROLLER,
        clock: Clock | None = None,
        series_window: timedelta = timedelta(minutes=6),
        series_flush_interval: timedelta = timedelta(seconds=30),
        cache_size: int = 4096,
    ) -> None:
        self._client = client
        self.reporting_instance = (reporting_instance or default_identity())[:_FIELD_LIMIT]
        self.reporting_controller = reporting_controller
        self._clock = clock or SystemClock()
        self.series_window = series_window
        self.series_flush_interval = series_flush_interval
        self._cache_size = cache_size
        self._cache: OrderedDict[_Key, _Series] = OrderedDict()
        self._lock = threading.Lock()

    def record(
        self,
        regarding: ObjectRef | dict[str, Any],
        *,
        reason: str,
        action: str,
        note: str = "",
        type: EventType = "Normal",
        related: ObjectRef | dict[str, Any] | None = None,
    ) -> str | None:
        """Record one occurrence; returns the Event's name, or ``None`` if it could not be posted.

        ``regarding``/``related`` may be an :class:`ObjectRef` or the object itself.
        """
        if type not in ("Normal", "Warning"):
            raise ValueError(f"event type must be Normal or Warning, not {type!r}")
        if not reason or not action:
            raise ValueError("an Event needs a reason and an action")
        ref = regarding if isinstance(regarding, ObjectRef) else ObjectRef.from_object(regarding)
        rel = (
            None
            if related is None
            else related
            if isinstance(related, ObjectRef)
            else ObjectRef.from_object(related)
        )
        reason, action = reason[:_FIELD_LIMIT], action[:_FIELD_LIMIT]
        note = truncate_note(note)
        key: _Key = (ref.identity(), rel.identity() if rel else None, type, reason, action, note)
        with self._lock:
            now = self._clock.now()
            series = self._cache.get(key)
            if series is not None and now - series.last_observed <= self.series_window:
                self._cache.move_to_end(key)
                series.count += 1
                series.last_observed = now
                due = (
                    series.written_count == 1
                    or now - series.last_written >= self.series_flush_interval
                )
                if due and not self._write_series(series, now):
                    # The Event is gone (expired by the server's TTL): start afresh.
                    del self._cache[key]
                    return self._create(key, ref, rel, type, reason, action, note, now)
                return series.name
            self._cache.pop(key, None)
            return self._create(key, ref, rel, type, reason, action, note, now)

    def flush(self) -> None:
        """Write the counts of every series with unwritten repeats (e.g. before shutdown)."""
        with self._lock:
            now = self._clock.now()
            for key, series in list(self._cache.items()):
                if series.count != series.written_count and not self._write_series(series, now):
                    del self._cache[key]

    def _create(
        self,
        key: _Key,
        ref: ObjectRef,
        rel: ObjectRef | None,
        type: EventType,
        reason: str,
        action: str,
        note: str,
        now: datetime,
    ) -> str | None:
        namespace = ref.namespace or "default"
        name = f"{ref.name}.{int(now.timestamp() * 1e9):x}{secrets.token_hex(2)}"[:253]
        body: dict[str, Any] = {
            "apiVersion": EVENTS_API_VERSION,
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "eventTime": format_micro_time(now),
            "reportingController": self.reporting_controller,
            "reportingInstance": self.reporting_instance,
            "action": action,
            "reason": reason,
            "type": type,
            "note": note,
            "regarding": ref.as_dict(),
        }
        if rel is not None:
            body["related"] = rel.as_dict()
        try:
            self._client.create(body, namespace=namespace)
        except KubeError as exc:
            log.warning("could not post Event %s %s on %s: %s", type, reason, ref.name, exc)
            return None
        self._cache[key] = _Series(
            name=name,
            namespace=namespace,
            count=1,
            last_observed=now,
            written_count=1,
            last_written=now,
        )
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return name

    def _write_series(self, series: _Series, now: datetime) -> bool:
        """Patch the series count; False when the Event no longer exists."""
        try:
            self._client.patch(
                EVENTS_API_VERSION,
                "Event",
                series.name,
                series.namespace,
                {
                    "series": {
                        "count": series.count,
                        "lastObservedTime": format_micro_time(series.last_observed),
                    }
                },
            )
        except NotFound:
            return False
        except KubeError as exc:
            log.warning("could not update Event series %s: %s", series.name, exc)
            return True  # keep counting; the next due write carries the total
        series.written_count = series.count
        series.last_written = now
        return True
