"""gateways.input_hash: the input hash of the last provision started.

A restarted controller reads it back and does not provision every unchanged Gateway again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Batch mode, but never "move and copy": recreating ``gateways`` on SQLite means dropping it,
# and with foreign keys on (the store's connections enable them, and PRAGMA foreign_keys cannot
# change inside the migration's transaction) that DROP cascades into operations, journal,
# certificates and children. SQLite 3.35+ (the store's minimum) adds and drops a plain column
# in place, so the batch runs the ALTERs directly; on PostgreSQL they are plain ALTER TABLEs.
RECREATE = "never"


def upgrade() -> None:
    # Nullable, no default: existing rows read as "no provision recorded", so each Gateway is
    # provisioned once more after the upgrade (safe: provision is idempotent).
    with op.batch_alter_table("gateways", recreate=RECREATE) as batch:
        batch.add_column(sa.Column("input_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gateways", recreate=RECREATE) as batch:
        batch.drop_column("input_hash")
