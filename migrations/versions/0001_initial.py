"""Initial schema: gateways, operations, journal, certificates, children.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types at this revision (the live ones in tables.py may move on).
TS = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = "status IN ('pending', 'running', 'waiting', 'paused')"
CLAIMABLE = "status IN ('pending', 'running', 'waiting')"


def upgrade() -> None:
    op.create_table(
        "gateways",
        sa.Column("uid", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("lifecycle_state", sa.String(64), nullable=False),
        sa.Column("gateway_class", sa.String(253), nullable=True),
        sa.Column("generation", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("uid", name="pk_gateways"),
    )
    op.create_index("ix_gateways_namespace_name", "gateways", ["namespace", "name"])

    op.create_table(
        "operations",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("gateway_uid", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("machine", sa.String(128), nullable=False),
        sa.Column("machine_version", sa.Integer(), nullable=False),
        sa.Column("lane", sa.String(64), nullable=False),
        sa.Column("state", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("step", sa.String(128), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("next_run_at", TS, nullable=True),
        sa.Column("lease_owner", sa.String(253), nullable=True),
        sa.Column("lease_expires_at", TS, nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["gateway_uid"],
            ["gateways.uid"],
            name="fk_operations_gateway_uid_gateways",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_operations"),
    )
    op.create_index("ix_operations_status_next_run_at", "operations", ["status", "next_run_at"])
    op.create_index(
        "ix_operations_due",
        "operations",
        ["next_run_at", "id"],
        sqlite_where=sa.text(CLAIMABLE),
        postgresql_where=sa.text(CLAIMABLE),
    )
    op.create_index("ix_operations_gateway_uid_id", "operations", ["gateway_uid", "id"])
    op.create_index(
        "uq_operations_active_lane",
        "operations",
        ["gateway_uid", "lane"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )

    op.create_table(
        "journal",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("operation_id", BIG_ID, nullable=False),
        sa.Column("gateway_uid", sa.String(64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(128), nullable=False),
        sa.Column("step", sa.String(128), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(253), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operations.id"],
            name="fk_journal_operation_id_operations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["gateway_uid"],
            ["gateways.uid"],
            name="fk_journal_gateway_uid_gateways",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_journal"),
        sa.UniqueConstraint("operation_id", "sequence", name="uq_journal_operation_id_sequence"),
    )
    op.create_index("ix_journal_gateway_uid_id", "journal", ["gateway_uid", "id"])

    op.create_table(
        "certificates",
        sa.Column("gateway_uid", sa.String(64), nullable=False),
        sa.Column("object_name", sa.String(253), nullable=False),
        sa.Column("listener", sa.String(253), nullable=False),
        sa.Column("secret_name", sa.String(253), nullable=True),
        sa.Column("serial", sa.String(128), nullable=True),
        sa.Column("fingerprint_sha256", sa.String(128), nullable=True),
        sa.Column("dns_names", sa.Text(), nullable=False),
        sa.Column("not_before", TS, nullable=True),
        sa.Column("not_after", TS, nullable=True),
        sa.Column("renewal_at", TS, nullable=True),
        sa.Column("attached", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["gateway_uid"],
            ["gateways.uid"],
            name="fk_certificates_gateway_uid_gateways",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("gateway_uid", "object_name", name="pk_certificates"),
    )
    op.create_index(
        "ix_certificates_attached_renewal_at", "certificates", ["attached", "renewal_at"]
    )

    op.create_table(
        "children",
        sa.Column("gateway_uid", sa.String(64), nullable=False),
        sa.Column("child_id", sa.String(253), nullable=False),
        sa.Column("route_key", sa.String(507), nullable=False),
        sa.Column("api_version", sa.String(253), nullable=False),
        sa.Column("kind", sa.String(253), nullable=False),
        sa.Column("namespace", sa.String(253), nullable=True),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("uid", sa.String(64), nullable=True),
        sa.Column("applied_hash", sa.String(128), nullable=True),
        sa.Column("ready", sa.Boolean(), nullable=False),
        sa.Column("delete_order", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["gateway_uid"],
            ["gateways.uid"],
            name="fk_children_gateway_uid_gateways",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("gateway_uid", "child_id", "route_key", name="pk_children"),
    )


def downgrade() -> None:
    op.drop_table("children")
    op.drop_index("ix_certificates_attached_renewal_at", table_name="certificates")
    op.drop_table("certificates")
    op.drop_index("ix_journal_gateway_uid_id", table_name="journal")
    op.drop_table("journal")
    op.drop_index("uq_operations_active_lane", table_name="operations")
    op.drop_index("ix_operations_gateway_uid_id", table_name="operations")
    op.drop_index("ix_operations_due", table_name="operations")
    op.drop_index("ix_operations_status_next_run_at", table_name="operations")
    op.drop_table("operations")
    op.drop_index("ix_gateways_namespace_name", table_name="gateways")
    op.drop_table("gateways")
