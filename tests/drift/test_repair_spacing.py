"""Back-to-back drift repairs of one Gateway are spaced by a growing delay (a controller
fighting bifrost over a field cannot make it write in a tight loop); a quiet period resets it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bifrost.controller.drift import REPAIR_QUIET, REPAIR_SPACING_CAP, DriftCheck

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_spacing_doubles_per_repair_and_resets_after_a_quiet_period() -> None:
    check = DriftCheck(children=None)  # type: ignore[arg-type]  # spacing reads no children
    assert check.may_repair("u", T0) is None
    now = T0
    waits = []
    for _ in range(5):
        check.repairing("u", now)
        wait = check.may_repair("u", now)
        assert wait is not None
        waits.append(wait.total_seconds())
        now += wait
        assert check.may_repair("u", now) is None
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0]
    for _ in range(20):
        check.repairing("u", now)
        now += check.may_repair("u", now) or timedelta(0)
    assert check.spacing("u", now) == REPAIR_SPACING_CAP
    later = now + REPAIR_SPACING_CAP + REPAIR_QUIET
    assert check.may_repair("u", later) is None
    check.repairing("u", later)
    assert check.may_repair("u", later) == timedelta(seconds=0.5)
    assert check.may_repair("other", later) is None
