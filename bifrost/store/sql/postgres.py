"""PostgreSQL specifics (psycopg 3): connection pool set-up and a claim with SKIP LOCKED.

``claim_due`` selects due ids ``FOR UPDATE SKIP LOCKED``: concurrent claimers each lock
different rows without waiting on one another, and a row re-checked after its lock is released no
longer matches once its lease is taken.
"""

from __future__ import annotations

from sqlalchemy import URL, Engine, Select, Table, create_engine
from sqlalchemy.dialects.postgresql import Insert, insert

CONNECT_TIMEOUT_S = 10


class PostgresBackend:
    name = "postgresql"
    writable_ctes = True

    def create_engine(self, url: URL) -> Engine:
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=8,
            max_overflow=16,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        )

    def lock_due(self, stmt: Select[tuple[int]]) -> Select[tuple[int]]:
        return stmt.with_for_update(skip_locked=True)

    def insert(self, table: Table) -> Insert:
        return insert(table)
