"""Benchmark: bifrost-admin's read commands on a large store (prints figures; not a test).

Seeds 10,000 gateways, 100,000 operations (10 per gateway; the newest one of every tenth
gateway still active), 1,000,000 journal rows (100 per gateway), 20,000 certificates and 50,000
children straight into the store's tables (bulk inserts with SQLAlchemy Core: the seeding is
exempt from the "only bifrost/store imports sqlalchemy" rule), then times the commands end to
end, in-process, exactly as an operator runs them (open the store, check its schema, query,
render): ``gateways`` (table and JSON), ``show NS/NAME`` and ``history NS/NAME``. Target: each
under 1 s.

``gateways`` is timed twice: as built (through the store's public interface, which makes it
read every certificate record), and with the aggregate store query it uses when the store
offers one (``certificate_expiries``, see ``bifrost.admin.queries.SupportsCertificateExpiries``),
prototyped here in ``ProposedStore`` so the figure after that store change is known.

    python bench/bench_admin.py                              # SQLite file in a temp dir
    python bench/bench_admin.py --database-url postgresql+psycopg://…/db   # an empty database
    python bench/bench_admin.py --gateways 1000 --journal 100000         # smaller

The seeded database is kept when ``--keep`` is given (its URL is printed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, func, insert, select
from typer.testing import CliRunner

from bifrost.admin.queries import Expiry
from bifrost.cli.admin import AdminEnv, app
from bifrost.clock import ManualClock
from bifrost.store import SqlStore, migrate, open_store
from bifrost.store.sql.backend import Backend, connect, safe_url
from bifrost.store.sql.tables import certificates, children, gateways, journal, operations

T0 = datetime(2026, 6, 1, tzinfo=UTC)
CHUNK = 20_000
STEPS = ("render", "apply_children", "wait_ready", "publish_status")


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def seed(url: str, *, n_gateways: int, ops_per_gateway: int, journal_rows: int) -> dict[str, int]:
    """Bulk-insert the fleet; returns the row counts."""
    engine, _backend = connect(url)
    rows_per_op = max(2, journal_rows // (n_gateways * ops_per_gateway))
    counts = {"gateways": 0, "operations": 0, "journal": 0, "certificates": 0, "children": 0}

    def uid(g: int) -> str:
        return f"00000000-0000-4000-8000-{g:012d}"

    def gateway_rows() -> Iterator[dict[str, Any]]:
        for g in range(n_gateways):
            yield {
                "uid": uid(g), "namespace": f"team-{g % 100:03d}", "name": f"gw-{g:05d}",
                "lifecycle_state": "updating" if g % 10 == 0 else "programmed",
                "gateway_class": "public" if g % 3 else "internal", "generation": 1 + g % 7,
                "last_error": "listener https: certificate not issued" if g % 97 == 0 else None,
                "created_at": T0 - timedelta(days=90), "updated_at": T0 - timedelta(hours=1),
            }

    def operation_rows() -> Iterator[dict[str, Any]]:
        op_id = 0
        for g in range(n_gateways):
            for k in range(ops_per_gateway):
                op_id += 1
                active = g % 10 == 0 and k == ops_per_gateway - 1
                created = T0 - timedelta(days=ops_per_gateway - k)
                step = STEPS[op_id % len(STEPS)]
                context = {"hosts": [f"gw-{g}.example.com"], "generation": k}
                yield {
                    "id": op_id, "gateway_uid": uid(g), "namespace": f"team-{g % 100:03d}",
                    "name": f"gw-{g:05d}", "machine": "provision", "machine_version": 1,
                    "lane": "default", "state": "apply" if active else "programmed",
                    "status": "waiting" if active else "succeeded",
                    "context": json.dumps(context), "step": step if active else None,
                    "engine_step": step, "engine_since": T0 - timedelta(minutes=5),
                    "engine_failures": 0, "engine_finished": 1,
                    "attempt": 2 if active else 0,
                    "next_run_at": T0 + timedelta(seconds=30) if active else None,
                    "lease_owner": None, "lease_expires_at": None, "version": rows_per_op,
                    "last_sequence": rows_per_op, "last_error": None,
                    "created_at": created, "updated_at": created + timedelta(minutes=1),
                    "finished_at": None if active else created + timedelta(minutes=1),
                }

    def journal_rows_() -> Iterator[dict[str, Any]]:
        op_id = 0
        for g in range(n_gateways):
            for k in range(ops_per_gateway):
                op_id += 1
                created = T0 - timedelta(days=ops_per_gateway - k)
                for seq in range(1, rows_per_op + 1):
                    at = created + timedelta(seconds=seq)
                    step: str | None
                    message: str | None
                    if seq == 1:
                        outcome, step, attempt, message = "transition", None, 0, "created"
                    else:
                        step = STEPS[(seq // 2) % len(STEPS)]
                        attempt = 1
                        outcome = "started" if seq % 2 == 0 else "done"
                        message = None if outcome == "started" else f"{step} done"
                    yield {
                        "operation_id": op_id, "gateway_uid": uid(g), "sequence": seq,
                        "state": "apply", "step": step, "attempt": attempt, "outcome": outcome,
                        "message": message, "output": None, "actor": "bifrost-7d9f-abcde",
                        "started_at": at,
                        "finished_at": None if outcome == "started" else at,
                    }

    def certificate_rows() -> Iterator[dict[str, Any]]:
        for g in range(n_gateways):
            for listener in ("https", "https-admin"):
                not_after = T0 + timedelta(days=10 + (g * 7 + len(listener)) % 80)
                yield {
                    "gateway_uid": uid(g), "object_name": f"gw-{g:05d}-{listener}",
                    "listener": listener, "secret_name": f"gw-{g:05d}-{listener}-tls",
                    "serial": f"{g:032x}", "fingerprint_sha256": f"{g:064x}",
                    "dns_names": json.dumps([f"gw-{g}.example.com"]),
                    "not_before": not_after - timedelta(days=47),
                    "not_after": not_after, "renewal_at": not_after - timedelta(days=15),
                    "attached": True, "state": "attached", "updated_at": T0,
                }

    def child_rows() -> Iterator[dict[str, Any]]:
        kinds = ("Gateway", "Certificate", "LoadBalancer", "DNSRecord", "PodDisruptionBudget")
        for g in range(n_gateways):
            for i, kind in enumerate(kinds):
                yield {
                    "gateway_uid": uid(g), "child_id": kind.lower(), "route_key": "",
                    "api_version": "v1", "kind": kind, "namespace": f"team-{g % 100:03d}",
                    "name": f"gw-{g:05d}-{kind.lower()}", "uid": None, "applied_hash": "h",
                    "ready": (g + i) % 13 != 0, "delete_order": i, "updated_at": T0,
                }

    tables: list[tuple[Table, Callable[[], Iterator[dict[str, Any]]]]] = [
        (gateways, gateway_rows), (operations, operation_rows), (journal, journal_rows_),
        (certificates, certificate_rows), (children, child_rows),
    ]
    try:
        for table, rows in tables:
            with engine.connect() as conn:
                conn.execution_options(bifrost_write=True)
                with conn.begin():
                    for batch in _chunks(rows()):
                        conn.execute(insert(table), batch)
                    counts[table.name] = conn.execute(
                        select(func.count()).select_from(table)).scalar_one()
        # Fresh statistics, as a long-running database would have (autovacuum / ANALYZE).
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    finally:
        engine.dispose()
    return counts


class ProposedStore(SqlStore):
    """``SqlStore`` plus the aggregate query proposed for ``bifrost.store`` (prototype)."""

    def __init__(self, engine: Engine, backend: Backend) -> None:
        super().__init__(engine, backend)
        self._bench_engine = engine

    def certificate_expiries(self) -> dict[str, Expiry]:
        c = certificates.c
        stmt = (
            select(c.gateway_uid, func.min(c.not_after), func.min(c.renewal_at))
            .where(c.attached.is_(True))
            .group_by(c.gateway_uid)
        )
        with self._bench_engine.connect() as conn:
            return {uid: (na, ra) for uid, na, ra in conn.execute(stmt)}


def open_proposed(url: str) -> ProposedStore:
    store = open_store(url)  # checks the schema like the real thing
    store.close()
    engine, backend = connect(url)
    return ProposedStore(engine, backend)


def timed(
    url: str, args: list[str], *, repeat: int, proposed: bool = False
) -> tuple[list[float], str]:
    env = AdminEnv(clock=ManualClock(T0))
    if proposed:
        env = AdminEnv(clock=ManualClock(T0), opener=open_proposed)
    runner = CliRunner()
    times = []
    out = ""
    for _ in range(repeat):
        start = time.perf_counter()
        result = runner.invoke(app, [*args, "--database-url", url], obj=env)
        times.append(time.perf_counter() - start)
        if result.exit_code != 0:
            raise SystemExit(f"bifrost-admin {' '.join(args)} failed: {result.stderr}")
        out = result.stdout
    return times, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an EMPTY database (default: a temp SQLite file)")
    parser.add_argument("--gateways", type=int, default=10_000)
    parser.add_argument("--operations-per-gateway", type=int, default=10)
    parser.add_argument("--journal", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temp SQLite database")
    parser.add_argument("--seeded", action="store_true",
                        help="--database-url is already seeded by an earlier --keep run")
    opts = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bifrost-bench-admin-"))
    url = opts.database_url or f"sqlite:///{tmp / 'bifrost.db'}"
    print(f"store: {safe_url(url)}")
    if not opts.seeded:
        migrate.upgrade(url)
        start = time.perf_counter()
        counts = seed(url, n_gateways=opts.gateways, ops_per_gateway=opts.operations_per_gateway,
                      journal_rows=opts.journal)
        print(f"seeded in {time.perf_counter() - start:.1f}s: "
              + ", ".join(f"{v:,} {k}" for k, v in counts.items()))

    target = f"team-{(opts.gateways // 2) % 100:03d}/gw-{opts.gateways // 2:05d}"
    commands = [
        (["gateways"], False),
        (["gateways", "-o", "json"], False),
        (["gateways"], True),
        (["gateways", "-o", "json"], True),
        (["gateways", "--namespace", "team-042"], False),
        (["show", target], False),
        (["show", target, "-o", "json"], False),
        (["history", target], False),
        (["history", target, "-o", "json", "--limit", "1000"], False),
        (["schedule"], False),
    ]
    print(f"\n{'seconds per command':<62} {'min':>7} {'median':>7} {'max':>7}  output")
    medians: dict[tuple[str, ...], dict[bool, float]] = {}
    for args, proposed in commands:
        times, out = timed(url, args, repeat=opts.repeat, proposed=proposed)
        label = "bifrost-admin " + " ".join(args) + ("  [proposed store query]" if proposed
                                                     else "")
        median = statistics.median(times)
        medians.setdefault(tuple(args), {})[proposed] = median
        print(f"{label:<62} {min(times):7.3f} {median:7.3f} {max(times):7.3f}  "
              f"{len(out.splitlines()):,} lines")
    as_built = max(m[False] for m in medians.values())
    proposed_ = max(m.get(True, m[False]) for m in medians.values())
    for name, value in (("as built", as_built), ("with the proposed store query", proposed_)):
        verdict = "OK" if value < 1.0 else "SLOW"
        print(f"slowest median {name}: {value:.3f}s (target < 1 s per command): {verdict}")
    if opts.database_url is None and not opts.keep:
        shutil.rmtree(tmp)
    else:
        if opts.keep:
            print(f"kept: {url} (rerun with --database-url {url} --seeded)")
        if not any(tmp.iterdir()):
            tmp.rmdir()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
