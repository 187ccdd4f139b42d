"""SQLAlchemy persistence: tables, repositories returning pydantic records, units of work."""

from __future__ import annotations

from bifrost.store.errors import (
    LeaseLost,
    OperationConflict,
    RecordNotFound,
    SchemaMismatch,
    StoreError,
    StoreUnavailable,
)
from bifrost.store.interface import OperationStore
from bifrost.store.sql.store import SqlStore


def open_store(url: str) -> SqlStore:
    """Open the store at ``url`` (``sqlite:///PATH`` or ``postgresql+psycopg://…``).

    Raises SchemaMismatch when the database is not at the schema head this code needs
    (run ``bifrost db upgrade``), StoreUnavailable when it cannot be reached.
    """
    from bifrost.store.migrate import check_engine
    from bifrost.store.sql.backend import connect

    engine, backend = connect(url)
    try:
        check_engine(engine, url)
    except Exception as exc:
        engine.dispose()
        from sqlalchemy.exc import DBAPIError

        if isinstance(exc, DBAPIError):
            from bifrost.store.sql.backend import describe_error, safe_url

            raise StoreUnavailable(
                f"database at {safe_url(url)} is unavailable: {describe_error(exc)}"
            ) from exc
        raise
    return SqlStore(engine, backend)


__all__ = [
    "LeaseLost",
    "RecordNotFound",
    "OperationConflict",
    "OperationStore",
    "SchemaMismatch",
    "SqlStore",
    "StoreError",
    "StoreUnavailable",
    "open_store",
]
