"""operations.engine_*: the engine's bookkeeping in columns, out of the context JSON.

Until 0002 the engine kept its bookkeeping (the next step of the state, the previous step's
output, when the step was first attempted, its failed and finished attempts, why compensation
started, an operator-retry flag) under the reserved key ``"_engine"`` of each operation's
context JSON. From 0003 it has one column per field on the operation row.

Columns on ``operations`` rather than an ``operation_attempts`` table: the bookkeeping is one
value per operation, replaced by every engine commit, and it must be written in the same
transaction as the state and context it goes with, fenced the same way. As columns, the fenced
``UPDATE … RETURNING`` that commits a step writes them too — no statement of its own, the same
one round trip on PostgreSQL — and every read of an operation gets them without a join.

Upgrade moves each object found under ``"_engine"`` into the columns and strips the key (the
context JSON keeps its compact, sorted form); a value that is not an object is left in the
context, where the runner reports the operation as one it cannot interpret instead of the
migration dropping it silently. Downgrade puts the bookkeeping back under ``"_engine"`` for every
operation whose columns hold anything (all defaults: nothing was remembered, no key — as the
engine wrote it) and drops the columns.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENGINE_KEY = "_engine"
TS = sa.DateTime(timezone=True)
# As in 0002: ALTERs in place, never "move and copy" (recreating ``operations`` on SQLite would
# cascade into the journal).
RECREATE = "never"



def _columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("engine_state", sa.String(128), nullable=True),
        sa.Column("engine_step", sa.String(128), nullable=True),
        sa.Column("engine_input", sa.Text(), nullable=True),
        sa.Column("engine_since", TS, nullable=True),
        sa.Column("engine_failures", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("engine_finished", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("engine_error", sa.Text(), nullable=True),
        sa.Column("engine_failed", sa.Boolean(), nullable=False, server_default=sa.text("false")),
    ]

DEFAULTS: dict[str, Any] = {
    "engine_state": None,
    "engine_step": None,
    "engine_input": None,
    "engine_since": None,
    "engine_failures": 0,
    "engine_finished": 0,
    "engine_error": None,
    "engine_failed": False,
}

# Frozen copy of the table at this revision, just what the data moves read and write.
operations = sa.table(
    "operations",
    sa.column("id", sa.BigInteger()),
    sa.column("context", sa.Text()),
    *(sa.column(c.name, c.type) for c in _columns()),
)


def _dump(value: Any) -> str:
    """JSON as the store writes it (compact, keys sorted)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)


def _stored_time(value: datetime | None, dialect: str) -> datetime | None:
    """A UTC time as the store keeps it: naive UTC on SQLite, aware on PostgreSQL."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.replace(tzinfo=None) if dialect == "sqlite" else value


def _read_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _columns_from(envelope: dict[str, Any], dialect: str) -> dict[str, Any]:
    """The engine_* values of an ``"_engine"`` object (a field of the wrong type: its default)."""
    given = envelope.get("input")
    return {
        "engine_state": _text(envelope.get("state")),
        "engine_step": _text(envelope.get("step")),
        "engine_input": _dump(given) if isinstance(given, dict) else None,
        "engine_since": _stored_time(_read_time(envelope.get("since")), dialect),
        "engine_failures": _count(envelope.get("failures")),
        "engine_finished": _count(envelope.get("finished")),
        "engine_error": _text(envelope.get("error")),
        "engine_failed": envelope.get("failed") is True,
    }


def _envelope_from(row: Any) -> dict[str, Any]:
    """The ``"_engine"`` object the engine wrote before 0003, from the engine_* columns."""
    since = _read_time(row.engine_since)
    try:
        given = json.loads(row.engine_input) if row.engine_input is not None else None
    except ValueError:
        given = None
    return {
        "state": row.engine_state,
        "step": row.engine_step,
        "input": given,
        "since": None if since is None else since.astimezone(UTC).isoformat(),
        "failures": row.engine_failures,
        "finished": row.engine_finished,
        "error": row.engine_error,
        "failed": bool(row.engine_failed),
    }


def upgrade() -> None:
    with op.batch_alter_table("operations", recreate=RECREATE) as batch:
        for column in _columns():
            batch.add_column(column)
    conn = op.get_bind()
    dialect = conn.dialect.name
    rows = conn.execute(
        sa.select(operations.c.id, operations.c.context).where(
            operations.c.context.like(f"%{ENGINE_KEY}%")
        )
    ).all()
    for row in rows:
        try:
            context = json.loads(row.context)
        except ValueError:
            continue  # unreadable context: shown as it is by bifrost-admin, failed by the runner
        if not isinstance(context, dict) or not isinstance(context.get(ENGINE_KEY), dict):
            continue
        envelope = context.pop(ENGINE_KEY)
        conn.execute(
            operations.update()
            .where(operations.c.id == row.id)
            .values(context=_dump(context), **_columns_from(envelope, dialect))
        )


def downgrade() -> None:
    conn = op.get_bind()
    bookkeeping = [operations.c[name] for name in DEFAULTS]
    rows = conn.execute(sa.select(operations.c.id, operations.c.context, *bookkeeping)).all()
    for row in rows:
        if {name: getattr(row, name) for name in DEFAULTS} == DEFAULTS:
            continue  # nothing remembered
        try:
            context = json.loads(row.context)
        except ValueError:
            continue
        if not isinstance(context, dict):
            continue
        context[ENGINE_KEY] = _envelope_from(row)
        conn.execute(
            operations.update().where(operations.c.id == row.id).values(context=_dump(context))
        )
    with op.batch_alter_table("operations", recreate=RECREATE) as batch:
        for name in reversed(DEFAULTS):
            batch.drop_column(name)
