"""Kubernetes timestamp formats, in one place.

The API server writes ``Time`` to the second (``2026-01-01T00:00:00Z``) and ``MicroTime`` (Lease
``renewTime``, Event ``eventTime``) to the microsecond; both always in UTC with ``Z``. Lease and
Event code must format exactly that and parse either.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_micro_time", "format_time", "parse_time"]


def format_micro_time(when: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (metav1.MicroTime)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_time(when: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (metav1.Time)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    """Parse a Time or MicroTime (any RFC 3339 with ``Z`` or an offset) into an aware datetime."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
