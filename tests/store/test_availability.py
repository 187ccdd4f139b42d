"""Store contract: opening a store — schema checks and "database unavailable" errors."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bifrost.records import NewOperation
from bifrost.store import SchemaMismatch, SqlStore, StoreUnavailable, migrate, open_store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_open_store_refuses_an_unmigrated_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'x.db'}"
    with pytest.raises(SchemaMismatch, match=r"revision none.*needs 0005.*bifrost db upgrade"):
        open_store(url)
    assert (tmp_path / "nested" / "dir").is_dir()  # parent directories are created


@pytest.mark.postgres
def test_open_store_refuses_an_unmigrated_postgres_database(fresh_postgres_url: str) -> None:
    with pytest.raises(SchemaMismatch, match="bifrost db upgrade"):
        open_store(fresh_postgres_url)
    migrate.upgrade(fresh_postgres_url)
    open_store(fresh_postgres_url).close()


def test_unreachable_postgres_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable, match="unavailable"):
        open_store("postgresql+psycopg://bifrost:secret@127.0.0.1:1/bifrost")


def test_password_is_not_shown_in_errors() -> None:
    with pytest.raises(StoreUnavailable) as info:
        open_store("postgresql://bifrost:s3cr3t@127.0.0.1:1/bifrost")
    assert "s3cr3t" not in str(info.value)


def test_locked_sqlite_database_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    migrate.upgrade(f"sqlite:///{path}")
    store = open_store(f"sqlite:///{path}?timeout=0.2")
    op = store.create_operation(
        NewOperation(
            gateway_uid="u", namespace="ns", name="gw", machine="m", machine_version=1, state="s"
        ),
        now=T0,
        actor="c",
    )
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="locked"):
            store.claim_due(owner="w", now=T0, lease_for=timedelta(seconds=30))
        # WAL: readers are not blocked by the writer
        assert store.get_operation(op.id).lease_owner is None
        holder.execute("ROLLBACK")
        [claimed] = store.claim_due(owner="w", now=T0, lease_for=timedelta(seconds=30))
        assert claimed.id == op.id
    finally:
        holder.close()
        store.close()


def test_sqlite_store_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    migrate.upgrade(f"sqlite:///{path}")
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()
    from bifrost.store.sql import connect

    engine, _ = connect(f"sqlite:///{path}")
    try:
        with engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        engine.dispose()


def test_in_memory_sqlite_is_refused() -> None:
    from bifrost.store.errors import StoreError

    with pytest.raises(StoreError, match="file path"):
        open_store("sqlite://")


@pytest.mark.parametrize("round_", [1, 2])
def test_each_test_starts_with_an_empty_store(store: SqlStore, round_: int) -> None:
    """The fixture's reset between tests is complete (the second round runs after the first
    left data behind): no rows, ids restarted."""
    assert store.list_operations() == []
    assert store.list_gateways() == []
    assert store.journal() == []
    op = store.create_operation(
        NewOperation(
            gateway_uid="u", namespace="ns", name="gw", machine="m", machine_version=1, state="s"
        ),
        now=T0,
        actor="c",
    )
    assert op.id == 1
    assert store.journal()[0].id == 1


def test_status_predicates_in_sql_match_the_record_enums() -> None:
    """The partial indexes and claim_due use literal SQL status lists; keep them in step."""
    import re

    from bifrost.records import ACTIVE_STATUSES, CLAIMABLE_STATUSES
    from bifrost.store.sql.tables import ACTIVE_STATUS_SQL, CLAIMABLE_STATUS_SQL

    def statuses(sql: str) -> set[str]:
        return set(re.findall(r"'([a-z]+)'", sql))

    assert statuses(ACTIVE_STATUS_SQL) == {s.value for s in ACTIVE_STATUSES}
    assert statuses(CLAIMABLE_STATUS_SQL) == {s.value for s in CLAIMABLE_STATUSES}
