"""Database maintenance the store's repositories do not cover: giving back the space that purged
rows leave behind (``bifrost db vacuum``).

Deleting rows (housekeeping's purge of deleted Gateways, the journal cap) frees pages inside the
database but does not shrink it; ``VACUUM`` rewrites a SQLite file compactly, and ``VACUUM
ANALYZE`` lets PostgreSQL reuse the space and refreshes the planner's statistics. Both must run
outside a transaction, so they take a connection of their own: on SQLite the driver's connection
directly (the store's engine wraps every statement in ``BEGIN``), on PostgreSQL one in autocommit.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import DBAPIError

from bifrost.store.errors import StoreUnavailable
from bifrost.store.sql.backend import connect, describe_error, normalize_url, safe_url

__all__ = ["database_size", "vacuum"]


def vacuum(url: str) -> str:
    """Run ``VACUUM`` (SQLite) or ``VACUUM ANALYZE`` (PostgreSQL) on the store at ``url``;
    returns the statement run. StoreUnavailable when the database cannot be reached or is
    locked past the busy timeout."""
    engine, backend = connect(url)
    statement = "VACUUM" if backend.name == "sqlite" else "VACUUM ANALYZE"
    try:
        if backend.name == "sqlite":
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute(statement)
                cursor.close()
            finally:
                raw.close()
        else:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(statement)
    except DBAPIError as exc:
        raise StoreUnavailable(
            f"{statement} on {safe_url(url)} failed: {describe_error(exc)}"
        ) from exc
    finally:
        engine.dispose()
    return statement


def database_size(url: str) -> int | None:
    """The size of the database in bytes (SQLite: the file; PostgreSQL:
    ``pg_database_size``), or None when it cannot be told."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database:
            return None
        path = Path(database).expanduser()
        return path.stat().st_size if path.is_file() else None
    engine, _backend = connect(url)
    try:
        with engine.connect() as conn:
            size = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
        return int(size) if size is not None else None
    except DBAPIError as exc:
        raise StoreUnavailable(
            f"database at {safe_url(url)} is unavailable: {describe_error(exc)}"
        ) from exc
    finally:
        engine.dispose()
