"""A clock that follows the database server's: how a leader's runners judge operation leases.

An operation lease is written as ``lease_expires_at = now + lease_for`` by the runner that
claims it and compared with ``now`` by every fenced write and by the next claimer. If each
replica used its own clock, a replica running ahead would take over a lease that has not
expired for its holder (and a fenced write of a runner running behind would pass after its
lease expired for everyone else). So in production the runners' ``now`` is the database's:
:class:`DatabaseClock` asks the store for its time (``database_time``) at most every
``refresh`` and adds the local monotonic time elapsed since, so a step costs no extra round
trip and every replica's ``now`` agrees with the database's to within half a round trip plus
the drift of a local clock over ``refresh``.

When the database cannot be reached the last offset is kept (the runner backs off anyway); a
clock that never reached it reads the local clock. Tests inject a ``ManualClock`` (or freezegun)
instead, and leases are then judged by that clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from bifrost.clock import Clock, SystemClock
from bifrost.store.errors import StoreError

__all__ = ["DatabaseClock"]

log = logging.getLogger(__name__)


class DatabaseClock:
    """``now()`` = the local clock + the offset to ``database_time()`` last measured."""

    def __init__(
        self,
        database_time: Callable[[], datetime],
        *,
        local: Clock | None = None,
        refresh: timedelta = timedelta(seconds=30),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database_time = database_time
        self._local = local or SystemClock()
        self._refresh = refresh.total_seconds()
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._offset: timedelta | None = None
        self._measured_at: float | None = None

    @property
    def offset(self) -> timedelta | None:
        """The database's clock minus the local one, as last measured (None: never)."""
        return self._offset

    def _measure(self) -> None:
        before = self._local.now()
        started = self._monotonic()
        try:
            remote = self._database_time()
        except StoreError as exc:
            log.warning("cannot read the database's clock (%s); keeping the last offset", exc)
            self._measured_at = self._monotonic()  # try again after ``refresh``
            return
        elapsed = self._monotonic() - started
        offset = remote - (before + timedelta(seconds=elapsed / 2))
        if self._offset is None or abs(offset - self._offset) > timedelta(seconds=1):
            log.info("database clock offset: %+.3fs", offset.total_seconds())
        self._offset = offset
        self._measured_at = self._monotonic()

    def now(self) -> datetime:
        with self._lock:
            if self._measured_at is None or self._monotonic() - self._measured_at >= self._refresh:
                self._measure()
            offset = self._offset or timedelta(0)
        return self._local.now() + offset
