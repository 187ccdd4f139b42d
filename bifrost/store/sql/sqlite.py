"""SQLite specifics: a file database in WAL mode where claiming is atomic.

pysqlite's own transaction handling is switched off so that SQLAlchemy's ``begin`` emits the
``BEGIN`` itself: ``BEGIN IMMEDIATE`` for write transactions (the store marks them with the
``bifrost_write`` execution option), so a claim's SELECT and UPDATE run under the database's
single write lock and two claimers can never take the same row; plain deferred ``BEGIN`` for reads,
which WAL lets run beside a writer. ``busy_timeout`` makes a writer wait for the lock instead of
failing at once; past it, "database is locked" becomes ``StoreUnavailable``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, Select, Table, create_engine, event
from sqlalchemy.dialects.sqlite import Insert, insert

from bifrost.store.errors import StoreError

WRITE_OPTION = "bifrost_write"
DEFAULT_BUSY_TIMEOUT_S = 5.0
#: ``UPDATE … RETURNING`` (the store's fenced writes) arrived in SQLite 3.35.
MIN_SQLITE_VERSION = (3, 35, 0)


class SqliteBackend:
    name = "sqlite"
    writable_ctes = False  # SQLite has no DML in CTEs

    def create_engine(self, url: URL) -> Engine:
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise StoreError(
                f"SQLite {sqlite3.sqlite_version} is too old for the store (it needs "
                f"{'.'.join(map(str, MIN_SQLITE_VERSION))}+ for UPDATE … RETURNING): use a Python "
                "built against a newer SQLite, or PostgreSQL"
            )
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            raise StoreError(
                f"SQLite store needs a file path ({url}): an in-memory database is private to "
                "one connection; use sqlite:///PATH"
            )
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # How long a writer waits for the lock: ``?timeout=SECONDS`` in the URL, default 5 s.
        raw_timeout = url.query.get("timeout", str(DEFAULT_BUSY_TIMEOUT_S))
        try:
            timeout_s = float(raw_timeout if isinstance(raw_timeout, str) else raw_timeout[0])
        except ValueError as exc:
            raise StoreError(f"SQLite URL {url}: timeout must be a number of seconds") from exc
        busy_timeout_ms = int(timeout_s * 1000)
        engine = create_engine(
            url.difference_update_query(["timeout"]),
            connect_args={"timeout": timeout_s},
            pool_size=8,
            max_overflow=16,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Hand transaction control to the "begin" hook below.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
                # WAL + FULL: a commit the engine acted on survives a power loss.
                cursor.execute("PRAGMA synchronous=FULL")
            finally:
                cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            immediate = conn.get_execution_options().get(WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def lock_due(self, stmt: Select[tuple[int]]) -> Select[tuple[int]]:
        # BEGIN IMMEDIATE already holds the database's write lock.
        return stmt

    def insert(self, table: Table) -> Insert:
        return insert(table)
