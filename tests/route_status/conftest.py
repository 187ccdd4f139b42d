"""Fixtures for the route-status scenarios: the devcluster with every CRD bifrost uses, a client,
a fresh namespace per test, and bifrost's Controller in-process on a SQLite store (one per
module: the scenarios use their own classes and namespaces)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.inprocess import (  # noqa: F401
    cluster,
    kube,
    kubeconfig,
    namespace,
    running_controller,
    sqlite_store,
)

from bifrost.controller.manager import Controller
from bifrost.kube import KubeClient


@pytest.fixture(scope="module")
def controller(
    kube: KubeClient, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
) -> Iterator[Controller]:
    with sqlite_store(tmp_path_factory.mktemp("route-status-db")) as store, \
            running_controller(kube, store, name="route-status") as running:
        yield running
