"""The SQLAlchemy implementation of the store (SQLite and PostgreSQL)."""

from bifrost.store.sql.backend import connect, normalize_url, safe_url
from bifrost.store.sql.store import SqlStore

__all__ = ["SqlStore", "connect", "normalize_url", "safe_url"]
