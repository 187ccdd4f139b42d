"""One log line per change of a repeated failure.

A request retried with back-off fails the same way for as long as its cause lasts: a 403 until
someone grants the verb, a refused connection until the API server is back. Logging each retry
buries everything else (the leader election retries every two seconds, an hour of a missing
``leases`` permission was 1,800 identical WARNING lines). :class:`FailureLog` logs a failure at
WARNING when it starts or its text changes, each repeat at DEBUG, and one INFO line when the
request works again.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["FailureLog"]


class FailureLog:
    """The failure state of one repeated request (thread-safe)."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._lock = threading.Lock()
        #: The failure last logged at WARNING (None: the last request answered).
        self.failing: str | None = None

    def failed(self, text: str) -> bool:
        """Log ``text`` at WARNING if it differs from the failure last logged, else at DEBUG;
        returns whether it was logged at WARNING."""
        with self._lock:
            new = text != self.failing
            self.failing = text
        if new:
            self._log.warning("%s", text)
        else:
            self._log.debug("%s (again)", text)
        return new

    def recovered(self, text: str) -> bool:
        """After a failure was logged: ``text`` at INFO once; returns whether it was logged."""
        with self._lock:
            was = self.failing is not None
            self.failing = None
        if was:
            self._log.info("%s", text)
        return was
