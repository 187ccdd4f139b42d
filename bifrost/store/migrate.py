"""Schema migrations of the store (alembic), driven from code.

The alembic configuration is built here, not read from an ``alembic.ini``, and the scripts are
found relative to the package (``<repo>/migrations``), so ``bifrost db upgrade`` works from any
working directory. Migrations run on a connection from the store's own engine set-up, so SQLite
gets the same pragmas as at runtime. A database at a revision this code does not know (migrated
by a newer bifrost) is refused with ``SchemaMismatch`` rather than touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from bifrost.shipped import shipped
from bifrost.store.errors import SchemaMismatch, StoreError, StoreUnavailable
from bifrost.store.sql.backend import connect, describe_error, safe_url
from bifrost.store.sql.sqlite import WRITE_OPTION

MIGRATIONS_DIR = shipped("migrations")
# pg_advisory_xact_lock key serialising concurrent migrations ("bifrost" in ASCII).
LOCK_KEY = 0x62696672_6F7374


def _config(connection: Connection | None = None) -> Config:
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise StoreError(f"alembic migrations not found at {MIGRATIONS_DIR}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The revision this code needs."""
    revision = _script().get_current_head()
    if revision is None:  # pragma: no cover - the repo always ships a revision
        raise StoreError(f"no alembic revision in {MIGRATIONS_DIR}")
    return revision


def known_revisions() -> set[str]:
    return {script.revision for script in _script().walk_revisions()}


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    engine, _backend = connect(url)
    try:
        yield engine
    except DBAPIError as exc:  # unreachable, locked, or not a database (a corrupt SQLite file)
        raise StoreUnavailable(
            f"database at {safe_url(url)} is unavailable: {describe_error(exc)}"
        ) from exc
    finally:
        engine.dispose()


def _current(conn: Connection) -> str | None:
    heads = MigrationContext.configure(conn).get_current_heads()
    if len(heads) > 1:
        raise SchemaMismatch(f"database has several schema heads {sorted(heads)}; fix by hand")
    return heads[0] if heads else None


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return _current(conn)


def _refuse_unknown(url: str, revision: str | None) -> None:
    if revision is not None and revision not in known_revisions():
        raise SchemaMismatch(
            f"database at {safe_url(url)} is at revision {revision}, which this code does not "
            f"know (a newer bifrost migrated it); this code needs {head()}: run the newer "
            "bifrost, or downgrade the database with it"
        )


def check_engine(engine: Engine, url: str | None = None) -> None:
    """Raise SchemaMismatch unless the database behind ``engine`` is at head."""
    shown = safe_url(url if url is not None else engine.url)
    revision = current_revision(engine)
    needed = head()
    if revision == needed:
        return
    _refuse_unknown(shown, revision)
    raise SchemaMismatch(
        f"database at {shown} is at revision {revision or 'none (empty)'}, this code needs "
        f"{needed}: run `bifrost db upgrade`"
    )


def check(url: str) -> None:
    """Raise SchemaMismatch unless the database at ``url`` is at head."""
    with _engine(url) as engine:
        check_engine(engine, url)


def current(url: str) -> str | None:
    """The database's revision; None when it has no schema yet."""
    with _engine(url) as engine:
        return current_revision(engine)


def _run(url: str, action: str, revision: str) -> None:
    with _engine(url) as engine:
        _refuse_unknown(url, current_revision(engine))
        with engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    # Replicas migrating on start take turns; the later ones find head.
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
                cfg = _config(conn)
                try:
                    if action == "upgrade":
                        command.upgrade(cfg, revision)
                    else:
                        command.downgrade(cfg, revision)
                except DBAPIError:
                    raise
                except Exception as exc:  # alembic's CommandError & co: unknown target etc.
                    if exc.__class__.__module__.startswith("alembic"):
                        raise StoreError(f"cannot {action} to {revision!r}: {exc}") from exc
                    raise


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (one transaction)."""
    _run(url, "upgrade", revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``base``: drop everything)."""
    _run(url, "downgrade", revision)
