"""The controller's probes and their HTTP endpoints: ``/readyz``, ``/healthz`` and ``/metrics``.

What each probe means, so that the kubelet acts on something real:

- ``/readyz`` (send me traffic, count me as up): the informer caches are synced **and** the
  database answers a cheap query (``database_time``) within ``database_timeout``. The answer is
  reused for ``database_cache`` so that probes do not hammer the database. Followers are ready
  too (healthy standbys).
- ``/healthz`` (restart me if this fails): the threads that do the work are alive and making
  progress — the leader elector's loop stepped within ``stall_after``; every reconcile worker and
  engine runner of the current term is alive and beat within ``stall_after`` (a runner beats
  before each step and whenever it waits, a worker each time it asks the queue for work) — and
  the database has not been unreachable for longer than ``database_lost_after``. A thread that
  ended by an exception stays registered, so a dead runner fails the probe; one that ended with
  its term unregisters itself.

Every threshold is judged by the injected clock; only the wait for the database's answer is a
real-time wait (a probe must answer in time whatever the database does). The database query
runs on its own thread, at most one at a time, so a hung connection costs one thread, not one
per probe. Both answers are JSON naming the failed checks (``failed``) and each check's detail
(``checks``); a database error is one line of the store's message (which never shows the
password).

:class:`HealthServer` is a small threaded HTTP server that asks its :class:`HealthSource` (the
:class:`~bifrost.controller.manager.Controller`) what to answer; it holds no state of its own,
so the same class serves the health port and, separately, the metrics port.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from bifrost.clock import Clock
from bifrost.controller.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from bifrost.controller.metrics import Metrics

__all__ = [
    "DatabaseCheck",
    "DatabaseState",
    "HealthOptions",
    "HealthServer",
    "HealthSource",
    "Heartbeats",
    "Verdict",
]


@dataclass(frozen=True)
class HealthOptions:
    """The probes' thresholds (defaults in brackets)."""

    #: How long a probe waits for the database's answer [2 s] (real time).
    database_timeout: float = 2.0
    #: How long a database answer is reused [2 s].
    database_cache: timedelta = timedelta(seconds=2)
    #: ``/healthz`` fails once the database has been unreachable this long [60 s].
    database_lost_after: timedelta = timedelta(seconds=60)
    #: ``/healthz`` fails when the elector, a worker or a runner has not beaten this long
    #: [120 s: longer than a step's API calls with their timeouts and one retry].
    stall_after: timedelta = timedelta(seconds=120)


@dataclass(frozen=True)
class Verdict:
    """One probe's answer: ``ok`` and each check's detail (``checks[name]["ok"]``)."""

    checks: Mapping[str, Mapping[str, Any]]

    @property
    def ok(self) -> bool:
        return all(bool(c.get("ok")) for c in self.checks.values())

    @property
    def failed(self) -> list[str]:
        return [name for name, c in self.checks.items() if not c.get("ok")]

    def body(self) -> dict[str, Any]:
        return {"ok": self.ok, "failed": self.failed,
                "checks": {k: dict(v) for k, v in self.checks.items()}}


@dataclass(frozen=True)
class DatabaseState:
    """The last database answer: ``error`` is None when it answered; ``down_since`` is when the
    current run of failures began (None while it answers)."""

    at: datetime
    error: str | None
    down_since: datetime | None


class DatabaseCheck:
    """Asks the database (``probe``: a cheap query; raising means unreachable) at most once per
    ``cache_for``, waiting at most ``timeout`` seconds for its answer."""

    def __init__(self, probe: Callable[[], object], clock: Clock, *, timeout: float,
                 cache_for: timedelta) -> None:
        self._probe = probe
        self._clock = clock
        self.timeout = timeout
        self.cache_for = cache_for
        self._lock = threading.Lock()
        self._state: DatabaseState | None = None
        self._inflight: threading.Event | None = None

    @property
    def state(self) -> DatabaseState | None:
        """The last answer recorded (None before the first)."""
        with self._lock:
            return self._state

    def check(self) -> DatabaseState:
        """The database's state now: the cached answer while fresh, else a new query's."""
        with self._lock:
            state = self._state
            if state is not None and self._clock.now() - state.at < self.cache_for:
                return state
            if self._inflight is None:
                self._inflight = threading.Event()
                threading.Thread(target=self._ask, args=(self._inflight,), name="database-check",
                                 daemon=True).start()
            done = self._inflight
        if not done.wait(self.timeout):
            self._record(f"no answer within {self.timeout:g}s", done=None)
        with self._lock:
            assert self._state is not None
            return self._state

    def lost_for(self, state: DatabaseState) -> timedelta:
        """How long the database has been unreachable as of now (zero while it answers)."""
        if state.down_since is None:
            return timedelta(0)
        return self._clock.now() - state.down_since

    def _ask(self, done: threading.Event) -> None:
        try:
            self._probe()
        except Exception as exc:  # whatever the driver raises: the database is not usable
            message = " ".join(str(exc).split()) or type(exc).__name__
            self._record(message[:300], done=done)
        else:
            self._record(None, done=done)

    def _record(self, error: str | None, *, done: threading.Event | None) -> None:
        with self._lock:
            now = self._clock.now()
            previous = self._state
            if error is None:
                down_since = None
            elif previous is not None and previous.down_since is not None:
                down_since = previous.down_since
            else:
                down_since = now
            if done is None or self._inflight is done:
                self._state = DatabaseState(at=now, error=error, down_since=down_since)
            if done is not None:
                if self._inflight is done:
                    self._inflight = None
                done.set()


@dataclass
class _Beat:
    thread: threading.Thread
    at: datetime


@dataclass
class Heartbeats:
    """The last beat of each tracked thread, by thread name."""

    clock: Clock
    _beats: dict[str, _Beat] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def track(self) -> None:
        """Track the calling thread from now on (it beat just now)."""
        thread = threading.current_thread()
        with self._lock:
            self._beats[thread.name] = _Beat(thread, self.clock.now())

    def beat(self) -> None:
        """The calling thread made progress (nothing if it is not tracked)."""
        thread = threading.current_thread()
        with self._lock:
            found = self._beats.get(thread.name)
            if found is not None and found.thread is thread:
                found.at = self.clock.now()

    def forget(self) -> None:
        """The calling thread ends normally: stop tracking it."""
        with self._lock:
            self._beats.pop(threading.current_thread().name, None)

    def check(self, stall_after: timedelta) -> dict[str, Any]:
        """``dead``: tracked threads that ended without :meth:`forget`; ``stalled``: those
        alive whose last beat is older than ``stall_after``."""
        now = self.clock.now()
        with self._lock:
            beats = dict(self._beats)
        dead = sorted(name for name, b in beats.items() if not b.thread.is_alive())
        stalled = sorted(name for name, b in beats.items()
                         if b.thread.is_alive() and now - b.at > stall_after)
        return {"ok": not dead and not stalled, "tracked": len(beats), "dead": dead,
                "stalled": stalled}


class HealthSource(Protocol):
    """What :class:`HealthServer` reads of the controller."""

    @property
    def metrics(self) -> Metrics: ...

    def liveness(self) -> Verdict: ...

    def readiness(self) -> Verdict: ...

    def describe(self) -> dict[str, Any]: ...


class HealthServer:
    """``/healthz`` and ``/readyz`` (``health``) and ``/metrics`` (``metrics``) on a small
    threaded HTTP server; a path it does not serve is a 404."""

    def __init__(self, controller: HealthSource, host: str, port: int, *,
                 health: bool = True, metrics: bool = True) -> None:
        self.controller = controller
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?")[0]
                if (path == "/metrics" and not metrics) or (
                    path in ("/healthz", "/readyz") and not health
                ):
                    self.send_error(404)
                    return
                if path == "/metrics":
                    payload = outer.controller.metrics.exposition()
                    self.send_response(200)
                    self.send_header("Content-Type", METRICS_CONTENT_TYPE)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if path == "/healthz":
                    verdict = outer.controller.liveness()
                elif path == "/readyz":
                    verdict = outer.controller.readiness()
                else:
                    self.send_error(404)
                    return
                body = json.dumps({**verdict.body(), **outer.controller.describe()}).encode()
                self.send_response(200 if verdict.ok else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._server.shutdown()
            self._server.server_close()
