"""Fixtures for the budget scenario: a devcluster of its own with the Gateway API and bifrost
CRDs, a client on it, a migrated SQLite store and a fresh namespace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.devcluster import crd_paths

from bifrost.devcluster.server import DevCluster
from bifrost.kube.client import KubeClient
from bifrost.store import SqlStore, migrate, open_store

REPO = Path(__file__).resolve().parents[2]
SYSTEM_NAMESPACE = "bifrost-system"


@pytest.fixture(scope="module")
def cluster() -> Iterator[DevCluster]:
    dc = DevCluster(crd_paths=[*crd_paths(), REPO / "deploy" / "crds"], bookmark_interval=0.5)
    dc.start()
    try:
        yield dc
    finally:
        dc.stop()
    assert dc.last_error is None, f"devcluster internal error: {dc.last_error!r}"


@pytest.fixture(scope="module")
def kubeconfig(cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cluster.write_kubeconfig(tmp_path_factory.mktemp("budgets-kube") / "config")


@pytest.fixture(scope="module")
def kube(kubeconfig: Path) -> Iterator[KubeClient]:
    client = KubeClient.from_kubeconfig(kubeconfig)
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}})
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    url = f"sqlite:///{(tmp_path / 'bifrost.db').as_posix()}"
    migrate.upgrade(url)
    s = open_store(url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def namespace(kube: KubeClient) -> str:
    name = f"b-{uuid.uuid4().hex[:8]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name
