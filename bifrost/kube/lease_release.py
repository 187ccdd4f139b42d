"""A candidate's wait between two election attempts, cut short when the leader lets go.

client-go's candidates poll the Lease every retry period, so when a leader steps down on
purpose (a rollout, a drained node: it empties ``holderIdentity``) nobody leads until the next
poll — up to the retry period, two seconds by default. :class:`ReleaseWatch` waits the same
time on a watch of the one Lease (``fieldSelector=metadata.name=…``, which RBAC allows with
``resourceNames``) and returns as soon as the Lease is released or deleted, so a standby takes
over within one round trip. Renewals do not end the wait: a standby makes no more requests
than with polling. When the watch cannot be opened (no ``watch`` permission, an old server),
the wait is a plain sleep — one WARNING says so — and the election works exactly as before.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

from bifrost.kube.client import KubeClient, WatchStream
from bifrost.kube.errors import KubeError
from bifrost.kube.failure_log import FailureLog

__all__ = ["ReleaseWatch", "released"]

log = logging.getLogger(__name__)


def released(event: dict[str, Any]) -> bool:
    """Whether a watch event says nobody holds the Lease any more."""
    if event.get("type") == "DELETED":
        return True
    if event.get("type") not in ("ADDED", "MODIFIED"):
        return False
    spec = (event.get("object") or {}).get("spec") or {}
    return not spec.get("holderIdentity")


class ReleaseWatch:
    """Waits on one Lease; :meth:`interrupt` (any thread) ends a wait at once."""

    def __init__(self, client: KubeClient, *, api_version: str, namespace: str,
                 name: str) -> None:
        self._client = client
        self._api_version = api_version
        self._namespace = namespace
        self._name = name
        self._lock = threading.Lock()
        self._stream: WatchStream | None = None
        self._interrupted = threading.Event()
        self._failures = FailureLog(log)

    def interrupt(self) -> None:
        self._interrupted.set()
        with self._lock:
            if self._stream is not None:
                self._stream.close()

    def wait(self, seconds: float, *, resource_version: str | None) -> bool:
        """Wait up to ``seconds`` for the Lease (last read at ``resource_version``) to be
        released; True when it was (early), False after the full wait or an interrupt."""
        if self._interrupted.is_set():
            return False
        if not resource_version:
            self._interrupted.wait(seconds)
            return False
        where = f"lease {self._namespace}/{self._name}"
        try:
            stream = self._client.watch_stream(
                self._api_version, "Lease", self._namespace,
                resource_version=resource_version,
                field_selector=f"metadata.name={self._name}",
                timeout_seconds=max(1, math.ceil(seconds)), allow_bookmarks=False,
                read_timeout=seconds + 5.0)
        except KubeError as exc:
            self._failures.failed(f"watching {where} failed ({exc}); polling it every "
                                  f"{seconds:.1f}s instead")
            self._interrupted.wait(seconds)
            return False
        self._failures.recovered(f"watching {where} works again")
        deadline = time.monotonic() + seconds
        with self._lock:
            self._stream = stream
        if self._interrupted.is_set():
            stream.close()
        timer = threading.Timer(seconds, stream.close)  # the wait ends on time, events or not
        timer.daemon = True
        timer.start()
        try:
            for event in stream:
                if released(event):
                    return True
        except KubeError as exc:
            log.debug("watching %s ended: %s", where, exc)
        finally:
            timer.cancel()
            stream.close()
            with self._lock:
                self._stream = None
        # A stream the server ended early (an expired resourceVersion, a restart) is no
        # release: the rest of the wait is slept, never a tight loop of attempts.
        self._interrupted.wait(max(0.0, deadline - time.monotonic()))
        return False
