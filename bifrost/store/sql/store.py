"""``SqlStore``: the one implementation of ``OperationStore``, on SQLite and PostgreSQL.

Each aggregate has its repository, one file each (``operations.py``, ``journal.py``,
``gateways.py``, ``certificates.py``, ``children.py``), sharing the unit of work of
``database.py``. ``SqlStore`` is their union over one engine: it inherits each repository's
methods (they share nothing but the ``Database``) and adds the engine's lifecycle. Every public
method is one transaction and hands out frozen records, never rows.
"""

from __future__ import annotations

from sqlalchemy import Engine

from bifrost.store.interface import OperationStore
from bifrost.store.sql.backend import Backend
from bifrost.store.sql.certificates import SqlCertificates
from bifrost.store.sql.children import SqlChildren
from bifrost.store.sql.database import Database
from bifrost.store.sql.gateways import SqlGateways
from bifrost.store.sql.journal import SqlJournal
from bifrost.store.sql.operations import SqlOperations


class SqlStore(SqlOperations, SqlJournal, SqlGateways, SqlCertificates, SqlChildren):
    """``OperationStore`` over a SQLAlchemy engine. Build it with ``bifrost.store.open_store``.

    Thread-safe: each call takes its own pooled connection.
    """

    def __init__(self, engine: Engine, backend: Backend) -> None:
        self._engine = engine
        self._backend = backend
        db = Database(engine, backend)
        # Each repository sets up its own (disjoint) state on the one Database.
        SqlOperations.__init__(self, db)
        SqlJournal.__init__(self, db)
        SqlGateways.__init__(self, db)
        SqlCertificates.__init__(self, db)
        SqlChildren.__init__(self, db)

    @property
    def backend_name(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._backend.name

    @property
    def url(self) -> str:
        """The database URL, without its password."""
        return self._db.url

    def close(self) -> None:
        """Close the pooled connections."""
        self._engine.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _conforms(store: SqlStore) -> OperationStore:
    """Type-check only: ``SqlStore`` satisfies the ``OperationStore`` Protocol."""
    return store
