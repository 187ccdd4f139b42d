"""What differs between database backends, behind one small interface.

The repositories are written once against SQLAlchemy Core; the few things that are not portable
(engine set-up, how ``claim_due`` locks the rows it takes, the dialect's upsert) are supplied by a
``Backend``: ``sqlite.py`` and ``postgres.py``. ``connect`` picks one from the URL.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import URL, Engine, Select, Table
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bifrost.store.errors import StoreError


class Backend(Protocol):
    name: str
    #: ``WITH … AS (UPDATE … RETURNING) INSERT …`` works: a fenced write and its journal rows
    #: go to the server as one statement (one round trip).
    writable_ctes: bool

    def create_engine(self, url: URL) -> Engine:
        """An engine configured for the store (pragmas, pool, timeouts)."""
        ...

    def lock_due(self, stmt: Select[tuple[int]]) -> Select[tuple[int]]:
        """Make the claim's SELECT of due ids exclusive between concurrent claimers."""
        ...

    def insert(self, table: Table) -> SqliteInsert | PgInsert:
        """The dialect's INSERT with ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""
        ...


def normalize_url(url: str | URL) -> URL:
    """Parse a store URL; bare ``postgresql://`` / ``postgres://`` mean psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"invalid database URL {url!r}: {exc}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def safe_url(url: str | URL) -> str:
    """The URL for messages, without its password."""
    try:
        return normalize_url(url).render_as_string(hide_password=True)
    except StoreError:
        return str(url)


def describe_error(exc: BaseException) -> str:
    """A database error as one line (drivers' messages span several)."""
    orig = getattr(exc, "orig", None)
    return " ".join(str(orig or exc).split())


def backend_for(url: URL) -> Backend:
    if url.get_backend_name() == "sqlite":
        from bifrost.store.sql.sqlite import SqliteBackend

        return SqliteBackend()
    if url.get_backend_name() == "postgresql":
        if url.get_driver_name() != "psycopg":
            raise StoreError(
                f"unsupported PostgreSQL driver {url.get_driver_name()!r} in "
                f"{url.render_as_string(hide_password=True)}: use postgresql+psycopg://"
            )
        from bifrost.store.sql.postgres import PostgresBackend

        return PostgresBackend()
    raise StoreError(
        f"unsupported database {url.get_backend_name()!r} in "
        f"{url.render_as_string(hide_password=True)}: use sqlite:///PATH or "
        "postgresql+psycopg://USER:PASS@HOST/DB"
    )


def connect(url: str | URL) -> tuple[Engine, Backend]:
    """An engine and its backend for a store URL."""
    parsed = normalize_url(url)
    backend = backend_for(parsed)
    return backend.create_engine(parsed), backend
