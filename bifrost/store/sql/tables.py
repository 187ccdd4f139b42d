"""The store's tables (SQLAlchemy Core), the one schema alembic migrates and the drift check
compares against.

Everything is keyed by the Gateway's **uid**, not its namespace/name: a gateway re-created under
the same name is a new gateway. Times are stored as UTC and always come back timezone-aware
(``UTCDateTime``), on SQLite too. JSON (contexts, outputs, step inputs, DNS names) is stored as
text so that a corrupt value can still be read and shown instead of breaking the read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC that always reads back timezone-aware.

    SQLite has no timezone type: values are stored naive-in-UTC (fixed-width text, so
    comparisons in SQL order correctly) and given back their UTC tzinfo on read. Naive datetimes
    are refused on write: a naive time in the store is always a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} given to the store: pass a UTC-aware time")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# A 64-bit key on PostgreSQL; INTEGER on SQLite so the key is the rowid (autoincrementing).
BigId = BigInteger().with_variant(Integer(), "sqlite")

# Statuses that occupy the (gateway, lane) slot; must match records.ACTIVE_STATUSES.
ACTIVE_STATUS_SQL = "status IN ('pending', 'running', 'waiting', 'paused')"
# Statuses claim_due may take; must match records.CLAIMABLE_STATUSES. claim_due uses this very
# text (not bound parameters) so the planner can match the partial index "ix_operations_due".
CLAIMABLE_STATUS_SQL = "status IN ('pending', 'running', 'waiting')"

NAMING_CONVENTION: dict[str, Any] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

gateways = Table(
    "gateways",
    metadata,
    Column("uid", String(64), primary_key=True),
    Column("namespace", String(253), nullable=False),
    Column("name", String(253), nullable=False),
    Column("lifecycle_state", String(64), nullable=False),
    Column("gateway_class", String(253), nullable=True),
    Column("generation", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # sha256 (hex) of the inputs of the last provision the controller started (revision 0002):
    # a restarted controller does not provision an unchanged Gateway again.
    Column("input_hash", String(64), nullable=True),
    # When the Gateway's teardown finished (revision 0004); purged after the retention.
    Column("deleted_at", UTCDateTime, nullable=True),
    Index("ix_gateways_namespace_name", "namespace", "name"),
)

operations = Table(
    "operations",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "gateway_uid",
        String(64),
        ForeignKey("gateways.uid", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("namespace", String(253), nullable=False),
    Column("name", String(253), nullable=False),
    Column("machine", String(128), nullable=False),
    Column("machine_version", Integer, nullable=False),
    Column("lane", String(64), nullable=False),
    Column("state", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("context", Text, nullable=False),
    Column("step", String(128), nullable=True),
    Column("attempt", Integer, nullable=False),
    Column("next_run_at", UTCDateTime, nullable=True),
    Column("lease_owner", String(253), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("version", BigInteger, nullable=False),
    # The last journal sequence given to this operation: the next row gets +1, so sequences stay
    # strictly increasing even after prune_journal removed an operation's older rows.
    Column("last_sequence", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    # The engine's bookkeeping (``records.EngineBookkeeping``, revision 0003), one column per
    # field: written by the same fenced UPDATE as the state and context it goes with, so it
    # costs no statement of its own and is fenced like them.
    Column("engine_state", String(128), nullable=True),
    Column("engine_step", String(128), nullable=True),
    Column("engine_input", Text, nullable=True),
    Column("engine_since", UTCDateTime, nullable=True),
    Column("engine_failures", Integer, nullable=False, server_default=text("0")),
    Column("engine_finished", Integer, nullable=False, server_default=text("0")),
    Column("engine_error", Text, nullable=True),
    Column("engine_failed", Boolean, nullable=False, server_default=text("false")),
    # What a waiting step waits for: a JSON list of watch keys (revision 0004).
    Column("engine_wait_on", Text, nullable=True),
    # Operations by status (listing) and due time.
    Index("ix_operations_status_next_run_at", "status", "next_run_at"),
    # claim_due's hot path: claimable operations in due order, so taking the first due one
    # walks the index instead of sorting the whole backlog.
    Index(
        "ix_operations_due",
        "next_run_at",
        "id",
        sqlite_where=text(CLAIMABLE_STATUS_SQL),
        postgresql_where=text(CLAIMABLE_STATUS_SQL),
    ),
    # Per-gateway history.
    Index("ix_operations_gateway_uid_id", "gateway_uid", "id"),
    # At most one active operation per (gateway, lane).
    Index(
        "uq_operations_active_lane",
        "gateway_uid",
        "lane",
        unique=True,
        sqlite_where=text(ACTIVE_STATUS_SQL),
        postgresql_where=text(ACTIVE_STATUS_SQL),
    ),
)

journal = Table(
    "journal",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "operation_id",
        BigId,
        ForeignKey("operations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "gateway_uid",
        String(64),
        ForeignKey("gateways.uid", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("sequence", Integer, nullable=False),
    Column("state", String(128), nullable=False),
    Column("step", String(128), nullable=True),
    Column("attempt", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("message", Text, nullable=True),
    Column("output", Text, nullable=True),
    Column("actor", String(253), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    # An identical wait repeated is one row: how many times, and when last (revision 0004).
    Column("repeats", Integer, nullable=False, server_default=text("1")),
    Column("last_at", UTCDateTime, nullable=True),
    UniqueConstraint("operation_id", "sequence"),
    Index("ix_journal_gateway_uid_id", "gateway_uid", "id"),
)

certificates = Table(
    "certificates",
    metadata,
    Column(
        "gateway_uid",
        String(64),
        ForeignKey("gateways.uid", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("object_name", String(253), primary_key=True),
    Column("listener", String(253), nullable=False),
    Column("secret_name", String(253), nullable=True),
    Column("serial", String(128), nullable=True),
    Column("fingerprint_sha256", String(128), nullable=True),
    Column("dns_names", Text, nullable=False),
    Column("not_before", UTCDateTime, nullable=True),
    Column("not_after", UTCDateTime, nullable=True),
    Column("renewal_at", UTCDateTime, nullable=True),
    Column("attached", Boolean, nullable=False),
    Column("state", String(32), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # When it was attached (revision 0005; NULL while detached): the order of a listener's
    # certificates during a rotation (old, then new) when their notBefore is the same second.
    Column("attached_at", UTCDateTime, nullable=True),
    Index("ix_certificates_attached_renewal_at", "attached", "renewal_at"),
)

# route_key is part of the key; SQL unique keys ignore NULLs, so "no route" is stored as ''.
children = Table(
    "children",
    metadata,
    Column(
        "gateway_uid",
        String(64),
        ForeignKey("gateways.uid", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("child_id", String(253), primary_key=True),
    Column("route_key", String(507), primary_key=True),
    Column("api_version", String(253), nullable=False),
    Column("kind", String(253), nullable=False),
    Column("namespace", String(253), nullable=True),
    Column("name", String(253), nullable=False),
    Column("uid", String(64), nullable=True),
    Column("applied_hash", String(128), nullable=True),
    Column("ready", Boolean, nullable=False),
    Column("delete_order", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Drift detection (revision 0004): the shape of the fields bifrost sets (keys, no values)
    # and the hash of the live object's projection onto it right after the apply.
    Column("observed_hash", String(128), nullable=True),
    Column("field_shape", Text, nullable=True),
)
