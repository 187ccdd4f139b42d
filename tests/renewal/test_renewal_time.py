"""The renewal time as a pure decision: renewBefore (default, percentage, duration), maintenance
windows (midnight crossing, DST, the safety margin), the jitter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bifrost.api.blueprint import BlueprintTLS, MaintenanceWindow, RenewBefore
from bifrost.certificates.renewal import (
    RenewalDecision,
    in_window,
    latest_acceptable,
    renewal_jitter,
    renewal_policy,
    renewal_time,
)

NB = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def window(days: str, start: str, end: str, tz: str = "UTC") -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(
        {"days": days.split(","), "start": start, "end": end, "timezone": tz}
    )


def decide(
    not_before: datetime,
    lifetime: timedelta,
    renew_before: RenewBefore | None = None,
    windows: tuple[MaintenanceWindow, ...] = (),
) -> RenewalDecision:
    return renewal_time(
        not_before=not_before,
        not_after=not_before + lifetime,
        renew_before=renew_before,
        windows=windows,
    )


# --- renewBefore --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lifetime", "renew_before", "renews_after", "reason"),
    [
        pytest.param(
            90 * DAY,
            None,
            60 * DAY,
            "2/3 of the 90-day lifetime (default renewBefore = 1/3)",
            id="default-two-thirds",
        ),
        pytest.param(
            47 * DAY,
            None,
            timedelta(days=31, hours=8),  # day 31.33
            "2/3 of the 47-day lifetime (default renewBefore = 1/3)",
            id="47-day-certificate",
        ),
        pytest.param(
            timedelta(hours=1),
            None,
            timedelta(minutes=40),
            "2/3 of the 1-hour lifetime (default renewBefore = 1/3)",
            id="1-hour-certificate",
        ),
        pytest.param(
            100 * DAY,
            RenewBefore(percentage=25),
            75 * DAY,
            "75% of the 100-day lifetime (renewBefore = 25%)",
            id="percentage",
        ),
        pytest.param(
            47 * DAY,
            RenewBefore(percentage=50),
            timedelta(days=23, hours=12),
            "50% of the 47-day lifetime (renewBefore = 50%)",
            id="percentage-47-day",
        ),
        pytest.param(
            90 * DAY,
            RenewBefore(duration="240h"),
            80 * DAY,
            "240h before expiry of the 90-day lifetime (renewBefore = 240h)",
            id="duration",
        ),
        pytest.param(
            timedelta(hours=1),
            RenewBefore(duration="15m"),
            timedelta(minutes=45),
            "15m before expiry of the 1-hour lifetime (renewBefore = 15m)",
            id="duration-minutes",
        ),
        pytest.param(
            90 * DAY,
            RenewBefore(duration="2160h"),  # == the lifetime
            60 * DAY,
            "2/3 of the 90-day lifetime: renewBefore 2160h is not shorter than the lifetime, "
            "so the default renewBefore = 1/3 applies",
            id="duration-equal-to-lifetime-falls-back",
        ),
        pytest.param(
            47 * DAY,
            RenewBefore(duration="2400h"),  # 100 days
            timedelta(days=31, hours=8),
            "2/3 of the 47-day lifetime: renewBefore 2400h is not shorter than the lifetime, "
            "so the default renewBefore = 1/3 applies",
            id="duration-longer-than-lifetime-falls-back",
        ),
        pytest.param(
            90 * DAY,
            RenewBefore(duration="0s"),
            60 * DAY,
            "2/3 of the 90-day lifetime: renewBefore 0s is not positive, "
            "so the default renewBefore = 1/3 applies",
            id="zero-duration-falls-back",
        ),
    ],
)
def test_renew_before(
    lifetime: timedelta, renew_before: RenewBefore | None, renews_after: timedelta, reason: str
) -> None:
    decision = decide(NB, lifetime, renew_before)
    assert decision == RenewalDecision(at=NB + renews_after, reason=reason)
    assert decision.at.tzinfo is UTC


def test_result_is_utc_whatever_the_input_zone() -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    nb = datetime(2026, 3, 2, 1, 0, tzinfo=berlin)  # 00:00 UTC
    # (aware arithmetic on a zoned datetime is wall-clock arithmetic, so give notAfter in UTC)
    decision = renewal_time(not_before=nb, not_after=NB + 90 * DAY)
    assert decision.at == NB + 60 * DAY
    assert decision.at.tzinfo is UTC


@pytest.mark.parametrize("lifetime", [timedelta(0), -DAY], ids=["equal", "reversed"])
def test_not_after_must_be_later_than_not_before(lifetime: timedelta) -> None:
    with pytest.raises(ValueError, match=r"not_after .* must be later than not_before"):
        renewal_time(not_before=NB, not_after=NB + lifetime)


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValueError, match="not_before must be timezone-aware"):
        renewal_time(not_before=datetime(2026, 3, 2), not_after=NB + DAY)
    with pytest.raises(ValueError, match="moment must be timezone-aware"):
        in_window(datetime(2026, 3, 2), [window("Mon", "00:00", "01:00")])


# --- maintenance windows ------------------------------------------------------------------------


def test_moves_to_the_next_window_in_its_time_zone() -> None:
    # 47 days from Mon 2 March: computed Thu 2 April 08:00 UTC; next Sat 02:00 Berlin (CEST,
    # UTC+2) is Sat 4 April 00:00 UTC.
    sat = window("Sat", "02:00", "04:00", "Europe/Berlin")
    decision = decide(NB, 47 * DAY, windows=(sat,))
    assert decision.at == utc(2026, 4, 4, 0, 0)
    assert decision.reason == (
        "2/3 of the 47-day lifetime (default renewBefore = 1/3), "
        "moved to the maintenance window Sat 02:00-04:00 Europe/Berlin"
    )


def test_computed_time_inside_a_window_is_kept() -> None:
    thu = window("Thu", "06:00", "12:00")
    decision = decide(NB, 47 * DAY, windows=(thu,))
    assert decision.at == utc(2026, 4, 2, 8, 0)
    assert decision.reason.endswith("; inside the maintenance window Thu 06:00-12:00 UTC")


def test_earliest_of_several_windows_wins() -> None:
    windows = (window("Sat,Sun", "01:00", "03:00"), window("Fri", "20:00", "21:00"))
    decision = decide(NB, 47 * DAY, windows=windows)
    assert decision.at == utc(2026, 4, 3, 20, 0)  # Friday evening before the weekend
    assert "Fri 20:00-21:00 UTC" in decision.reason


@pytest.mark.parametrize(
    ("computed", "expected", "label"),
    [
        # Saturday 01:00 is inside the window that opened on Friday 22:00
        (utc(2026, 3, 7, 1, 0), utc(2026, 3, 7, 1, 0), "inside the maintenance window Fri"),
        # Saturday 03:00 is after it closed: the next one opens Friday 13 March, 22:00
        (utc(2026, 3, 7, 3, 0), utc(2026, 3, 13, 22, 0), "moved to the maintenance window Fri"),
        # Friday 21:59 waits a minute
        (utc(2026, 3, 6, 21, 59), utc(2026, 3, 6, 22, 0), "moved to the maintenance window Fri"),
    ],
    ids=["inside-after-midnight", "after-close", "just-before-open"],
)
def test_window_crossing_midnight(computed: datetime, expected: datetime, label: str) -> None:
    fri_night = window("Fri", "22:00", "02:00")
    nb = computed - 60 * DAY  # 90-day certificate: renews at nb + 60 days == computed
    decision = decide(nb, 90 * DAY, windows=(fri_night,))
    assert decision.at == expected
    assert label in decision.reason
    assert "Fri 22:00-02:00 UTC" in decision.reason


def test_non_utc_zone_across_dst() -> None:
    # Mon 09:00 New York is 14:00 UTC in winter (EST) and 13:00 UTC after 8 March 2026 (EDT).
    mon = window("Mon", "09:00", "10:00", "America/New_York")
    winter = decide(utc(2026, 2, 9, 12, 0), 30 * DAY, windows=(mon,))  # computed Sun 1 Mar
    summer = decide(utc(2026, 2, 23, 12, 0), 30 * DAY, windows=(mon,))  # computed Sun 15 Mar
    assert winter.at == utc(2026, 3, 2, 14, 0)
    assert summer.at == utc(2026, 3, 16, 13, 0)
    assert "Mon 09:00-10:00 America/New_York" in summer.reason


def test_window_opening_in_the_spring_forward_gap() -> None:
    # Berlin, Sun 29 March 2026: clocks jump from 02:00 CET to 03:00 CEST. A 02:00-04:00 window
    # opens at the first real instant after the gap (03:00 CEST = 01:00 UTC) and lasts one hour.
    sun = window("Sun", "02:00", "04:00", "Europe/Berlin")
    decision = decide(utc(2026, 3, 22, 12, 0), 9 * DAY, windows=(sun,))  # computed Sat 28, 12:00
    assert decision.at == utc(2026, 3, 29, 1, 0)
    assert in_window(utc(2026, 3, 29, 1, 59), [sun])
    assert not in_window(utc(2026, 3, 29, 2, 0), [sun])
    # a week earlier (CET) the same window is 01:00-03:00 UTC, a week later (CEST) 00:00-02:00
    assert in_window(utc(2026, 3, 22, 2, 30), [sun])
    assert in_window(utc(2026, 4, 5, 0, 0), [sun])
    assert not in_window(utc(2026, 4, 5, 2, 0), [sun])


def test_window_in_the_fall_back_hour() -> None:
    # Berlin, Sun 25 Oct 2026: 03:00 CEST becomes 02:00 CET; 02:30 happens twice. The window
    # opens at the first 02:30 (00:30 UTC) and closes at 03:30 CET (02:30 UTC): two real hours.
    sun = window("Sun", "02:30", "03:30", "Europe/Berlin")
    assert not in_window(utc(2026, 10, 25, 0, 29), [sun])
    assert in_window(utc(2026, 10, 25, 0, 30), [sun])
    assert in_window(utc(2026, 10, 25, 1, 45), [sun])  # 02:45 CET, the second pass
    assert not in_window(utc(2026, 10, 25, 2, 30), [sun])
    # the week before (CEST) it is one hour, 00:30-01:30 UTC
    assert in_window(utc(2026, 10, 18, 1, 0), [sun])
    assert not in_window(utc(2026, 10, 18, 1, 45), [sun])


def test_window_later_than_the_safety_margin_moves_earlier() -> None:
    # 10-day certificate from Mon 2 March: computed Sun 8 March 16:00; latest acceptable is a
    # tenth of the lifetime (1 day) before expiry, Wed 11 March. The next Thursday window (12
    # March) is too late, so the renewal moves back to Thu 5 March 02:00.
    thu = window("Thu", "02:00", "04:00")
    decision = decide(NB, 10 * DAY, windows=(thu,))
    assert latest_acceptable(not_before=NB, not_after=NB + 10 * DAY) == utc(2026, 3, 11, 0, 0)
    assert decision.at == utc(2026, 3, 5, 2, 0)
    assert decision.reason == (
        "2/3 of the 10-day lifetime (default renewBefore = 1/3), moved earlier to the "
        "maintenance window Thu 02:00-04:00 UTC: the next window opens later than 1-day "
        "before expiry"
    )


def test_earlier_window_already_open_at_not_before_renews_at_not_before() -> None:
    # 3-day certificate issued Mon 01:00 inside a Mon 00:00-06:00 window; the next Monday is
    # past expiry: renew as soon as the certificate is valid.
    mon = window("Mon", "00:00", "06:00")
    nb = utc(2026, 3, 2, 1, 0)
    decision = decide(nb, 3 * DAY, windows=(mon,))
    assert decision.at == nb
    assert "moved earlier to the maintenance window Mon 00:00-06:00 UTC" in decision.reason


def test_no_window_before_expiry_renews_outside_windows() -> None:
    # a 1-hour certificate on a Wednesday with a Sunday-only window
    sun = window("Sun", "02:00", "03:00")
    nb = utc(2026, 3, 4, 10, 0)
    decision = decide(nb, timedelta(hours=1), windows=(sun,))
    assert decision.at == utc(2026, 3, 4, 10, 40)
    assert decision.reason == (
        "2/3 of the 1-hour lifetime (default renewBefore = 1/3); "
        "no maintenance window before expiry; renewing outside windows"
    )


def test_late_computed_time_inside_a_window_is_kept() -> None:
    # renewBefore 5%: the computed time is already later than the 10% margin; a window may not
    # delay it further, but a computed time inside a window stays where it is.
    nb = utc(2026, 1, 1, 0, 0)
    lifetime = 100 * DAY  # computed: nb + 95 days = Mon 6 April 00:00
    inside = decide(nb, lifetime, RenewBefore(percentage=5), (window("Mon", "00:00", "01:00"),))
    assert inside.at == utc(2026, 4, 6, 0, 0)
    assert "inside the maintenance window Mon" in inside.reason
    # outside a window it moves earlier, to the last window before it
    earlier = decide(nb, lifetime, RenewBefore(percentage=5), (window("Sun", "10:00", "11:00"),))
    assert earlier.at == utc(2026, 4, 5, 10, 0)
    assert "moved earlier" in earlier.reason


def test_in_window_bounds() -> None:
    mon = window("Mon", "09:00", "10:00")
    assert not in_window(utc(2026, 3, 2, 8, 59), [mon])
    assert in_window(utc(2026, 3, 2, 9, 0), [mon])  # start inclusive
    assert not in_window(utc(2026, 3, 2, 10, 0), [mon])  # end exclusive
    assert not in_window(utc(2026, 3, 3, 9, 30), [mon])  # Tuesday
    assert not in_window(utc(2026, 3, 2, 9, 30), [])


def test_renewal_policy_reads_the_blueprint_tls() -> None:
    tls = BlueprintTLS.model_validate(
        {
            "certificateTemplate": "kind: Certificate",
            "renewBefore": {"percentage": 50},
            "maintenanceWindows": [{"days": ["Sat"], "start": "02:00", "end": "04:00"}],
        }
    )
    # 47 days from Mon 2 March at 50%: Wed 25 March 12:00, moved to Sat 28 March 02:00 UTC
    assert renewal_policy(NB, NB + 47 * DAY, tls) == utc(2026, 3, 28, 2, 0)
    plain = BlueprintTLS.model_validate({"certificateTemplate": "kind: Certificate"})
    assert renewal_policy(NB, NB + 47 * DAY, plain) == NB + timedelta(days=31, hours=8)


# --- jitter -------------------------------------------------------------------------------------


def test_jitter_is_deterministic_and_bounded() -> None:
    keys = [f"uid-{i}/cert-{i}" for i in range(1000)]
    first = [renewal_jitter(k, max_seconds=60) for k in keys]
    again = [renewal_jitter(k, max_seconds=60) for k in keys]
    assert first == again
    assert all(timedelta(0) <= j < timedelta(seconds=60) for j in first)
    # spread over the minute, not bunched
    buckets = {int(j.total_seconds()) for j in first}
    assert len(buckets) == 60
    assert renewal_jitter("uid-1/cert-1", max_seconds=60) == renewal_jitter(
        "uid-1/cert-1", max_seconds=60.0
    )


def test_jitter_edge_cases() -> None:
    assert renewal_jitter("a/b", max_seconds=0) == timedelta(0)
    assert renewal_jitter("a/b", max_seconds=0.0000001) == timedelta(0)
    with pytest.raises(ValueError, match="must not be negative"):
        renewal_jitter("a/b", max_seconds=-1)
