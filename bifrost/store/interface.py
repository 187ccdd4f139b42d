"""The store's interface: what the engine, controller and bifrost-admin may ask of it.

``OperationStore`` is the union of the per-aggregate repositories in
``bifrost.store.repositories`` (operations, journal, gateways, certificates, children); callers
take it, or the one repository they need. One implementation (SQLAlchemy, ``bifrost.store.sql``:
a file per repository, composed by ``SqlStore``) serves SQLite and PostgreSQL; the
backend-specific parts (connection set-up, claiming) live one file per backend. The contract test
suite in ``tests/store/`` runs against every backend.
"""

from __future__ import annotations

from typing import Protocol

from bifrost.store.repositories import (
    CertificateRepository,
    ChildRepository,
    GatewayRepository,
    JournalRepository,
    OperationRepository,
)


class OperationStore(
    OperationRepository,
    JournalRepository,
    GatewayRepository,
    CertificateRepository,
    ChildRepository,
    Protocol,
):
    """Everything the store offers."""
