"""``certificates.attached_at``: when the certificate was attached to its listener.

During a rotation a listener has two certificates attached, and the children list them in the
order they were attached (old, then new). Two certificates issued within the same second have
the same ``notBefore`` (X.509 times are whole seconds), so that order cannot be read from the
certificates themselves; the store keeps it. Certificates attached before this revision keep
NULL (they sort before any attached since, which is the order they were attached in).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
# As in 0002: ALTERs in place, never "move and copy" (recreating a table on SQLite would cascade).
RECREATE = "never"


def upgrade() -> None:
    with op.batch_alter_table("certificates", recreate=RECREATE) as batch:
        batch.add_column(sa.Column("attached_at", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("certificates", recreate=RECREATE) as batch:
        batch.drop_column("attached_at")
