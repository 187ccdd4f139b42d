"""The renewal scheduler against a real store: rebuilt from the store, missed renewals fire at
once, renewal_at is read as stored, deterministic jitter, a fleet due the same minute, retries,
and APScheduler really waking it (short real alarms, waited for with events, never slept on)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from bifrost.certificates import renewal
from bifrost.certificates.renewal import renewal_jitter
from bifrost.clock import Clock, ManualClock, SystemClock
from bifrost.controller.scheduler import RenewalScheduler, job_id
from bifrost.records import CertificateRecord
from bifrost.store import SqlStore, migrate, open_store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WAIT = 10.0  # generous upper bound for an event that normally arrives in milliseconds


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    migrate.upgrade(url)
    opened = open_store(url)
    yield opened
    opened.close()


def add_gateway(store: SqlStore, uid: str) -> None:
    store.upsert_gateway(uid=uid, namespace="apps", name=f"gw-{uid}", now=T0)


def add_cert(
    store: SqlStore,
    gateway_uid: str,
    object_name: str,
    renewal_at: datetime | None,
    *,
    attached: bool = True,
    not_after: datetime | None = None,
) -> CertificateRecord:
    base = renewal_at or T0
    return store.upsert_certificate(
        CertificateRecord(
            gateway_uid=gateway_uid,
            listener="https",
            object_name=object_name,
            secret_name=f"{object_name}-tls",
            serial="01",
            fingerprint_sha256="ab" * 32,
            dns_names=("www.example.com",),
            not_before=base - timedelta(days=31),
            not_after=not_after or base + timedelta(days=16),
            renewal_at=renewal_at,
            attached=attached,
            state="attached" if attached else "issued",
            updated_at=T0,
        )
    )


class Recorder:
    """An ``on_due`` that records calls, answers from ``answer`` and sets an event per key."""

    def __init__(
        self, clock: Clock, answer: Callable[[CertificateRecord], bool] | None = None
    ) -> None:
        self.clock = clock
        self.answer = answer or (lambda _record: True)
        self.calls: list[tuple[str, datetime, CertificateRecord]] = []
        self.lock = threading.Lock()
        self.events: dict[str, threading.Event] = {}

    def event(self, key: str) -> threading.Event:
        with self.lock:
            return self.events.setdefault(key, threading.Event())

    def __call__(self, record: CertificateRecord) -> bool:
        key = job_id(record.gateway_uid, record.object_name)
        with self.lock:
            self.calls.append((key, self.clock.now(), record))
        self.event(key).set()
        return self.answer(record)

    def keys(self) -> list[str]:
        with self.lock:
            return [k for k, _, _ in self.calls]


def make(
    store: Any, clock: Clock, on_due: Callable[[CertificateRecord], bool], **kw: Any
) -> RenewalScheduler:
    kw.setdefault("poll_interval", timedelta(hours=1))  # tests drive run_due unless they say
    return RenewalScheduler(store=store, clock=clock, on_due=on_due, **kw)


@pytest.fixture
def running() -> Iterator[list[RenewalScheduler]]:
    """Schedulers a test started; stopped even when the test fails."""
    started: list[RenewalScheduler] = []
    yield started
    for scheduler in started:
        scheduler.stop()


# --- the deterministic core (no APScheduler thread) --------------------------------------------


def test_rebuild_schedules_every_attached_certificate(sqlite_store: SqlStore) -> None:
    for uid in ("g1", "g2"):
        add_gateway(sqlite_store, uid)
    add_cert(sqlite_store, "g1", "web-a", T0 + timedelta(days=3))
    add_cert(sqlite_store, "g1", "web-b", T0 + timedelta(days=1))
    add_cert(sqlite_store, "g2", "api", T0 - timedelta(days=2))  # overdue
    add_cert(sqlite_store, "g2", "old", T0, attached=False)  # detached: not renewed
    add_cert(sqlite_store, "g2", "pending", None)  # no renewal time yet: skipped
    clock = ManualClock(T0)
    scheduler = make(sqlite_store, clock, Recorder(clock), jitter_seconds=60)

    assert scheduler.rebuild() == 3
    jobs = scheduler.jobs()
    assert [key for key, _ in jobs] == ["g2/api", "g1/web-b", "g1/web-a"]
    expected = {
        "g2/api": T0 - timedelta(days=2),
        "g1/web-b": T0 + timedelta(days=1),
        "g1/web-a": T0 + timedelta(days=3),
    }
    for key, due in jobs:
        assert due == expected[key] + renewal_jitter(key, max_seconds=60)

    # a second rebuild is the same schedule (nothing left over, nothing doubled)
    assert scheduler.rebuild() == 3
    assert scheduler.jobs() == jobs


def test_rebuild_and_run_due_on_every_backend(store: SqlStore) -> None:
    """The same schedule on SQLite and PostgreSQL (``store`` is parametrized per backend)."""
    add_gateway(store, "g1")
    add_cert(store, "g1", "a", T0 + timedelta(seconds=1, microseconds=5))
    add_cert(store, "g1", "b", T0 - timedelta(hours=1))
    clock = ManualClock(T0)
    on_due = Recorder(clock)
    scheduler = make(store, clock, on_due, jitter_seconds=0)
    assert scheduler.rebuild() == 2
    assert scheduler.jobs() == [
        ("g1/b", T0 - timedelta(hours=1)),
        ("g1/a", T0 + timedelta(seconds=1, microseconds=5)),
    ]
    assert scheduler.run_due() == 1
    clock.advance(timedelta(seconds=1, microseconds=5))
    assert scheduler.run_due() == 1
    assert on_due.keys() == ["g1/b", "g1/a"]


def test_renewal_at_is_read_from_the_store_not_recomputed(
    sqlite_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_recompute(**_kw: Any) -> None:
        raise AssertionError("the scheduler must not recompute renewal times")

    monkeypatch.setattr(renewal, "renewal_time", no_recompute)
    add_gateway(sqlite_store, "g1")
    # a renewal time no rule would compute: 5 minutes before a 47-day certificate expires
    odd = T0 + timedelta(minutes=7, seconds=13)
    stored = add_cert(sqlite_store, "g1", "web", odd, not_after=odd + timedelta(minutes=5))
    clock = ManualClock(T0)
    on_due = Recorder(clock)
    scheduler = make(sqlite_store, clock, on_due, jitter_seconds=0)

    scheduler.rebuild()
    assert scheduler.jobs() == [("g1/web", odd)]
    clock.set(odd - timedelta(microseconds=1))
    assert scheduler.run_due() == 0
    clock.set(odd)
    assert scheduler.run_due() == 1
    assert on_due.calls[0][2] == stored
    assert on_due.calls[0][2].renewal_at == odd


def test_jitter_is_deterministic_bounded_and_survives_a_restart(sqlite_store: SqlStore) -> None:
    add_gateway(sqlite_store, "g1")
    for i in range(50):
        add_cert(sqlite_store, "g1", f"cert-{i:02d}", T0)
    clock = ManualClock(T0)
    first = make(sqlite_store, clock, Recorder(clock), jitter_seconds=30)
    first.rebuild()
    restarted = make(sqlite_store, clock, Recorder(clock), jitter_seconds=30)
    restarted.rebuild()

    assert first.jobs() == restarted.jobs()
    offsets = [due - T0 for _, due in first.jobs()]
    assert all(timedelta(0) <= o < timedelta(seconds=30) for o in offsets)
    assert len(set(offsets)) == 50  # spread, not bunched
    # jitter 0: exactly renewal_at
    plain = make(sqlite_store, clock, Recorder(clock), jitter_seconds=0)
    plain.rebuild()
    assert {due for _, due in plain.jobs()} == {T0}


def test_fleet_due_the_same_minute_fires_each_once(sqlite_store: SqlStore) -> None:
    for g in range(100):
        add_gateway(sqlite_store, f"g{g:03d}")
        for c in range(10):
            add_cert(sqlite_store, f"g{g:03d}", f"cert-{c}", T0)
    keys = {f"g{g:03d}/cert-{c}" for g in range(100) for c in range(10)}
    clock = ManualClock(T0 - timedelta(minutes=5))
    # some come due in the second half of the minute while their gateway's lane is busy
    second_half = [k for k in sorted(keys) if renewal_jitter(k, max_seconds=60).seconds >= 30]
    busy = set(second_half[::7])
    refused: set[str] = set()

    def answer(record: CertificateRecord) -> bool:
        key = job_id(record.gateway_uid, record.object_name)
        if key in busy and key not in refused:
            refused.add(key)
            return False
        return True

    on_due = Recorder(clock, answer)
    scheduler = make(sqlite_store, clock, on_due, jitter_seconds=60)
    assert scheduler.rebuild() == 1000

    assert scheduler.run_due() == 0  # five minutes early: nothing
    clock.set(T0 + timedelta(seconds=30))
    half = scheduler.run_due()
    assert 300 < half < 700  # the jitter spreads the minute
    clock.set(T0 + timedelta(seconds=60))
    rest = scheduler.run_due()
    assert half + rest == 1000  # every certificate offered exactly once so far
    assert half == 1000 - len(second_half)
    assert Counter(on_due.keys()) == Counter(keys)
    # the refused ones (and only those) are offered again at the next poll, once
    assert scheduler.run_due() == len(busy)
    assert Counter(on_due.keys()) == Counter(keys) + Counter(busy)
    assert scheduler.run_due() == 0
    assert scheduler.jobs() == []  # accepted: their alarms are done


def test_refused_certificate_is_retried_every_poll_until_accepted(sqlite_store: SqlStore) -> None:
    add_gateway(sqlite_store, "g1")
    add_cert(sqlite_store, "g1", "web", T0)
    clock = ManualClock(T0)
    answers = iter([False, False, True])
    on_due = Recorder(clock, lambda _r: next(answers))
    scheduler = make(sqlite_store, clock, on_due, jitter_seconds=0)
    scheduler.rebuild()
    assert [scheduler.run_due() for _ in range(4)] == [1, 1, 1, 0]
    assert on_due.keys() == ["g1/web"] * 3


def test_on_due_raising_counts_as_not_now(sqlite_store: SqlStore) -> None:
    add_gateway(sqlite_store, "g1")
    add_cert(sqlite_store, "g1", "a", T0)
    add_cert(sqlite_store, "g1", "b", T0)
    clock = ManualClock(T0)
    calls: list[str] = []

    def flaky(record: CertificateRecord) -> bool:
        calls.append(record.object_name)
        if record.object_name == "a" and calls.count("a") == 1:
            raise RuntimeError("store hiccup")
        return True

    scheduler = make(sqlite_store, clock, flaky, jitter_seconds=0)
    assert scheduler.run_due() == 2  # b is not held up by a
    assert scheduler.run_due() == 1  # a again
    assert calls == ["a", "b", "a"]


def test_accepted_renewal_is_offered_again_only_after_refire_after_or_a_new_cert(
    sqlite_store: SqlStore,
) -> None:
    add_gateway(sqlite_store, "g1")
    add_cert(sqlite_store, "g1", "web", T0)
    clock = ManualClock(T0)
    on_due = Recorder(clock)
    scheduler = make(
        sqlite_store, clock, on_due, jitter_seconds=0, refire_after=timedelta(minutes=30)
    )
    assert scheduler.run_due() == 1
    clock.advance(timedelta(minutes=29))
    assert scheduler.run_due() == 0  # the rotation is under way
    clock.advance(timedelta(minutes=1))
    assert scheduler.run_due() == 1  # it did not record a new certificate: offer again

    # a rotation records a new certificate: the new renewal time is scheduled, the old one gone
    new = add_cert(sqlite_store, "g1", "web", T0 + timedelta(days=31))
    scheduler.schedule(new)
    assert scheduler.jobs() == [("g1/web", T0 + timedelta(days=31))]
    assert scheduler.run_due() == 0


def test_accepted_rows_do_not_starve_later_ones_beyond_the_batch(sqlite_store: SqlStore) -> None:
    add_gateway(sqlite_store, "g1")
    for i in range(5):
        add_cert(sqlite_store, "g1", f"early-{i}", T0 - timedelta(hours=2))
    clock = ManualClock(T0)
    on_due = Recorder(clock)
    scheduler = make(sqlite_store, clock, on_due, jitter_seconds=0, batch=5)
    assert scheduler.run_due() == 5
    # five rotations under way (their rows unchanged), three more certificates come due
    for i in range(3):
        add_cert(sqlite_store, "g1", f"late-{i}", T0 - timedelta(hours=1))
    assert scheduler.run_due() == 3
    assert sorted(on_due.keys()[5:]) == ["g1/late-0", "g1/late-1", "g1/late-2"]


def test_unschedule_and_schedule(sqlite_store: SqlStore) -> None:
    add_gateway(sqlite_store, "g1")
    a = add_cert(sqlite_store, "g1", "a", T0 + timedelta(days=1))
    b = add_cert(sqlite_store, "g1", "b", T0 + timedelta(days=2))
    clock = ManualClock(T0)
    scheduler = make(sqlite_store, clock, Recorder(clock), jitter_seconds=0)
    scheduler.schedule(a)
    scheduler.schedule(b)
    assert [k for k, _ in scheduler.jobs()] == ["g1/a", "g1/b"]
    scheduler.unschedule("g1", "a")
    assert scheduler.jobs() == [("g1/b", T0 + timedelta(days=2))]
    scheduler.unschedule("g1", "never-scheduled")  # no error
    # a record that is no longer attached unschedules itself
    detached = add_cert(sqlite_store, "g1", "b", T0 + timedelta(days=2), attached=False)
    scheduler.schedule(detached)
    assert scheduler.jobs() == []


# --- APScheduler waking it for real ------------------------------------------------------------


def test_apscheduler_alarm_wakes_the_renewal(sqlite_store: SqlStore, running: list[Any]) -> None:
    clock = SystemClock()
    add_gateway(sqlite_store, "g1")
    on_due = Recorder(clock)
    scheduler = make(sqlite_store, clock, on_due, jitter_seconds=0)
    running.append(scheduler)
    scheduler.start()
    due = clock.now() + timedelta(milliseconds=50)
    scheduler.schedule(add_cert(sqlite_store, "g1", "web", due))

    assert on_due.event("g1/web").wait(WAIT), "APScheduler did not wake the renewal"
    key, fired_at, record = on_due.calls[0]
    assert (key, record.renewal_at) == ("g1/web", due)
    assert fired_at >= due  # decided by the clock, not by the alarm alone


def test_renewal_missed_while_down_fires_at_start(
    sqlite_store: SqlStore, running: list[Any]
) -> None:
    clock = ManualClock(T0)  # no real time needs to pass
    add_gateway(sqlite_store, "g1")
    add_cert(sqlite_store, "g1", "missed", T0 - timedelta(days=2))
    add_cert(sqlite_store, "g1", "later", T0 + timedelta(days=5))
    on_due = Recorder(clock)
    scheduler = make(sqlite_store, clock, on_due, jitter_seconds=60)
    running.append(scheduler)
    scheduler.start()

    assert on_due.event("g1/missed").wait(WAIT), "the missed renewal did not fire at start"
    scheduler.stop()  # waits for the running wake-up: nothing else fired meanwhile
    assert on_due.keys() == ["g1/missed"]


def test_early_alarm_rearms_and_the_clock_decides(
    sqlite_store: SqlStore, running: list[Any]
) -> None:
    """The alarm rings on the wall clock, but the injected clock says it is not time yet: the
    scheduler re-arms instead of firing, and fires once the clock has moved."""
    clock = ManualClock(T0)
    add_gateway(sqlite_store, "g1")
    add_cert(sqlite_store, "g1", "web", T0 + timedelta(milliseconds=20))
    looked = threading.Event()

    class WatchedStore:
        def __getattr__(self, name: str) -> Any:
            return getattr(sqlite_store, name)

        def list_certificates(self, **kw: Any) -> list[CertificateRecord]:
            looked.set()
            return sqlite_store.list_certificates(**kw)

    on_due = Recorder(clock)
    scheduler = make(WatchedStore(), clock, on_due, jitter_seconds=0)
    running.append(scheduler)
    scheduler.start()
    assert looked.wait(WAIT), "the alarm did not ring"
    assert on_due.keys() == []  # the clock still says T0
    clock.advance(timedelta(seconds=1))
    assert on_due.event("g1/web").wait(WAIT), "the re-armed alarm did not fire"
    assert on_due.keys() == ["g1/web"]


def test_unscheduled_alarm_does_not_ring(sqlite_store: SqlStore, running: list[Any]) -> None:
    """The alarms ring on the wall clock (a few ms), but with the manual clock held at T0 they
    only re-arm; once the clock moves, the scheduled certificate fires and the unscheduled one,
    due earlier, does not (no poll runs: its interval is an hour)."""
    clock = ManualClock(T0)
    on_due = Recorder(clock)
    scheduler = make(sqlite_store, clock, on_due, jitter_seconds=0)
    running.append(scheduler)
    scheduler.start()
    add_gateway(sqlite_store, "g1")
    dropped = add_cert(sqlite_store, "g1", "dropped", T0 + timedelta(milliseconds=10))
    kept = add_cert(sqlite_store, "g1", "kept", T0 + timedelta(milliseconds=20))
    scheduler.schedule(dropped)
    scheduler.schedule(kept)
    scheduler.unschedule("g1", "dropped")
    assert scheduler.jobs() == [("g1/kept", T0 + timedelta(milliseconds=20))]

    clock.advance(timedelta(seconds=1))
    assert on_due.event("g1/kept").wait(WAIT)
    scheduler.stop()  # waits for any running alarm
    assert on_due.keys() == ["g1/kept"]


def test_poll_is_the_safety_net(sqlite_store: SqlStore, running: list[Any]) -> None:
    """A certificate recorded without a schedule() call (say the process crashed in between)
    is found by the periodic poll."""
    clock = SystemClock()
    on_due = Recorder(clock)
    scheduler = make(
        sqlite_store, clock, on_due, jitter_seconds=0, poll_interval=timedelta(milliseconds=50)
    )
    running.append(scheduler)
    scheduler.start()
    assert scheduler.jobs() == []
    add_gateway(sqlite_store, "g1")
    add_cert(sqlite_store, "g1", "unannounced", clock.now() - timedelta(minutes=1))
    assert on_due.event("g1/unannounced").wait(WAIT), "the poll did not pick it up"


def test_stop_and_start_again_rebuilds(sqlite_store: SqlStore, running: list[Any]) -> None:
    clock = ManualClock(T0)
    add_gateway(sqlite_store, "g1")
    add_cert(sqlite_store, "g1", "web", T0 + timedelta(days=1))
    scheduler = make(sqlite_store, clock, Recorder(clock), jitter_seconds=0)
    running.append(scheduler)
    scheduler.start()
    assert scheduler.running
    assert scheduler.jobs() == [("g1/web", T0 + timedelta(days=1))]
    scheduler.stop()
    assert not scheduler.running
    assert scheduler.jobs() == []
    add_cert(sqlite_store, "g1", "api", T0 + timedelta(days=2))
    scheduler.start()  # e.g. leadership regained
    assert [k for k, _ in scheduler.jobs()] == ["g1/web", "g1/api"]


# --- the system clock, frozen ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frozen_at", "offered"),
    [
        (T0 - timedelta(hours=2), []),
        (T0 - timedelta(hours=1), ["g1/overdue"]),
        (T0 + timedelta(seconds=1), ["g1/overdue", "g1/soon"]),
    ],
    ids=["nothing-due", "one-due", "both-due"],
)
def test_run_due_offers_what_is_due_at_the_system_clocks_now(
    sqlite_store: SqlStore, frozen_at: datetime, offered: list[str]
) -> None:
    add_gateway(sqlite_store, "g1")
    add_cert(sqlite_store, "g1", "overdue", T0 - timedelta(hours=1))
    add_cert(sqlite_store, "g1", "soon", T0 + timedelta(seconds=1))
    with freeze_time(frozen_at):
        clock = SystemClock()
        on_due = Recorder(clock)
        assert make(sqlite_store, clock, on_due, jitter_seconds=0).run_due() == len(offered)
    assert on_due.keys() == offered
    assert all(at == frozen_at for _, at, _ in on_due.calls)
