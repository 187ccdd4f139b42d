"""``bifrost db``: schema migrations of the store (alembic), and its upkeep.

Run ``upgrade`` before the controller starts (or let it run ``upgrade`` itself, see
``BIFROST_MIGRATE_ON_START``). ``vacuum`` runs the leader's housekeeping pass once (purge of
Gateways deleted longer than ``BIFROST_DELETED_GATEWAY_RETENTION`` ago, journal cap of
``BIFROST_JOURNAL_CAP_PER_GATEWAY``) and then gives the freed space back (``VACUUM`` /
``VACUUM ANALYZE``). Expected failures (unreachable database, unknown revision, a schema newer
than this code) print one line to stderr and exit 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from bifrost.clock import SystemClock
from bifrost.controller.housekeeping import Housekeeper, HousekeepingPolicy, HousekeepingReport
from bifrost.settings import Settings
from bifrost.store import maintenance, migrate, open_store
from bifrost.store.errors import StoreError
from bifrost.store.sql.backend import safe_url

app = typer.Typer(no_args_is_help=True, add_completion=False)

T = TypeVar("T")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="BIFROST_DATABASE_URL",
        help="SQLAlchemy URL of the store (default: SQLite under BIFROST_DATA_DIR).",
        show_default=False,
    ),
]


def _url(database_url: str | None) -> str:
    return database_url or Settings().resolved_database_url()


def _guard(action: Callable[[], T]) -> T:
    try:
        return action()
    except StoreError as exc:
        typer.echo("error: " + " ".join(str(exc).split()), err=True)
        raise typer.Exit(1) from None


@app.command()
def upgrade(
    database_url: DatabaseUrl = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Migrate the store's schema up to REVISION (default: head)."""
    url = _url(database_url)
    _guard(lambda: migrate.upgrade(url, revision))
    now_at = _guard(lambda: migrate.current(url))
    typer.echo(f"database at {safe_url(url)} is at revision {now_at or 'none'}")


@app.command()
def current(database_url: DatabaseUrl = None) -> None:
    """Print the store's schema revision (and whether it is the head this code needs)."""
    url = _url(database_url)
    revision = _guard(lambda: migrate.current(url))
    head = migrate.head()
    if revision == head:
        note = "(head)"
    elif revision is None:
        note = f"(empty; this code needs {head}: run `bifrost db upgrade`)"
    elif revision in migrate.known_revisions():
        note = f"(behind; this code needs {head}: run `bifrost db upgrade`)"
    else:
        note = f"(unknown to this code, which needs {head}: a newer bifrost migrated it)"
    typer.echo(f"{revision or 'none'} {note}")


@app.command()
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision ('base' drops everything).")],
    database_url: DatabaseUrl = None,
) -> None:
    """Migrate the store's schema down to REVISION."""
    url = _url(database_url)
    _guard(lambda: migrate.downgrade(url, revision))
    now_at = _guard(lambda: migrate.current(url))
    typer.echo(f"database at {safe_url(url)} is at revision {now_at or 'none'}")


def _housekeeping(url: str, policy: HousekeepingPolicy) -> HousekeepingReport:
    store = open_store(url)
    try:
        return Housekeeper(store, clock=SystemClock(), policy=policy).run_once()
    finally:
        store.close()


def _size(size: int | None) -> str:
    return "unknown size" if size is None else f"{size / 1_048_576:.2f} MiB"


@app.command()
def vacuum(database_url: DatabaseUrl = None) -> None:
    """Purge Gateways deleted longer than BIFROST_DELETED_GATEWAY_RETENTION ago, cap every
    Gateway's journal at BIFROST_JOURNAL_CAP_PER_GATEWAY rows, then VACUUM (SQLite) or VACUUM
    ANALYZE (PostgreSQL); prints what it removed."""
    url = _url(database_url)
    policy = HousekeepingPolicy.from_settings(Settings())
    size_before = _guard(lambda: maintenance.database_size(url))
    report = _guard(lambda: _housekeeping(url, policy))
    for gateway in report.purged:
        deleted = gateway.deleted_at.isoformat() if gateway.deleted_at else "?"
        typer.echo(f"purged {gateway.namespace}/{gateway.name} (uid {gateway.uid}, deleted "
                   f"{deleted})")
    typer.echo(f"{report.describe()} (retention {policy.retention}, journal cap "
               f"{policy.journal_cap})")
    statement = _guard(lambda: maintenance.vacuum(url))
    size_after = _guard(lambda: maintenance.database_size(url))
    typer.echo(f"{statement} on {safe_url(url)}: {_size(size_before)} -> {_size(size_after)}")
