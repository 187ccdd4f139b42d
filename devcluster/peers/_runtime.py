"""The small controller runtime the simulated peers share: informers and a delaying work queue.

The peers are ordinary API clients, so they are written the way a controller is: watch events
update a local cache and enqueue keys; one worker per peer reconciles keys one at a time (so a
peer never races itself) and may re-enqueue a key after a delay (issuance delay, retry backoff,
renewal time). Nothing here imports ``kubernetes``: watches go through :mod:`bifrost.kube`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from bifrost.kube.client import KubeClient
from bifrost.kube.watch import Watcher, WatchEvent

__all__ = ["Informer", "WorkQueue"]

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class Informer:
    """Runs a :class:`~bifrost.kube.watch.Watcher` in a thread, keeps a cache, calls a handler.

    The handler runs on the informer's thread after the cache is updated; an exception in it is
    logged and does not stop the watch.
    """

    def __init__(
        self,
        client: KubeClient,
        api_version: str,
        kind: str,
        handler: Callable[[WatchEvent], None],
        *,
        timeout_seconds: int = 300,
    ) -> None:
        self.api_version = api_version
        self.kind = kind
        self._handler = handler
        self._watcher = Watcher(client, api_version, kind, timeout_seconds=timeout_seconds)
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], dict[str, Any]] = {}
        self._thread = threading.Thread(target=self._run, name=f"informer-{kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._watcher.stop()
        self._thread.join(timeout=10)

    @property
    def synced(self) -> bool:
        """True once the first list has completed."""
        return bool(self._watcher.resource_version)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._cache.get((namespace, name))

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._cache.values())

    def _run(self) -> None:
        for event in self._watcher:
            with self._lock:
                if event.type == "DELETED":
                    self._cache.pop(event.key, None)
                else:
                    self._cache[event.key] = event.object
            try:
                self._handler(event)
            except Exception:  # a peer bug must not end its watch
                log.exception("%s handler failed on %s %s", self.kind, event.type, event.key)


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


def swallow(fn: Callable[[], object]) -> None:
    """Run ``fn`` ignoring any exception (for best-effort cleanup)."""
    with contextlib.suppress(Exception):
        fn()
