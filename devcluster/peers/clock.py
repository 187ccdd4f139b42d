"""Time for the simulated peers: an injectable clock and the API's timestamp format.

Certificate validity, renewal decisions and condition transition times come from a :class:`Clock`
so that tests can drive them (any object with a ``now()`` returning an aware UTC ``datetime``
will do, e.g. a manual clock of the test's own); :class:`SystemClock` is the default.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "SystemClock", "format_time"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    """Wall-clock time in UTC (freezegun-friendly: it reads ``datetime.now``)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def format_time(when: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, as the API writes a ``metav1.Time``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
