"""Housekeeping keeps the store bounded: a deleted Gateway is purged once its retention passed
(not before), every Gateway's journal is capped, and ``bifrost db vacuum`` runs the same pass
and gives the space back. Time is a manual clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from support.inprocess import sqlite_store
from support.waiting import wait_for
from typer.testing import CliRunner

from bifrost.cli.db import app as db_app
from bifrost.clock import ManualClock
from bifrost.controller.housekeeping import Housekeeper, HousekeepingPolicy
from bifrost.records import NewOperation
from bifrost.settings import Settings
from bifrost.store import SqlStore

RETENTION = timedelta(days=7)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with sqlite_store(tmp_path) as opened:
        yield opened


def _gateway(store: SqlStore, uid: str, clock: ManualClock, *, operations: int = 1) -> None:
    """A gateway with ``operations`` failed operations (two journal rows each)."""
    store.upsert_gateway(uid=uid, namespace="ns", name=uid, now=clock.now())
    for _ in range(operations):
        op = store.create_operation(
            NewOperation(gateway_uid=uid, namespace="ns", name=uid, machine="provision",
                         machine_version=2, state="s"),
            now=clock.now(), actor="t")
        store.fail_operation(op.id, now=clock.now(), message="x", actor="t")


def test_a_deleted_gateway_is_purged_after_its_retention_not_before(store: SqlStore) -> None:
    clock = ManualClock()
    keeper = Housekeeper(store, clock=clock,
                         policy=HousekeepingPolicy(retention=RETENTION, journal_cap=100))
    _gateway(store, "gone", clock)
    _gateway(store, "alive", clock)
    store.set_gateway_state("gone", lifecycle_state="deleted", now=clock.now(),
                            deleted_at=clock.now())

    clock.advance(RETENTION - timedelta(seconds=1))
    report = keeper.run_once()
    assert report.purged == ()
    assert store.get_gateway("gone").lifecycle_state == "deleted"
    assert len(store.journal(gateway_uid="gone")) == 2  # its history is still readable

    clock.advance(timedelta(seconds=2))
    report = keeper.run_once()
    assert [g.uid for g in report.purged] == ["gone"]
    assert [g.uid for g in store.list_gateways()] == ["alive"]
    assert store.journal(gateway_uid="gone") == []
    assert store.list_operations(gateway_uid="gone") == []
    # a live gateway is never purged, however old
    clock.advance(timedelta(days=3650))
    assert keeper.run_once().purged == ()
    assert [g.uid for g in store.list_gateways()] == ["alive"]


def test_every_journal_is_capped_newest_rows_kept(store: SqlStore) -> None:
    clock = ManualClock()
    _gateway(store, "busy", clock, operations=15)  # 30 rows
    _gateway(store, "quiet", clock, operations=2)  # 4 rows
    newest = [r.id for r in store.journal(gateway_uid="busy", limit=10, newest_first=True)]
    keeper = Housekeeper(store, clock=clock,
                         policy=HousekeepingPolicy(retention=RETENTION, journal_cap=10))
    report = keeper.run_once()
    assert (report.journal_rows_pruned, report.gateways_pruned) == (20, 1)
    assert sorted(r.id for r in store.journal(gateway_uid="busy")) == sorted(newest)
    assert len(store.journal(gateway_uid="quiet")) == 4
    # more rows later: capped again on the next pass; nothing to do when under the cap
    _gateway(store, "busy", clock, operations=3)
    assert keeper.run_once().journal_rows_pruned == 6
    assert len(store.journal(gateway_uid="busy")) == 10
    assert keeper.run_once().journal_rows_pruned == 0


def test_many_deleted_gateways_are_purged_in_batches(store: SqlStore) -> None:
    clock = ManualClock()
    for i in range(450):  # more than two purge batches
        uid = f"g{i:03d}"
        store.upsert_gateway(uid=uid, namespace="ns", name=uid, now=clock.now())
        store.set_gateway_state(uid, lifecycle_state="deleted", now=clock.now(),
                                deleted_at=clock.now())
    clock.advance(RETENTION + timedelta(hours=1))
    report = Housekeeper(store, clock=clock, policy=HousekeepingPolicy()).run_once()
    assert len(report.purged) == 450
    assert store.list_gateways() == []


def test_the_loop_runs_passes_until_the_term_ends(store: SqlStore) -> None:
    clock = ManualClock()
    _gateway(store, "gone", clock)
    store.set_gateway_state("gone", lifecycle_state="deleted", now=clock.now(),
                            deleted_at=clock.now())
    clock.advance(RETENTION * 2)
    keeper = Housekeeper(store, clock=clock, policy=HousekeepingPolicy(interval_seconds=0.05))
    term = threading.Event()
    thread = threading.Thread(target=keeper.loop, args=(term,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: not store.list_gateways(), timeout=5, what="the loop's purge")
    finally:
        term.set()
        thread.join(5)
    assert not thread.is_alive()


def test_policy_from_settings() -> None:
    settings = Settings(deleted_gateway_retention="P1D", journal_cap_per_gateway=50,
                        housekeeping_interval_seconds=30)  # type: ignore[arg-type]
    assert HousekeepingPolicy.from_settings(settings) == HousekeepingPolicy(
        retention=timedelta(days=1), journal_cap=50, interval_seconds=30.0)
    assert Settings(deleted_gateway_retention="3600").deleted_gateway_retention == timedelta(  # type: ignore[arg-type]
        hours=1)


def test_db_vacuum_purges_caps_and_vacuums(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    url = f"sqlite:///{(tmp_path / 'bifrost.db').as_posix()}"
    with sqlite_store(tmp_path) as store:
        long_ago = ManualClock(datetime.now(UTC) - timedelta(days=30))
        _gateway(store, "old", long_ago, operations=40)  # 80 journal rows
        store.set_gateway_state("old", lifecycle_state="deleted", now=long_ago.now(),
                                deleted_at=long_ago.now())
        recent = ManualClock(datetime.now(UTC) - timedelta(days=1))
        _gateway(store, "recent", recent)
        store.set_gateway_state("recent", lifecycle_state="deleted", now=recent.now(),
                                deleted_at=recent.now())
        _gateway(store, "busy", recent, operations=20)  # 40 rows
    monkeypatch.setenv("BIFROST_JOURNAL_CAP_PER_GATEWAY", "25")
    result = CliRunner().invoke(db_app, ["vacuum", "--database-url", url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("purged ns/old (uid old, deleted ")
    assert lines[1] == ("purged 1 deleted gateway(s); pruned 15 journal row(s) of 1 gateway(s) "
                        "(retention 7 days, 0:00:00, journal cap 25)")
    assert lines[2].startswith("VACUUM on sqlite:///") and " MiB -> " in lines[2]
    with sqlite_store(tmp_path) as store:
        assert sorted(g.uid for g in store.list_gateways()) == ["busy", "recent"]
        assert len(store.journal(gateway_uid="busy")) == 25
    # with a shorter retention the recent one goes too
    monkeypatch.setenv("BIFROST_DELETED_GATEWAY_RETENTION", "3600")
    result = CliRunner().invoke(db_app, ["vacuum", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("purged ns/recent ")


def test_invalid_settings_fall_back_to_the_defaults(store: SqlStore,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIFROST_DELETED_GATEWAY_RETENTION", "soon")
    assert Housekeeper(store, clock=ManualClock()).policy == HousekeepingPolicy()
    monkeypatch.setenv("BIFROST_DELETED_GATEWAY_RETENTION", "P2D")
    monkeypatch.setenv("BIFROST_HOUSEKEEPING_INTERVAL_SECONDS", "60")
    assert Housekeeper(store, clock=ManualClock()).policy == HousekeepingPolicy(
        retention=timedelta(days=2), interval_seconds=60.0)


def test_the_store_stays_flat_over_a_simulated_fortnight(store: SqlStore) -> None:
    """Every day 6 Gateways are created (4 operations, 8 journal rows each) and yesterday's 6
    are deleted; housekeeping runs every simulated 6 hours. Once the retention is reached,
    the number of gateways and journal rows stops growing."""
    clock = ManualClock()
    keeper = Housekeeper(store, clock=clock,
                         policy=HousekeepingPolicy(retention=RETENTION, journal_cap=5))
    totals: list[tuple[int, int]] = []
    for day in range(14):
        for i in range(6):
            _gateway(store, f"d{day:02d}-{i}", clock, operations=4)
        if day:
            for i in range(6):
                store.set_gateway_state(f"d{day - 1:02d}-{i}", lifecycle_state="deleted",
                                        now=clock.now(), deleted_at=clock.now())
        for _ in range(4):
            clock.advance(timedelta(hours=6))
            keeper.run_once()
        gateways = store.list_gateways()
        rows = sum(len(store.journal(gateway_uid=g.uid)) for g in gateways)
        totals.append((len(gateways), rows))
    # 6 live + 7 days of deleted ones kept, 5 rows each, from the retention on
    assert set(totals[8:]) == {(48, 240)}
    assert max(totals) == (48, 240)
