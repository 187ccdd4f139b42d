"""Fixtures for the drift tests: a devcluster with the simulated issuer, load balancer and TLS
data plane (the recovery scene's, see tests/recovery/recovery_kit.py), a namespace and a SQLite
store per test, and bifrost's Controller in-process on them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from recovery.recovery_kit import Scene
from support.peers_cluster import PeersCluster, peers_cluster

from bifrost.kube import KubeClient


@pytest.fixture(scope="module")
def drift_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeersCluster]:
    with peers_cluster(tmp_path_factory.mktemp("kube"), seed=5) as running:
        yield running


@pytest.fixture
def scene(drift_cluster: PeersCluster, tmp_path: Path) -> Iterator[Scene]:
    kube = KubeClient.from_kubeconfig(drift_cluster.kubeconfig)
    namespace = f"dr-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    scene = Scene(kube, namespace, tmp_path / "bifrost.db")
    scene.open_new_store()
    try:
        yield scene
    finally:
        scene.close()
        with contextlib.suppress(Exception):
            kube.delete("v1", "Namespace", namespace)
        kube.close()
