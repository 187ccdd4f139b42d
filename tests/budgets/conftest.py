"""The devcluster fixtures of the in-process controller scenarios (``support.inprocess``), and a
migrated SQLite store per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.inprocess import cluster, kube, kubeconfig, namespace, sqlite_store  # noqa: F401

from bifrost.store import SqlStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with sqlite_store(tmp_path) as opened:
        yield opened
