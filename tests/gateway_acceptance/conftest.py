"""The devcluster fixtures of the Gateway acceptance scenarios (``support.inprocess``): one
in-process controller per module on its own SQLite store, plus what the tests read back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import inprocess
from support.inprocess import cluster, kube, kubeconfig, namespace  # noqa: F401

from bifrost.controller.manager import Controller
from bifrost.kube.client import KubeClient
from bifrost.store import SqlStore


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    with inprocess.sqlite_store(tmp_path_factory.mktemp("acceptance-db")) as opened:
        yield opened


@pytest.fixture(scope="module")
def running(kube: KubeClient, store: SqlStore) -> Iterator[Controller]:  # noqa: F811
    with inprocess.running_controller(kube, store, name="acceptance") as controller:
        yield controller
