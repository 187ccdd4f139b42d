"""When to renew a certificate: a pure decision, the clock is not consulted.

Why this exists: the store is the source of truth for every certificate's validity, and the
renewal time is *decided once*, when a certificate is recorded (``CertificateRecord.renewal_at``),
then only read back by the scheduler. Keeping the decision here — pure, with the validity and the
blueprint's ``tls.renewBefore`` / ``tls.maintenanceWindows`` passed in — makes it testable as a
table and explainable: :class:`RenewalDecision` carries a human sentence that ``bifrost-admin``
and the journal can show ("why does this certificate renew on Saturday at 02:00?").

Rules
-----
- **lifetime** = ``not_after - not_before``; it must be positive.
- **default** (no ``renewBefore``): renew when one third of the lifetime is left, i.e. at 2/3 of
  the lifetime, as cert-manager does. A 47-day certificate renews after 31 d 8 h, a 1-hour one
  after 40 minutes.
- **percentage** ``p``: renew at ``not_after - lifetime * p / 100``.
- **duration** ``d``: renew at ``not_after - d``; a duration that is not shorter than the lifetime
  (or not positive) falls back to the default, and the reason says so (cert-manager does the same).
- **maintenance windows** (weekly, wall-clock, in their own IANA zone; ``end`` before ``start``
  crosses midnight; DST handled by converting each opening/closing through ``zoneinfo``: a
  nominal time that falls into a spring-forward gap opens the window at the first real instant
  after the gap, an ambiguous fall-back time means its first occurrence):

  1. the renewal moves to the earliest moment at or after the computed time that lies inside a
     window (the computed time itself when it is already inside one);
  2. unless that is later than the *latest acceptable* moment,
     ``max(not_after - lifetime / 10, computed time)`` — i.e. a window may delay a renewal by
     at most until a tenth of the lifetime is left (never past the computed time when that is
     already later). Then the renewal moves *earlier* instead, to the opening of the latest window
     that opens before the computed time (or to ``not_before`` if that window was already open
     then): renew early rather than late. The opening, not the last instant of that window, so
     the rotation starts with the whole window ahead of it;
  3. if no window fits at all (none between ``not_before`` and the latest acceptable moment),
     the computed time is kept: "no maintenance window before expiry; renewing outside windows".

  Windows repeat weekly, so the search looks at the window openings day by day over at most
  eight days on either side of the computed time (a bounded loop, independent of the lifetime).

:func:`renewal_jitter` spreads a fleet whose renewals fall on the same minute (all certificates
issued by one bulk operation): a deterministic per-certificate offset, stable across restarts, so
a rebuilt schedule fires each certificate at the same moment as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bifrost.api.blueprint import (
    BlueprintTLS,
    MaintenanceWindow,
    RenewBefore,
    Weekday,
    parse_duration,
)

__all__ = [
    "RenewalDecision",
    "in_window",
    "latest_acceptable",
    "renewal_jitter",
    "renewal_policy",
    "renewal_time",
]

#: Window openings looked at on either side of a moment: a week, plus a day for windows that
#: opened the evening before and cross midnight.
_SEARCH_DAYS = 8
_WEEKDAYS = (
    Weekday.MON,
    Weekday.TUE,
    Weekday.WED,
    Weekday.THU,
    Weekday.FRI,
    Weekday.SAT,
    Weekday.SUN,
)


@dataclass(frozen=True)
class RenewalDecision:
    """When to renew (tz-aware UTC) and why, as a sentence for people."""

    at: datetime
    reason: str


@dataclass(frozen=True)
class _Opening:
    """One occurrence of a maintenance window, as instants (UTC): ``[start, end)``."""

    start: datetime
    end: datetime
    label: str


def renewal_time(
    *,
    not_before: datetime,
    not_after: datetime,
    renew_before: RenewBefore | None = None,
    windows: Sequence[MaintenanceWindow] = (),
) -> RenewalDecision:
    """The moment to start renewing a certificate valid from ``not_before`` to ``not_after``.

    Raises ValueError when a time is naive or ``not_after`` is not later than ``not_before``.
    """
    not_before = _utc(not_before, "not_before")
    not_after = _utc(not_after, "not_after")
    lifetime = not_after - not_before
    if lifetime <= timedelta(0):
        raise ValueError(
            f"not_after ({not_after.isoformat()}) must be later than "
            f"not_before ({not_before.isoformat()})"
        )
    life = _span(lifetime)
    default = f"2/3 of the {life} lifetime (default renewBefore = 1/3)"
    if renew_before is None:
        before, reason = lifetime / 3, default
    elif renew_before.percentage is not None:
        p = renew_before.percentage
        before = renew_before.before(lifetime)
        reason = f"{100 - p}% of the {life} lifetime (renewBefore = {p}%)"
    else:
        assert renew_before.duration is not None
        wanted = parse_duration(renew_before.duration)
        if wanted >= lifetime or wanted <= timedelta(0):
            before = lifetime / 3
            reason = (
                f"2/3 of the {life} lifetime: renewBefore {renew_before.duration} is not "
                "shorter than the lifetime, so the default renewBefore = 1/3 applies"
                if wanted > timedelta(0)
                else f"2/3 of the {life} lifetime: renewBefore {renew_before.duration} is not "
                "positive, so the default renewBefore = 1/3 applies"
            )
        else:
            before = wanted
            reason = (
                f"{renew_before.duration} before expiry of the {life} lifetime "
                f"(renewBefore = {renew_before.duration})"
            )
    computed = not_after - before
    if not windows:
        return RenewalDecision(at=computed, reason=reason)
    return _fit_windows(computed, reason, not_before, not_after, windows)


def renewal_policy(not_before: datetime, not_after: datetime, tls: BlueprintTLS) -> datetime:
    """:func:`renewal_time` with the blueprint's ``tls.renewBefore`` and
    ``tls.maintenanceWindows``, shaped as ``bifrost.steps.tls.RenewalTime`` (the policy the
    composition root hands to the certificate steps)."""
    return renewal_time(
        not_before=not_before,
        not_after=not_after,
        renew_before=tls.renew_before,
        windows=tls.maintenance_windows,
    ).at


def latest_acceptable(*, not_before: datetime, not_after: datetime) -> datetime:
    """The latest moment a maintenance window may delay a renewal to: a tenth of the lifetime
    before expiry (see the module rules; the computed time itself is always acceptable)."""
    return not_after - (not_after - not_before) / 10


def in_window(moment: datetime, windows: Sequence[MaintenanceWindow]) -> bool:
    """Whether ``moment`` (tz-aware) lies inside one of ``windows`` (start inclusive, end
    exclusive)."""
    moment = _utc(moment, "moment")
    return any(o.start <= moment < o.end for o in _openings(windows, moment, back=1, ahead=0))


def renewal_jitter(key: str, *, max_seconds: float) -> timedelta:
    """A deterministic offset in ``[0, max_seconds)`` for the certificate ``key``.

    Hash-based (SHA-256 of the key), so it is the same in every process and after every restart,
    and roughly uniform over a fleet. Microsecond resolution; ``max_seconds == 0`` gives zero.
    """
    if max_seconds < 0:
        raise ValueError(f"max_seconds must not be negative, got {max_seconds}")
    span = int(max_seconds * 1_000_000)
    if span <= 0:
        return timedelta(0)
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    fraction = int.from_bytes(digest[:8], "big")
    return timedelta(microseconds=(fraction * span) >> 64)


# --- internals ---------------------------------------------------------------------------------


def _fit_windows(
    computed: datetime,
    reason: str,
    not_before: datetime,
    not_after: datetime,
    windows: Sequence[MaintenanceWindow],
) -> RenewalDecision:
    latest = max(latest_acceptable(not_before=not_before, not_after=not_after), computed)
    openings = list(_openings(windows, computed, back=_SEARCH_DAYS, ahead=_SEARCH_DAYS))

    later = [(max(o.start, computed), o) for o in openings if o.end > computed]
    if later:
        at, chosen = min(later, key=lambda pair: (pair[0], pair[1].start, pair[1].label))
        if at == computed:
            return RenewalDecision(
                at=computed, reason=f"{reason}; inside the maintenance window {chosen.label}"
            )
        if at <= latest:
            return RenewalDecision(
                at=at, reason=f"{reason}, moved to the maintenance window {chosen.label}"
            )

    earlier = [
        (max(o.start, not_before), o)
        for o in openings
        if o.start < computed and o.end > not_before and max(o.start, not_before) < computed
    ]
    if earlier:
        at, chosen = max(earlier, key=lambda pair: (pair[0], pair[1].end, pair[1].label))
        return RenewalDecision(
            at=at,
            reason=(
                f"{reason}, moved earlier to the maintenance window {chosen.label}: the next "
                f"window opens later than {_span(not_after - latest)} before expiry"
            ),
        )
    return RenewalDecision(
        at=computed,
        reason=f"{reason}; no maintenance window before expiry; renewing outside windows",
    )


def _openings(
    windows: Sequence[MaintenanceWindow], around: datetime, *, back: int, ahead: int
) -> Iterator[_Opening]:
    """Occurrences of ``windows`` whose local opening date lies within ``back`` days before and
    ``ahead`` days after ``around``'s local date (in each window's zone)."""
    for window in windows:
        zone = ZoneInfo(window.timezone)
        start_t, end_t = _clock(window.start), _clock(window.end)
        crosses_midnight = end_t <= start_t
        days = set(window.days)
        local_day = around.astimezone(zone).date()
        for offset in range(-back, ahead + 1):
            day = local_day + timedelta(days=offset)
            if _WEEKDAYS[day.weekday()] not in days:
                continue
            end_day = day + timedelta(days=1) if crosses_midnight else day
            opens = _instant(day, start_t, zone)
            closes = _instant(end_day, end_t, zone)
            if closes <= opens:  # a window swallowed by a DST jump: nothing to use that day
                continue
            weekday = _WEEKDAYS[day.weekday()].value
            label = f"{weekday} {window.start}-{window.end} {window.timezone}"
            yield _Opening(start=opens, end=closes, label=label)


def _instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time. ``fold=0``: an ambiguous (fall-back) time is its
    first occurrence; a time in a spring-forward gap maps past the gap (02:30 CET on the night
    clocks jump from 02:00 to 03:00 is 03:30 CEST)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")
    return value.astimezone(UTC)


def _span(delta: timedelta) -> str:
    """A duration for people: ``47-day``, ``1-hour``, ``90-minute``, or ``2d3h4m5s``."""
    seconds = delta.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}-{unit}"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    text = "".join(f"{n}{u}" for n, u in parts if n)
    return text or f"{seconds:g}s"
