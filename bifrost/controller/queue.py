"""A deduplicating, rate-limited work queue of object keys (client-go's workqueue, in Python).

Watch events arrive in bursts: a blueprint edit touches every Gateway of its classes, a Secret
rotation every Gateway that serves it, and one Gateway may change several times before a worker
gets to it. Reconciling is level-triggered (a worker reads the *current* state from the cache),
so one pending entry per key is enough. The queue guarantees:

- **dedup**: a key waiting in the queue is never queued twice;
- **no concurrent work on one key**: a key being processed is not handed to a second worker; if it
  is added meanwhile it is marked *dirty* and re-queued when the first worker calls :meth:`done`;
- **rate-limited requeue**: :meth:`add_rate_limited` delays a key exponentially in its number of
  consecutive failures (``base * 2**n`` capped at ``cap``) until :meth:`forget` resets it, so a
  broken object cannot hot-loop; :meth:`add_after` schedules a plain delayed re-check.

Time comes from an injectable monotonic function so tests drive delays without sleeping.
Thread-safe; :meth:`get` blocks (with a timeout) until a key is due or the queue shuts down.

A :class:`QueueObserver` (the controller's metrics: client-go's ``workqueue_*`` set) is told of
adds, retries, how long a key waited and how long it was worked on; :meth:`depth` is read at
scrape time. The observer is called under the queue's lock: it must be quick and never block.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["QueueObserver", "RateLimiter", "WorkQueue"]

K = TypeVar("K", bound=Hashable)


class RateLimiter(Generic[K]):
    """Per-key exponential backoff: the n-th consecutive failure waits ``base * 2**(n-1)``."""

    def __init__(self, *, base: float = 0.005, cap: float = 300.0) -> None:
        if base <= 0 or cap < base:
            raise ValueError("need 0 < base <= cap")
        self.base = base
        self.cap = cap
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        """Record one more failure of ``key``; the delay before retrying it."""
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        return float(min(self.cap, self.base * (2 ** min(n, 60))))

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)


class QueueObserver:
    """What a :class:`WorkQueue` tells about its keys (no-ops here)."""

    def added(self) -> None:
        """A key was queued (or marked to be queued again after its work)."""

    def retried(self) -> None:
        """A key was re-queued after a failure (``add_rate_limited``)."""

    def queued_for(self, seconds: float) -> None:
        """A key waited this long between being queued and handed to a worker."""

    def worked_for(self, seconds: float) -> None:
        """A worker held a key this long (``get`` to ``done``)."""


class WorkQueue(Generic[K]):
    """See the module docstring. ``monotonic`` is the clock delays are measured on."""

    def __init__(
        self,
        *,
        rate_limiter: RateLimiter[K] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        observer: QueueObserver | None = None,
    ) -> None:
        self._observer = observer or QueueObserver()
        self._queued_at: dict[K, float] = {}  # when each ready key was queued
        self._started_at: dict[K, float] = {}  # when each key in work was handed out
        self._limiter: RateLimiter[K] = rate_limiter or RateLimiter()
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self._ready: deque[K] = deque()
        self._queued: set[K] = set()  # in _ready (dedup)
        self._processing: set[K] = set()
        self._dirty: set[K] = set()  # added while processing: re-queue on done()
        self._delayed: list[tuple[float, int, K]] = []  # heap of (due, seq, key)
        self._due: dict[K, float] = {}  # earliest due time per delayed key
        self._seq = itertools.count()
        self._shutdown = False

    # ---- adding ---------------------------------------------------------------------------

    def add(self, key: K) -> None:
        """Queue ``key`` now (no-op if it is already waiting; deferred if being processed)."""
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: K, *, requeue: bool = False) -> None:
        """``requeue``: :meth:`done` queues a key added while in work (counted back then)."""
        if self._shutdown:
            return
        self._due.pop(key, None)  # an immediate add supersedes a pending delayed one
        if key in self._processing:
            if key not in self._dirty:
                self._observer.added()
                self._queued_at.setdefault(key, self._monotonic())
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        if not requeue:
            self._observer.added()
        self._queued_at.setdefault(key, self._monotonic())
        self._queued.add(key)
        self._ready.append(key)
        self._cond.notify()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds (the earliest of several requests wins)."""
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutdown:
                return
            due = self._monotonic() + delay
            current = self._due.get(key)
            if current is not None and current <= due:
                return
            self._due[key] = due
            heapq.heappush(self._delayed, (due, next(self._seq), key))
            self._cond.notify()

    def add_rate_limited(self, key: K, *, at_least: float = 0.0) -> float:
        """Queue ``key`` after its next backoff delay, but not before ``at_least`` seconds (e.g.
        a server's Retry-After); returns the delay."""
        with self._cond:
            delay = max(self._limiter.when(key), at_least)
            self._observer.retried()
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """``key`` succeeded: its next failure starts from the base delay again."""
        with self._cond:
            self._limiter.forget(key)

    def failures(self, key: K) -> int:
        with self._cond:
            return self._limiter.failures(key)

    # ---- taking ---------------------------------------------------------------------------

    def _promote_due_locked(self) -> float | None:
        """Move due delayed keys to the ready queue; seconds until the next one (or None)."""
        now = self._monotonic()
        while self._delayed:
            due, _, key = self._delayed[0]
            if self._due.get(key) != due:
                heapq.heappop(self._delayed)  # superseded entry
                continue
            if due > now:
                return due - now
            heapq.heappop(self._delayed)
            del self._due[key]
            self._add_locked(key)
        return None

    def get(self, timeout: float | None = None) -> K | None:
        """The next due key (marked processing), or ``None`` on timeout or shutdown.

        ``timeout=0`` never blocks (for tests with an injected clock).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._shutdown:
                    return None
                next_due = self._promote_due_locked()
                if self._ready:
                    key = self._ready.popleft()
                    self._queued.discard(key)
                    self._processing.add(key)
                    now = self._monotonic()
                    queued = self._queued_at.pop(key, None)
                    if queued is not None:
                        self._observer.queued_for(max(0.0, now - queued))
                    self._started_at[key] = now
                    return key
                wait = next_due
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def done(self, key: K) -> None:
        """The worker finished ``key``; re-queue it if it was added meanwhile."""
        with self._cond:
            self._processing.discard(key)
            started = self._started_at.pop(key, None)
            if started is not None:
                self._observer.worked_for(max(0.0, self._monotonic() - started))
            if key in self._dirty:
                self._dirty.discard(key)
                self._add_locked(key, requeue=True)

    # ---- lifecycle & introspection ----------------------------------------------------------

    def shutdown(self) -> None:
        """Wake every waiting worker; later adds are ignored and :meth:`get` returns ``None``."""
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

    @property
    def is_shutdown(self) -> bool:
        with self._cond:
            return self._shutdown

    def __len__(self) -> int:
        """Keys ready now (delayed and in-flight keys not counted)."""
        with self._cond:
            self._promote_due_locked()
            return len(self._ready)

    def depth(self) -> int:
        """Keys due and not yet handed out (client-go's ``workqueue_depth``)."""
        return len(self)

    def pending(self) -> set[K]:
        """Every key waiting: ready, delayed or dirty (for tests and metrics)."""
        with self._cond:
            return set(self._queued) | set(self._due) | set(self._dirty)
