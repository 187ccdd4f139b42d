"""Fixtures of the bifrost-admin tests (see ``support.admin_fleet``): ``fleet`` runs on SQLite
and PostgreSQL (``store_url``) and is for what the backend could change (queries, actions);
``sqlite_fleet`` is for the rest (formats, filters, errors), to keep the suite fast."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.admin_fleet import Fleet, make_fleet

from bifrost.store import migrate


@pytest.fixture
def fleet(store_url: str) -> Iterator[Fleet]:
    made = make_fleet(store_url)
    try:
        yield made
    finally:
        made.store.close()


@pytest.fixture
def sqlite_fleet(tmp_path: Path) -> Iterator[Fleet]:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    migrate.upgrade(url)
    made = make_fleet(url)
    try:
        yield made
    finally:
        made.store.close()
