"""What every repository of the SQL store shares: the unit of work and the row mapping.

``Database.transaction`` is the unit of work: one pooled connection, one transaction, with the
database errors that mean "not now" turned into ``StoreUnavailable`` and a value the driver
refused turned back into the ``ValueError``/``TypeError`` it was. ``to_record`` maps a row onto
a pydantic record by column name; a repository converts explicitly only the columns that are
stored differently from the record's field (JSON text, an empty string for "none").
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, RowMapping
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, StatementError

from bifrost.store.errors import StoreUnavailable
from bifrost.store.sql.backend import Backend, describe_error, safe_url
from bifrost.store.sql.sqlite import WRITE_OPTION

R = TypeVar("R", bound=BaseModel)


class Database:
    """The engine and backend the repositories share. Thread-safe: each transaction takes its
    own pooled connection."""

    def __init__(self, engine: Engine, backend: Backend) -> None:
        self.engine = engine
        self.backend = backend

    @property
    def url(self) -> str:
        """The database URL, without its password."""
        return safe_url(self.engine.url)

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Connection]:
        """One transaction (``write``: it takes the write lock at once on SQLite)."""
        try:
            with self.engine.connect() as conn:
                if write:
                    conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except DBAPIError as exc:
            if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
                raise StoreUnavailable(
                    f"database at {self.url} is unavailable: {describe_error(exc)}"
                ) from exc
            raise
        except StatementError as exc:
            # A value refused before it reached the database (e.g. a naive datetime).
            if isinstance(exc.orig, ValueError | TypeError):
                raise exc.orig from exc
            raise


def to_record(model: type[R], row: RowMapping | Mapping[str, Any], **converted: Any) -> R:
    """The record ``model`` from the row's columns of the same names; ``converted`` gives the
    fields whose column is stored differently (or does not exist)."""
    values = {name: row[name] for name in model.model_fields if name in row}
    values.update(converted)
    return model.model_validate(values)


def dump_json(value: Any, *, what: str) -> str:
    """JSON text as the store keeps it (compact, keys sorted); ValueError naming ``what``."""
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serialisable: {exc}") from exc


def load_json_object(raw: str | None) -> dict[str, Any] | None:
    """A stored JSON object; ``None`` when absent or unreadable (never raises)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None
