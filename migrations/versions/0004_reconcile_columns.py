"""Columns for level-based reconciling and a bounded store.

- ``children.observed_hash`` / ``children.field_shape``: right after bifrost applies a child, the
  hash of the live object's fields that bifrost sets (``field_shape`` is the shape of those
  fields — keys only, never values), so that a later edit of one of them (drift) is noticed by
  comparing the live object's projection against ``observed_hash``.
- ``journal.repeats`` / ``journal.last_at``: an identical wait repeated is one row with a count
  and the time of its last repetition.
- ``gateways.deleted_at``: when the Gateway was deleted (its teardown finished); its history is
  purged once the retention has passed.
- ``operations.engine_wait_on``: what a waiting step waits for (JSON list of watch keys), so an
  informer event wakes exactly that operation.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
# As in 0002: ALTERs in place, never "move and copy" (recreating a table on SQLite would cascade).
RECREATE = "never"


def upgrade() -> None:
    with op.batch_alter_table("children", recreate=RECREATE) as batch:
        batch.add_column(sa.Column("observed_hash", sa.String(128), nullable=True))
        batch.add_column(sa.Column("field_shape", sa.Text(), nullable=True))
    with op.batch_alter_table("journal", recreate=RECREATE) as batch:
        batch.add_column(sa.Column("repeats", sa.Integer(), nullable=False,
                                   server_default=sa.text("1")))
        batch.add_column(sa.Column("last_at", TS, nullable=True))
    with op.batch_alter_table("gateways", recreate=RECREATE) as batch:
        batch.add_column(sa.Column("deleted_at", TS, nullable=True))
    with op.batch_alter_table("operations", recreate=RECREATE) as batch:
        batch.add_column(sa.Column("engine_wait_on", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operations", recreate=RECREATE) as batch:
        batch.drop_column("engine_wait_on")
    with op.batch_alter_table("gateways", recreate=RECREATE) as batch:
        batch.drop_column("deleted_at")
    with op.batch_alter_table("journal", recreate=RECREATE) as batch:
        batch.drop_column("last_at")
        batch.drop_column("repeats")
    with op.batch_alter_table("children", recreate=RECREATE) as batch:
        batch.drop_column("field_shape")
        batch.drop_column("observed_hash")
