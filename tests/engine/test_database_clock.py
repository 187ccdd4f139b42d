"""DatabaseClock: the runners' ``now`` follows the database server's clock (measured at most
every ``refresh``, local monotonic time added in between), so replicas with skewed clocks
judge operation leases alike; and the controller's operation lease is shorter than its Lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bifrost.clock import ManualClock
from bifrost.controller.manager import ControllerOptions
from bifrost.engine.database_clock import DatabaseClock
from bifrost.store import SqlStore
from bifrost.store.errors import StoreUnavailable

LOCAL = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class _Database:
    """A database server whose clock runs ``skew`` ahead of the local one."""

    def __init__(self, local: ManualClock, skew: timedelta) -> None:
        self.local = local
        self.skew = skew
        self.asked = 0
        self.down = False

    def time(self) -> datetime:
        self.asked += 1
        if self.down:
            raise StoreUnavailable("database is down")
        return self.local.now() + self.skew


def test_now_is_the_database_time_measured_once_per_refresh() -> None:
    local = ManualClock(LOCAL)
    ticks = [0.0]
    db = _Database(local, timedelta(seconds=7))
    clock = DatabaseClock(db.time, local=local, refresh=timedelta(seconds=30),
                          monotonic=lambda: ticks[0])
    assert clock.now() == LOCAL + timedelta(seconds=7)
    local.advance(10)
    ticks[0] += 10
    assert clock.now() == LOCAL + timedelta(seconds=17)
    assert db.asked == 1  # no round trip per reading
    db.skew = timedelta(seconds=-3)  # the local clock was stepped meanwhile
    local.advance(25)
    ticks[0] += 25
    assert clock.now() == LOCAL + timedelta(seconds=32)  # re-measured after 30 s
    assert db.asked == 2 and clock.offset == timedelta(seconds=-3)


def test_an_unreachable_database_keeps_the_last_offset() -> None:
    local = ManualClock(LOCAL)
    ticks = [0.0]
    db = _Database(local, timedelta(seconds=4))
    clock = DatabaseClock(db.time, local=local, refresh=timedelta(seconds=1),
                          monotonic=lambda: ticks[0])
    clock.now()
    db.down = True
    ticks[0] += 5
    assert clock.now() == LOCAL + timedelta(seconds=4)
    never = DatabaseClock(db.time, local=local, monotonic=lambda: ticks[0])
    assert never.now() == LOCAL  # never measured: the local clock


def test_the_store_tells_its_time(store: SqlStore) -> None:
    before = datetime.now(UTC)
    told = store.database_time()
    after = datetime.now(UTC)
    assert told.tzinfo is not None
    # the same host's clock (SQLite, or the test's local PostgreSQL), at millisecond precision
    assert before - timedelta(seconds=1) <= told <= after + timedelta(seconds=1)


def test_the_operation_lease_is_shorter_than_the_leader_lease() -> None:
    assert ControllerOptions().operation_lease == timedelta(seconds=10)
    assert ControllerOptions(lease_duration=3).operation_lease == timedelta(seconds=2)
    assert ControllerOptions(runner_lease=timedelta(seconds=5)).operation_lease == timedelta(
        seconds=5)
    with pytest.raises(ValueError, match="shorter than the leader Lease"):
        ControllerOptions(runner_lease=timedelta(seconds=30))
    with pytest.raises(ValueError, match="shorter than the leader Lease"):
        ControllerOptions(lease_duration=5, runner_lease=timedelta(seconds=5))
