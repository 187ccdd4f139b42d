"""A devcluster with the Gateway API and bifrost CRDs, a client on it, and a fresh namespace per
test (for the controller-level values tests)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.devcluster import crd_paths

from bifrost.devcluster.server import DevCluster
from bifrost.kube.client import KubeClient

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
def kube(cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeClient]:
    config = cluster.write_kubeconfig(tmp_path_factory.mktemp("values-kube") / "config")
    client = KubeClient.from_kubeconfig(config)
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}})
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def namespace(kube: KubeClient) -> str:
    name = f"v-{uuid.uuid4().hex[:8]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name
